"""What the cursor wants: nothing, one line, or a block (`classify`), and whether its block goes on
after it (`block_goes_on`)."""

from __future__ import annotations

import re

from fim_lsp.completion import Shape
from fim_lsp.syntax.lines import (
    code_part,
    indent_width,
    line_after,
    line_before,
    opens_block,
    unclosed_openers,
)
from fim_lsp.syntax.tree import DocumentSyntax, inside_comment_or_string

_WORD = re.compile(r"\w", re.UNICODE)


# A line ending in one of these continues on the next line as part of the same expression.
_CONTINUES_EXPRESSION = re.compile(
    r"(?:[-+*/%=<>!&|^~,.?:]|\b(?:and|or|not|in|is|return|yield|await|new|typeof|instanceof)|=>|->)\s*$"
)


def inside_word(text: str, offset: int) -> bool:
    """Whether the cursor has word characters right before and right after it."""
    return 0 < offset < len(text) and bool(_WORD.match(text[offset - 1]) and _WORD.match(text[offset]))


def classify(syntax: DocumentSyntax | None, text: str, offset: int) -> Shape:
    """The shape of completion that makes sense at string index `offset` of `text`.

    - LINE with code on both sides of the cursor on its line (inside a word too: the model may finish
      it, or say it is whole), inside a comment or string, or at the end of a line that is an unfinished
      expression (open bracket, trailing operator).
    - BLOCK on a blank line, at the start of a line (whole lines go above what follows), and at the end
      of a line that opens a block or is a finished statement (the next lines are what comes).

    Comments are completed: people write them as prompts. `syntax` refines the decision (comments,
    strings) when its text is `text`; without it the text alone decides. Of the cursor's line only
    LINE_WINDOW_CHARS characters on each side of the cursor are read, whatever its length.
    """
    offset = max(0, min(offset, len(text)))
    before = line_before(text, offset)
    after = line_after(text, offset)

    if not before.strip():
        return Shape.BLOCK
    if after.strip():
        return Shape.LINE
    language = syntax.language if syntax is not None else None
    if syntax is not None and inside_comment_or_string(syntax, text, offset):
        return Shape.LINE
    if opens_block(before, language):
        return Shape.BLOCK
    code = code_part(before, language)
    if code.strip() != before.strip():
        return Shape.LINE  # the line ends in a comment: finish the comment
    if unclosed_openers(code, language) or _CONTINUES_EXPRESSION.search(code):
        return Shape.LINE
    return Shape.BLOCK


def block_goes_on(text: str, offset: int, language: str | None, typed: str = "") -> bool:
    """Whether lines written at `offset` would go in between lines of their block: the next line of code
    after the cursor's line is at least as deep as they start (deeper than the cursor's line where that
    line opens a block). False at the end of a block, in an empty one, and at the end of the text.

    On a blank line the lines start where the cursor is, after `typed` (indentation the caller puts
    there). Of each line only its first LINE_WINDOW_CHARS characters are read.
    """
    before = line_before(text, offset)
    if before.strip():
        depth = indent_width(before) + int(opens_block(before, language))
    else:
        depth = indent_width(before + typed)
    end = text.find("\n", offset)
    while end != -1:
        line = line_after(text, end + 1)
        if line.strip():
            return indent_width(line) >= depth
        end = text.find("\n", end + 1)
    return False
