"""Fill-in-the-middle prompt templates: read from data, recognised from a model's vocabulary.

Each model family spells its FIM tokens its own way (`<|fim_prefix|>`, `<fim_prefix>`, `<PRE>`, ...), and
some families were trained suffix-first. We render the prompt ourselves, because llama-cpp-python's own
`suffix=` path uses hard-coded token ids.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from fim_lsp.errors import ConfigurationError
from fim_lsp.syntax.languages import comment_starts

Order = Literal["psm", "psm-line", "spm"]


#: Tokens a file separator and the line break after its path take, besides the path and the text.
FILE_SEPARATOR_TOKENS = 2


def repo_file_tokens(path: str, text: str, count_tokens: Callable[[str], int]) -> int:
    """Tokens a file (or snippet) of `path` takes in a repository-level prompt."""
    return count_tokens(f"{path}\n{text}") + FILE_SEPARATOR_TOKENS


@dataclass(frozen=True)
class RepoFile:
    """A workspace file (or a snippet of one) placed before the current file in a repository prompt."""

    path: str
    text: str

    def tokens(self, count_tokens: Callable[[str], int]) -> int:
        return repo_file_tokens(self.path, self.text, count_tokens)


def comment_out(files: Iterable[RepoFile], language: str | None) -> str:
    """Workspace snippets as line comments of `language`, each under a line naming its file."""
    mark = comment_starts(language)[0]
    lines = []
    for snippet in files:
        lines.append(f"{mark} {snippet.path}")
        lines.extend(f"{mark} {line}".rstrip() for line in snippet.text.splitlines())
    return "\n".join(lines) + "\n\n" if lines else ""


@dataclass(frozen=True)
class FimPrompt:
    """What a fill-in-the-middle prompt is made of, before a model family's template lays it out.

    Engines take this rather than rendered text: the embedded engine tokenizes its parts separately
    (so their tokens do not depend on where the cursor is), and servers with FIM fields of their own
    (llama-server's `/infill`, Ollama) get the parts as they are.
    """

    prefix: str
    suffix: str
    order: Order = "psm"
    repo: str | None = None
    """The workspace's name, for the repository-level format."""
    path: str | None = None
    """The current file's path in the workspace, for the repository-level format."""
    files: tuple[RepoFile, ...] = ()
    """Workspace snippets, put before the current file in the repository-level format."""


@dataclass(frozen=True)
class FimTemplate:
    """How one model family wants a fill-in-the-middle prompt laid out."""

    family: str
    markers: tuple[str, ...]
    layouts: dict[str, str]
    stop: tuple[str, ...]
    order: Order
    repo_name: str | None = None
    file_sep: str | None = None

    def resolve_order(self, requested: str) -> Order:
        """The order to use for a requested one (`auto` means the family's measured best)."""
        order = self.order if requested == "auto" else requested
        layout = "psm" if order == "psm-line" else order
        if layout not in self.layouts:
            raise ConfigurationError(f"the {self.family} template has no {layout.upper()} layout")
        return order  # type: ignore[return-value]

    def split_line_head(self, prompt: FimPrompt) -> tuple[str, str]:
        """The prefix as the layout shows it before the middle marker, and the cursor's line up to the
        cursor after it: all of the prefix and nothing, but in `psm-line` order (see `pieces`)."""
        if self.resolve_order(prompt.order) != "psm-line":
            return prompt.prefix, ""
        cut = prompt.prefix.rfind("\n") + 1
        return prompt.prefix[:cut], prompt.prefix[cut:]

    def render(self, prompt: FimPrompt) -> str:
        """The prompt text: what `pieces` returns, joined."""
        return "".join(self.pieces(prompt))

    def pieces(self, prompt: FimPrompt, *, before_line: bool = False) -> tuple[str, ...]:
        """The prompt text in pieces that are tokenized one by one.

        With `files` and a family that has a repository-level format, the other files come first,
        each after the family's file separator, and the current file's path last, before the FIM layout,
        the way the family saw whole repositories in training. Otherwise they are left out here; the
        caller may put them in the prefix as comments.

        A new piece starts at the suffix's second line: a BPE tokenizer joins the spaces before a line
        break to it, so the tokens of the suffix's first line depend on where the cursor is, and from
        its next line on they do not when tokenized apart; the cached evaluation of the rest of the
        suffix can then be found again when the cursor moves.

        `psm-line` is PSM with the cursor's line moved from the end of the prefix to the start of the
        middle, as llama.cpp's `/infill` does with its `prompt`: the model still sees the same text in the
        same order, and typing on the line only appends tokens at the prompt's end, so the cached
        evaluation of everything before (the suffix included) stays valid from keystroke to keystroke.

        With `before_line`, only the start of the prompt that typing on the cursor's line leaves as it
        is: up to where that line begins in the prompt (in PSM the suffix follows the cursor, so it is
        not part of it).
        """
        order = self.resolve_order(prompt.order)
        prefix, line_head = self.split_line_head(prompt)
        layout = self.layouts["psm" if order == "psm-line" else order]
        head = ""
        if self.file_sep and (prompt.files or prompt.path):
            if self.repo_name:
                head += f"{self.repo_name}{prompt.repo or 'workspace'}\n"
            for snippet in prompt.files:
                head += f"{self.file_sep}{snippet.path}\n{snippet.text}"
                if not snippet.text.endswith("\n"):
                    head += "\n"
            if prompt.path:
                head += f"{self.file_sep}{prompt.path}\n"
        # The repository header goes before the first FIM token, so it stays a stable prompt start.
        text = head + layout.format(prefix=prefix, suffix=prompt.suffix) + line_head
        if before_line and order == "psm-line":
            text = text[: len(text) - len(line_head)]
        elif before_line:
            where = len(head) + layout.format(prefix="\0", suffix=prompt.suffix).index("\0")
            text = text[: where + prefix.rfind("\n") + 1]
        return _split_at_second_line(text, prompt.suffix)


def _split_at_second_line(text: str, suffix: str) -> tuple[str, ...]:
    """`text` cut where the suffix's first non-blank line after its first starts, when the suffix has one
    and occurs once. Not at a blank line: a tokenizer joins a run of line breaks into one token, so the
    run must not be cut where the cursor happens to leave it."""
    second = _SECOND_LINE.search(suffix)
    if second is None or text.count(suffix) != 1:
        return (text,)
    cut = text.index(suffix) + second.start(1)
    return (text[:cut], text[cut:])


#: A suffix's first line, the blank lines after it, then (group 1) the next line with text on it.
_SECOND_LINE = re.compile(r"\n(?:[ \t]*\n)*([ \t]*\S)")


@cache
def known_templates() -> dict[str, FimTemplate]:
    """Every template in `data/templates.toml`, by family name."""
    raw = tomllib.loads(resources.files("fim_lsp").joinpath("data/templates.toml").read_text("utf-8"))
    templates = {}
    for family, entry in raw.items():
        layouts = {order: entry[order] for order in ("psm", "spm") if order in entry}
        templates[family] = FimTemplate(
            family=family,
            markers=tuple(entry["markers"]),
            layouts=layouts,
            stop=tuple(entry.get("stop", ())),
            order=entry["order"],
            repo_name=entry.get("repo_name"),
            file_sep=entry.get("file_sep"),
        )
    return templates


def template_for_family(family: str) -> FimTemplate:
    """The template of a named family, or a ConfigurationError listing the families we know."""
    templates = known_templates()
    if family not in templates:
        raise ConfigurationError(f"unknown FIM template family {family!r}; known: {', '.join(templates)}")
    return templates[family]


def detect_template(vocabulary: Iterable[str]) -> FimTemplate | None:
    """The family whose FIM tokens are all in `vocabulary` (the model's token spellings).

    When several match (CodeGemma and Qwen share three spellings), the one with the most markers wins,
    since more markers matched means a more specific match.
    """
    # SentencePiece vocabularies (CodeLlama) spell some of these with a leading word-boundary mark.
    tokens = {token.removeprefix("▁") for token in vocabulary}
    matches = [t for t in known_templates().values() if all(m in tokens for m in t.markers)]
    return max(matches, key=lambda t: len(t.markers), default=None)
