"""Cutting a middle where one line is asked for: its first line of code, without what the rest of the
cursor's line already has."""

from __future__ import annotations

import re

from fim_lsp.postprocess.checker import InsertionChecker, fewest_errors
from fim_lsp.postprocess.cursor import CursorLine, fit_line_end, same_line
from fim_lsp.syntax.lines import indent_width, opens_block

_WORD_AT_END = re.compile(r"\w+$")


def _trim_suffix_overlap(line: str, cursor: CursorLine, checker: InsertionChecker | None) -> str:
    """Drop what the rest of the cursor's line already has from the end of `line`: the whole rest (the
    model wrote past the hole), or closing characters it starts with. The syntax decides when it can."""
    line = line.rstrip()
    rest = cursor.after.strip()
    options = []
    if rest and line.endswith(rest) and line != rest:
        options.append(line[: -len(rest)])
    closers = re.match(r"[)\]}>;,:'\"`]+", rest)
    if closers:
        options += [
            line[:-size] for size in range(len(closers.group(0)), 0, -1) if line.endswith(rest[:size])
        ]
    options = [option for option in options if option.strip()]
    if not options:
        return line
    if checker is None:
        return options[0]
    # Fewest errors wins; on a tie, the rest of the line is the user's text, so the trimmed one.
    return min([*options, line], key=checker.errors_with)


#: Characters of code (not whitespace) the start of the suffix must have for a middle that writes it out
#: to be taken as having run past the hole's end: `)` or `}` alone say too little.
SUFFIX_ANCHOR_MIN_CODE = 8
#: How far into the suffix's next lines the start of the suffix reaches when the rest of the cursor's
#: line is too short to tell by.
SUFFIX_ANCHOR_CHARS = 24


def _suffix_anchor(suffix: str) -> str | None:
    """The start of the suffix a middle that ran past the hole writes out: the rest of the cursor's line
    with its line end, or where that says too little, the suffix's first SUFFIX_ANCHOR_CHARS characters."""
    newline = suffix.find("\n")
    rest_of_line = suffix if newline == -1 else suffix[: newline + 1]
    for anchor in (rest_of_line, suffix[:SUFFIX_ANCHOR_CHARS]):
        if len("".join(anchor.split())) >= SUFFIX_ANCHOR_MIN_CODE:
            return anchor
    return None


def before_suffix(middle: str, suffix: str) -> str | None:
    """The middle up to where it writes out the start of `suffix` (`_suffix_anchor`), exactly; None where
    it does not. A hole that ends inside a line ends where the code after it starts, often in the middle
    of a word or of the next line's indentation, where no line rule can cut; the model that runs on
    writes that code out, and where it begins is the end."""
    anchor = _suffix_anchor(suffix)
    if anchor is None:
        return None
    end = middle.find(anchor)
    return None if end == -1 else middle[:end]


def line_so_far(middle: str, cursor: CursorLine) -> str | None:
    """The line a middle is still writing, as far as it may be shown before its end (the user types on
    and the rest would come late): up to the last character that is not part of a word, since the
    model's last token may end inside one (`len(stri`), without what the rest of the cursor's line
    already has at its end (`)`, `;`: the model wrote the line up to the code after the cursor); None
    where nothing but a word and spaces is written yet. `middle` is one line, after any line breaks it
    starts with (the cursor ends a line and the answer is the next)."""
    breaks, newline, line = middle.rpartition("\n")
    line = _WORD_AT_END.sub("", line).rstrip()
    if cursor.text_after and not newline and not cursor.at_line_start:
        # No syntax check: the line is not whole yet, so it would count errors the rest of it mends.
        line = _trim_suffix_overlap(line, cursor, None)
    return breaks + newline + line if line.strip() else None


def truncate_line(
    middle: str, cursor: CursorLine, checker: InsertionChecker | None, whole: bool
) -> str | None:
    line = _first_line(middle, cursor, checker, whole)
    if line is not None and _restates_next_line(line, cursor):
        return None
    # A middle the model ended itself, on several lines, that fits the file: the model knew better than
    # the cursor that the hole spans lines (mid-line, this and `before_suffix` are the only ways to get
    # more than one line).
    # Unless its first line alone fits better: a model that writes the line asked for and then the
    # suffix's closing line again leaves as many errors as the hole did, but a different one.
    if whole and checker is not None:
        text = _as_ended(middle, cursor)
        if text is not None and text.strip():
            return fewest_errors([text] if line is None else [text, line], checker) or line
    return line


def _as_ended(middle: str, cursor: CursorLine) -> str | None:
    """A middle the model ended itself on more than one line, as it goes in the file; None when it is one
    line. Mid-line, one that ends with a line break and spaces is taken as written: the spaces are the
    indentation of the line the code after the cursor goes on, and the model said where its end is (a
    bare line break at the end says less: a line the model ended, as often as a hole that spans two)."""
    inserted_lines = cursor.at_line_start or middle.startswith("\n")
    text = middle.rstrip(" \t")
    if cursor.text_after and not inserted_lines and text.endswith("\n") and text != middle:
        return middle
    if "\n" not in text.strip():
        return None
    return fit_line_end(text, cursor, inserted_lines)


def opens_unfilled_block(middle: str, cursor: CursorLine, language: str | None) -> bool:
    """Whether the middle's first line, finishing the cursor's line (`for i in range(` + `len(xs)):`),
    opens a block whose body the code after the cursor does not have (its next line is not indented
    deeper). The line alone is then half a thought (in Python a syntax error), and the body the model
    writes after it belongs to the answer, as Copilot shows a loop with its body."""
    if cursor.text_after or cursor.at_line_start or middle.startswith("\n"):
        return False
    line = middle.split("\n", 1)[0]
    if not line.strip() or not opens_block(cursor.before + line, language):
        return False
    following = cursor.next_suffix_line()
    return following is None or indent_width(following) <= indent_width(cursor.before)


def _restates_next_line(line: str, cursor: CursorLine) -> bool:
    """Whether `line` is what already follows the hole: the rest of the cursor's line again (shown, it
    would repeat the text right of the cursor), or, for an answer that starts a new line after the
    cursor's, the file's next line. The model skipped the hole and went on with what follows it (BLOCK
    cuts such lines the same way)."""
    if cursor.text_after:
        return not line.startswith("\n") and line.strip() == cursor.after.strip()
    if not line.startswith("\n"):
        return False
    following = cursor.next_suffix_line()
    return following is not None and same_line(line.strip("\n"), following)


def _first_line(middle: str, cursor: CursorLine, checker: InsertionChecker | None, whole: bool) -> str | None:
    """The middle's first line of code, its line end fitted to what follows the cursor; None when that
    line never ended (and the model did not end the middle either)."""
    lead = ""
    body = middle
    if not cursor.at_line_start:
        # At the end of a code line the model often starts the next line: that line is the answer.
        newlines = re.match(r"(?:[ \t]*\n)+", middle)
        if newlines:
            lead, body = middle[: newlines.end()], middle[newlines.end() :]
    newline = body.find("\n")
    if newline == -1:
        if not whole:
            return None  # the line never ended
        line = body
    else:
        line = body[:newline]
    line = line.rstrip()
    if not line.strip():
        return None
    if cursor.text_after and not lead and not cursor.at_line_start:
        line = _trim_suffix_overlap(line, cursor, checker)
    inserted_lines = bool(lead) or cursor.at_line_start
    text = fit_line_end(lead + line, cursor, inserted_lines)
    return text if text.strip() else None
