"""Cutting a middle where one line is asked for: its first line of code, without what the rest of the
cursor's line already has."""

from __future__ import annotations

import re

from fim_lsp.postprocess.checker import InsertionChecker, fewest_errors
from fim_lsp.postprocess.cursor import CursorLine, fit_line_end, same_line
from fim_lsp.syntax.lines import indent_width, opens_block


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


def truncate_line(
    middle: str, cursor: CursorLine, checker: InsertionChecker | None, whole: bool
) -> str | None:
    line = _first_line(middle, cursor, checker, whole)
    if line is not None and _restates_next_line(line, cursor):
        return None
    # A middle the model ended itself, on several lines, that fits the file: the model knew better than
    # the cursor that the hole spans lines (mid-line, this is the only way to get more than one line).
    # Unless its first line alone fits better: a model that writes the line asked for and then the
    # suffix's closing line again leaves as many errors as the hole did, but a different one.
    if whole and checker is not None and "\n" in middle.strip():
        text = fit_line_end(middle.rstrip(" \t"), cursor, cursor.at_line_start or middle.startswith("\n"))
        if text.strip():
            return fewest_errors([text] if line is None else [text, line], checker) or line
    return line


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
