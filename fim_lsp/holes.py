"""Cutting holes out of source text, for the FIM tasks of `fim-lsp dataset` and the typing replay of
`fim-lsp bench latency`: where each row starts, and the span a hole of whole rows takes."""

from __future__ import annotations

from collections.abc import Sequence

from fim_lsp.syntax.lines import indent_chars


def line_starts(lines: Sequence[str]) -> list[int]:
    """The offset where each of `lines` (a text split at `\\n`) starts in the text."""
    starts, offset = [], 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    return starts


def row_span(
    lines: Sequence[str], first: int, last: int, starts: Sequence[int] | None = None
) -> tuple[int, int]:
    """(begin, end) of rows `first`..`last`: from the first row's indentation to the end of the last row
    (its line break not included). `starts` are `line_starts(lines)`, when the caller has them."""
    starts = starts if starts is not None else line_starts(lines)
    return starts[first] + indent_chars(lines[first]), starts[last] + len(lines[last])


def cut(text: str, lines: Sequence[str], first: int, last: int) -> tuple[str, str, str]:
    """Prefix, middle and suffix for rows `first`..`last` of `text` (see `row_span`): the last row's line
    break stays in the suffix."""
    begin, end = row_span(lines, first, last)
    return text[:begin], text[begin:end], text[end:]
