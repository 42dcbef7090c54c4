"""Cutting a middle where a block is asked for: whole lines that stay in the cursor's block and repeat
neither the code after the cursor nor themselves, the longest with the fewest syntax errors."""

from __future__ import annotations

import re

from fim_lsp.postprocess.checker import fewest_errors, make_checker
from fim_lsp.postprocess.cursor import CursorLine, fit_line_end, same_line
from fim_lsp.syntax.languages import DEFINITIONS, KEYWORD_BLOCK_LANGUAGES
from fim_lsp.syntax.lines import bracket_events, indent_width, opens_block

_TRAILING_BLANK_LINES = re.compile(r"\n[ \t\n]*\n[ \t]*$|\n[ \t]+$")


def _block_floor(prefix: str, cursor: CursorLine, language: str | None, first_line: str | None) -> int | None:
    """Least indentation a middle line may have before it has left the block the cursor is in.

    That block is the body of the definition (function, class) around the cursor: a middle may close
    inner blocks (in Python by dedenting, as the code after the cursor often does), but it may not go on
    to write the next definition. When the user typed indentation on an empty line, that indentation is
    where they want to write, down to where the code after the cursor continues.

    For Python a line below the floor ends the middle; for keyword-block languages (Ruby, Lua, Bash) it
    may be the block's closing line and ends the middle after it. None for brace languages, where braces
    decide. `first_line` is the middle's first non-blank line when the cursor is at column 0.
    """
    definition = DEFINITIONS.get(language or "")
    if definition is None:
        return None
    # The lines above the cursor's, and the cursor's own as far as `cursor` read it (it may be long).
    lines = prefix[: prefix.rfind("\n") + 1].split("\n")
    current = cursor.before
    typed_indent = indent_width(current + "x") if current and not current.strip() else None
    # How deep the cursor is, to find the definition around it.
    if current.strip():
        reference = indent_width(current) + int(opens_block(current, language))
    elif typed_indent is not None:
        reference = typed_indent
    elif first_line is not None:
        reference = indent_width(first_line)
    else:
        previous = next((line for line in reversed(lines[:-1]) if line.strip()), None)
        reference = 0 if previous is None else indent_width(previous) + int(opens_block(previous, language))
    # The definition the cursor is in: the nearest header above that is less indented than the cursor
    # and than every line between them (a less indented line in between means that one was closed).
    body = 0
    innermost = reference
    for line in reversed(lines[:-1]):
        if not line.strip():
            continue
        width = indent_width(line)
        if width < innermost and definition.match(line):
            body = width + 1
            break
        innermost = min(innermost, width)
    if typed_indent is None:
        return body
    floor = typed_indent
    following = cursor.next_suffix_line()
    if following is not None and language == "python":
        # Keyword languages show the way out with a closing line, which must not lower the floor.
        floor = min(floor, indent_width(following))
    return max(floor, body)


def _suffix_repeat_start(
    lines: list[str], cursor: CursorLine, continues_line: bool, following: str, confirmed: bool = False
) -> int:
    """Index of the first middle line from which the middle repeats the lines after the cursor.

    The lines after the first equal one must agree too, as far as the middle goes; with `confirmed`, as
    far as three lines (or the whole suffix), so that a middle still being written is not cut early.
    """
    expected = [line.rstrip() for line in cursor.rest_of_suffix.split("\n") if line.strip()]
    if cursor.text_after:
        expected.insert(0, following.rstrip())  # the cursor's own line comes first
    complete = [line.rstrip("\n").rstrip() for line in lines if line.endswith("\n")]
    for index, line in enumerate(complete):
        if (index == 0 and continues_line) or not same_line(line, expected[0]):
            continue
        ahead = [other for other in complete[index:] if other.strip()][:3]
        agree = all(same_line(a, b) for a, b in zip(ahead, expected, strict=False))
        # Moved to another indentation, one equal line may be the model's own code: want a second.
        enough = 1 if line == expected[0] else 2
        if confirmed:
            enough = max(enough, min(3, len(expected)))
        if agree and min(len(ahead), len(expected)) >= enough:
            return index
    return len(lines)


