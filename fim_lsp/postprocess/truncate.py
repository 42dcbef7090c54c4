"""Where a generated middle stops being whole: `truncate_middle` cuts it, `middle_is_done` says while it
is written when more tokens can no longer change the cut."""

from __future__ import annotations

import re

from fim_lsp.completion import Shape
from fim_lsp.postprocess.artifacts import strip_special_and_fences
from fim_lsp.postprocess.block import block_limit, truncate_block
from fim_lsp.postprocess.checker import fewest_errors, make_checker
from fim_lsp.postprocess.cursor import CursorLine
from fim_lsp.postprocess.line import before_suffix, opens_unfilled_block, truncate_line
from fim_lsp.syntax.languages import comment_starts

_TRAILING_SPACES_THEN_NEWLINE = re.compile(r"^[ \t]+\n")


def _drop_end_of_line_comment(middle: str, language: str | None) -> str:
    """The middle without a comment it starts with on the cursor's line, when the cursor ends a line of
    code: instruct-tuned models like to remark on the line just written (`  # remove the maximum`)
    before the line they were asked for, and such a remark is not what the user was about to type."""
    first, newline, rest = middle.partition("\n")
    if first.strip().startswith(comment_starts(language)):
        return newline + rest
    return middle


def truncate_middle(
    prefix: str,
    middle: str,
    suffix: str,
    language: str | None,
    shape: Shape,
    reached_eot: bool,
) -> str | None:
    """The part of a generated `middle` worth showing between `prefix` and `suffix`, or None to drop it.

    - Special-token text, a Markdown fence and English prose after the code end the middle.
    - LINE keeps the first line (the next line's, when the cursor ends a line and the model began a new
      one, unless that is the file's next line again), without closing characters the rest of the
      cursor's line already has; a line that opens a block the file does not fill is cut as a BLOCK,
      its body with it. A LINE middle that writes out the start of the code after the cursor ends
      where that begins (`before_suffix`): a hole that ends inside a later line gets its end.
    - BLOCK keeps the longest run of whole lines that (a) does not repeat the line after the cursor,
      repeat itself, or leave the block the cursor is in (indentation for Python, brackets elsewhere),
      and (b) adds no syntax error to the file that was not already there.
    - Both get the newline right for what follows the cursor on its line.
    - A middle that never reached end-of-text (`reached_eot` False) and has no whole cut is dropped.

    `language` is a tree-sitter grammar name (see `language_of`); None cuts by lines and brackets only.
    """
    if shape is Shape.NONE:
        return None
    middle, cut = strip_special_and_fences(middle)
    whole = reached_eot or cut
    cursor = CursorLine.of(prefix, suffix)
    if not cursor.at_line_start:
        # Spaces the model puts at the end of the cursor's line before starting the next are noise.
        middle = _TRAILING_SPACES_THEN_NEWLINE.sub("\n", middle, count=1)
        middle = _drop_end_of_line_comment(middle, language)
    if shape is Shape.LINE:
        exact = _ended_at_suffix(prefix, middle, suffix, language)
        if exact is not None:
            return exact
    if shape is Shape.LINE and opens_unfilled_block(middle, cursor, language):
        return truncate_block(prefix, middle, suffix, cursor, language, whole)
    if shape is Shape.LINE:
        needs_checker = (cursor.text_after and not cursor.at_line_start) or (whole and "\n" in middle.strip())
        checker = make_checker(language, prefix, suffix) if needs_checker else None
        return truncate_line(middle, cursor, checker, whole)
    return truncate_block(prefix, middle, suffix, cursor, language, whole)


def _ended_at_suffix(prefix: str, middle: str, suffix: str, language: str | None) -> str | None:
    """The text before the point where the middle writes the code after the cursor (`before_suffix`),
    unless that is nothing or adds a syntax error to the file."""
    exact = before_suffix(middle, suffix)
    if exact is None or not exact.strip():
        return None
    checker = make_checker(language, prefix, suffix)
    return exact if checker is None else fewest_errors([exact], checker)


#: Lines a middle written mid-line may run to before generation stops (see `middle_is_done`): holes
#: that span lines from the middle of one are short (the rest of a call's arguments).
MID_LINE_SPAN_LINES = 3


def middle_is_done(prefix: str, middle: str, suffix: str, language: str | None, shape: Shape) -> bool:
    """Whether more tokens can no longer change what `truncate_middle` would show, so generation may stop.

    Cheap (no parsing): meant to be called after every generated token.

    - BLOCK: a special token, fence or prose line was written, or a line rule (repeating the suffix,
      repeating itself, leaving the block) cut before the last complete line.
    - LINE: the middle wrote out the start of the code after the cursor (`before_suffix`), or the
      first line is complete, where the cursor ends its line (unless it opened a block the file
      does not fill: then as BLOCK, for its body). Mid-line the model may still end
      the middle with end-of-text on a later line (a hole that spans lines), so generation goes on
      until MID_LINE_SPAN_LINES more lines show that it is writing on rather than filling a hole.
    """
    if shape is Shape.NONE:
        return True
    cleaned, cut = strip_special_and_fences(middle)
    if cut:
        return True
    cursor = CursorLine.of(prefix, suffix)
    if shape is Shape.LINE:
        if before_suffix(cleaned, suffix) is not None:
            return True
        body = cleaned if cursor.at_line_start else cleaned.lstrip(" \t\n")
        first_line_done = "\n" in body and bool(body.split("\n", 1)[0].strip())
        if cursor.text_after and not cursor.at_line_start:
            return first_line_done and body.count("\n") > MID_LINE_SPAN_LINES
        if not (first_line_done and opens_unfilled_block(cleaned, cursor, language)):
            return first_line_done
        # The line opened a block the file does not fill: its body is written as a block's would be.
    lines = cleaned.splitlines(keepends=True)
    complete = sum(1 for line in lines if line.endswith("\n"))
    limit, _ = block_limit(lines, prefix, cursor, language, streaming=True)
    return limit < complete
