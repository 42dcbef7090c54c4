"""Fill-in-the-middle prompt templates: read from data, recognised from a model's vocabulary.

Each model family spells its FIM tokens its own way (`<|fim_prefix|>`, `<fim_prefix>`, `<PRE>`, ...), and
some families were trained suffix-first. We render the prompt ourselves, because llama-cpp-python's own
`suffix=` path uses hard-coded token ids.
"""

from __future__ import annotations

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

    def render(
        self,
        prefix: str,
        suffix: str,
        order: str = "auto",
        *,
        repo: str | None = None,
        path: str | None = None,
        repo_files: Iterable[RepoFile] = (),
    ) -> str:
        """The prompt text for a middle between `prefix` and `suffix`.

        With `repo_files` and a family that has a repository-level format, the other files come first,
        each after the family's file separator, and the current file's path last, before the FIM layout,
        the way the family saw whole repositories in training. Otherwise they are left out here; the
        caller may put them in the prefix as comments.

        `psm-line` is PSM with the cursor's line moved from the end of the prefix to the start of the
        middle, as llama.cpp's `/infill` does with its `prompt`: the model still sees the same text in the
        same order, and typing on the line only appends tokens at the prompt's end, so the cached
        evaluation of everything before (the suffix included) stays valid from keystroke to keystroke.
        """
        resolved = self.resolve_order(order)
        line_head = ""
        if resolved == "psm-line":
            cut = prefix.rfind("\n") + 1
            prefix, line_head = prefix[:cut], prefix[cut:]
        layout = self.layouts["psm" if resolved == "psm-line" else resolved]
        head = ""
        repo_files = list(repo_files)
        if self.file_sep and (repo_files or path):
            if self.repo_name:
                head += f"{self.repo_name}{repo or 'workspace'}\n"
            for snippet in repo_files:
                head += f"{self.file_sep}{snippet.path}\n{snippet.text}"
                if not snippet.text.endswith("\n"):
                    head += "\n"
            if path:
                head += f"{self.file_sep}{path}\n"
        # The repository header goes before the first FIM token, so it stays a stable prompt start.
        return head + layout.format(prefix=prefix, suffix=suffix) + line_head


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
