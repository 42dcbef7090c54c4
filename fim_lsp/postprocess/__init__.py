"""Where a generated middle is cut before it is shown.

Small models write a good middle and then keep going (into the rest of the file, a Markdown fence,
English prose). What is shown must end where the model said end-of-text, or at the last whole line;
a middle with neither is dropped rather than shown raw. The steps, in order:

- `artifacts`: special-token spellings, fences and prose end the middle.
- `truncate` (with `line`, `block`, `cursor` and `checker`): a single line keeps its first line, fitted
  to the rest of the cursor's line; a block keeps the longest run of whole lines that stays in the
  cursor's block, repeats neither the suffix nor itself, and adds no syntax error.
- `remarks`: comments the model ends its lines with are dropped where the file writes none, and an
  answer that is only a placeholder comment is not shown.
- Where the user types and a line's end would come late, the line as far as it is written, to the end
  of its last whole word (`shown_so_far`), is the exception to whole lines.
"""

from __future__ import annotations

from fim_lsp.completion import Shape
from fim_lsp.postprocess.artifacts import is_fence, strip_special_and_fences
from fim_lsp.postprocess.cursor import CursorLine
from fim_lsp.postprocess.line import line_so_far, opens_unfilled_block
from fim_lsp.postprocess.remarks import drop_line_end_remarks, is_placeholder
from fim_lsp.postprocess.truncate import middle_is_done, truncate_middle

__all__ = ["finish_middle", "middle_is_done", "shown_so_far", "truncate_middle"]


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
    no syntax error (see `truncate_middle`). `prefix` and `suffix` are the ones the model saw, so the
    syntax check parses a bounded text whatever the document's size. Comments the model ends its lines
    with are dropped where the file's own lines end in none, and an answer that is only a placeholder
    comment (`# Your code here`) is not shown (see `fim_lsp.postprocess.remarks`).
    """
    text = truncate_middle(prefix, middle, suffix, language, shape, reached_eot)
    return None if text is None else _without_remarks(prefix, text, suffix, language)


def shown_so_far(prefix: str, middle: str, suffix: str, *, language: str | None, shape: Shape) -> str | None:
    """What may be shown now of a middle the model is still writing where one line is asked for, or
    None: for ghost text that keeps up with typing, where the rest would come late. Whole lines (a line
    the rules have not stopped at yet; a line that opens a block the file does not fill, and as much of
    its body as is written) are cut as a whole answer is, and where those rules keep none of a block
    not closed yet, its first line is shown. Otherwise the line as far as it is written
    (`line_so_far`), cleaned as `finish_middle` cleans a whole one."""
    middle, _ = strip_special_and_fences(middle)
    cursor = CursorLine.of(prefix, suffix)
    ended = middle.rfind("\n")
    if ended != -1 and middle[:ended].strip():
        whole = finish_middle(
            prefix, middle[: ended + 1], suffix, language=language, shape=shape, reached_eot=False
        )
        if whole is not None or not opens_unfilled_block(middle, cursor, language):
            return whole
        middle = middle.split("\n", 1)[0]
    text = line_so_far(middle, cursor)
    if text is None or is_fence(text):
        return None
    return _without_remarks(prefix, text, suffix, language)


def _without_remarks(prefix: str, text: str, suffix: str, language: str | None) -> str | None:
    """`text` without the comments it ends its code lines with where the file's own lines end in none;
    None where nothing is left, or only a placeholder comment."""
    text = drop_line_end_remarks(prefix, text, suffix, language)
    if not text.strip() or is_placeholder(text, language):
        return None
    return text
