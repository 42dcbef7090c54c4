"""Where a generated middle is cut before it is shown.

Small models write a good middle and then keep going (into the rest of the file, a Markdown fence,
English prose). What is shown must end where the model said end-of-text, or at the last whole line;
a middle with neither is dropped rather than shown raw.

`finish_middle` is what the pipeline uses: it knows the text around the cursor and the language, and
cuts by syntax. `clean_middle` is the language-blind fallback: lines and artifacts only.
"""

from __future__ import annotations

import re

from fim_lsp.completion import Shape
from fim_lsp.remarks import drop_line_end_remarks, is_placeholder
from fim_lsp.syntax import truncate_middle

# Special-token spellings (`<|fim_middle|>`, `<fim_suffix>`, `<｜fim▁end｜>`, `<EOT>`) never belong in code.
_SPECIAL_TOKEN = re.compile(
    r"<\|[a-z_]+\|>|<fim_[a-z]+>|<｜[^｜]+｜>|<(?:PRE|SUF|MID|EOT)>|\[(?:PREFIX|SUFFIX)\]"
)
_FENCE = re.compile(r"^\s*```", re.MULTILINE)


def strip_artifacts(middle: str) -> str:
    """The middle up to the first special-token spelling or Markdown fence line."""
    cut = len(middle)
    for pattern in (_SPECIAL_TOKEN, _FENCE):
        match = pattern.search(middle)
        if match:
            cut = min(cut, match.start())
    return middle[:cut]


def last_whole_lines(middle: str) -> str:
    """The middle up to and including its last line break."""
    return middle[: middle.rfind("\n") + 1]


def clean_middle(middle: str, *, reached_eot: bool, single_line: bool) -> str | None:
    """The part of a generated middle fit to show, or None when nothing is.

    A middle cut short by its token budget keeps only its whole lines; a single-line completion keeps
    only the text before the first line break.
    """
    text = strip_artifacts(middle)
    stopped_early = len(text) < len(middle)
    if single_line:
        line, newline, _ = text.partition("\n")
        if not (newline or reached_eot or stopped_early):
            return None  # the line never ended: the model ran out of tokens inside it
        text = line
    elif not (reached_eot or stopped_early):
        text = last_whole_lines(text)
    return text if text.strip() else None


def finish_middle(
    prefix: str,
    middle: str,
    suffix: str,
    *,
    language: str | None,
    shape: Shape,
    reached_eot: bool,
) -> str | None:
    """The part of a generated middle fit to show between `prefix` and `suffix`, or None.

    Syntax-aware: single lines get their line end right for what follows; blocks are cut to the longest
    run of whole lines that stays in the cursor's block, does not repeat the suffix or itself, and adds
    no syntax error (see `fim_lsp.syntax.truncate_middle`). `prefix` and `suffix` are the ones the model
    saw, so the syntax check parses a bounded text whatever the document's size. Comments the model ends
    its lines with are dropped where the file's own lines end in none, and an answer that is only a
    placeholder comment (`# Your code here`) is not shown (see `fim_lsp.remarks`).
    """
    text = truncate_middle(prefix, middle, suffix, language, shape, reached_eot)
    if text is None:
        return None
    text = drop_line_end_remarks(prefix, text, suffix, language)
    if not text.strip() or is_placeholder(text, language):
        return None
    return text