def _repetition_start(lines: list[str]) -> int | None:
    """Index of the first line that starts an immediate repeat of the 1 to 4 lines before it."""
    for index in range(1, len(lines)):
        for size in range(1, 5):
            if index - size < 0 or index + size > len(lines):
                continue
            window = lines[index - size : index]
            if lines[index : index + size] != window:
                continue
            if any(len(line.strip()) >= 6 for line in window):
                return index
    return None


def block_limit(
    lines: list[str], prefix: str, cursor: CursorLine, language: str | None, streaming: bool = False
) -> tuple[int, bool]:
    """How many of the middle's lines may stay, and whether a rule cut (an end the model ran past).

    `streaming`: the middle is still being written; cut only where more lines cannot undo the cut.
    """
    limit = len(lines)
    following = cursor.next_suffix_line()
    continues_line = not cursor.at_line_start  # line 0 continues the code on the cursor's line
    if lines and cursor.at_line_start:
        # The lines as they will stand in the file: the first one after the indentation before the cursor.
        lines = [cursor.before + lines[0], *lines[1:]]
    # Lines that repeat the start of the suffix: the model wrote past the hole into what follows. One
    # equal line is not enough (code repeats lines), so the next ones must agree too.
    if following is not None:
        limit = min(limit, _suffix_repeat_start(lines, cursor, continues_line, following, streaming))
    repeat = _repetition_start(lines)
    if repeat is not None:
        limit = min(limit, repeat)
    # Indentation: leaving the block the cursor is in.
    first_line = None
    if cursor.at_line_start and not cursor.before:
        first_line = next((line for line in lines if line.strip()), None)
    floor = _block_floor(prefix, cursor, language, first_line)
    if floor is not None:
        for index, line in enumerate(lines[:limit]):
            if (index == 0 and continues_line) or not line.strip():
                continue
            if indent_width(line) < floor:
                inclusive = (
                    language in KEYWORD_BLOCK_LANGUAGES and line.rstrip() != (following or "").rstrip()
                )
                limit = min(limit, index + 1 if inclusive else index)
                break
    # Braces: the line that closes the block the cursor is in is the last that may stay, and not even
    # that one when the suffix's next line is that same closing line, indentation included (a `}` less
    # indented closes an outer block). Parentheses and square brackets are expressions, which a middle
    # may well close and go on after.
    if language not in DEFINITIONS:
        depth = 0
        line_of = [index for index, line in enumerate(lines) for _ in line]
        text = "".join(lines)
        for position, step in bracket_events(text, language):
            if text[position] not in "{}":
                continue
            depth += step
            if depth < 0:
                index = line_of[position]
                same_as_suffix = following is not None and (
                    # Text after the cursor on its line has no indentation of its own to compare.
                    lines[index].strip() == following.strip()
                    if continues_line and cursor.text_after
                    else lines[index].rstrip() == following.rstrip()
                )
                limit = min(limit, index if same_as_suffix else index + 1)
                break
    return limit, limit < len(lines)


def truncate_block(
    prefix: str, middle: str, suffix: str, cursor: CursorLine, language: str | None, whole: bool
) -> str | None:
    lines = middle.splitlines(keepends=True)
    limit, cut = block_limit(lines, prefix, cursor, language)
    lines = lines[:limit]
    whole = whole or cut
    # Candidate ends: after every complete line; the unfinished last line only when the middle is whole.
    ends = []
    position = 0
    for line in lines:
        position += len(line)
        if line.endswith("\n") or whole:
            ends.append(position)
    text = "".join(lines)
    inserted_lines = cursor.at_line_start or text.startswith("\n")
    candidates = []
    for end in reversed(ends):
        # Trailing blank lines are not part of the answer; the line end is settled by fit_line_end.
        candidate = fit_line_end(_TRAILING_BLANK_LINES.sub("\n", text[:end]), cursor, inserted_lines)
        if candidate.strip() and candidate not in candidates:
            candidates.append(candidate)
    if not candidates:
        return None
    checker = make_checker(language, prefix, suffix)
    if checker is None:
        return candidates[0]
    # None: every whole cut breaks the file, and showing a broken block is worse than showing nothing.
    return fewest_errors(candidates, checker)
