"""The indentation a line must start with where the code above leaves no choice (`indentation_to_type`),
and how a file indents a body."""

from __future__ import annotations

from fim_lsp.syntax.languages import DEFINITIONS
from fim_lsp.syntax.lines import indent_width, leading_whitespace, opens_block, token_pattern


def _indent_unit(lines: list[str]) -> str:
    """One level of indentation as this file writes it: a tab, or the narrowest indentation in use."""
    widths = []
    for line in lines:
        indentation = leading_whitespace(line)
        if indentation and len(indentation) < len(line):
            if indentation[0] == "\t":
                return "\t"
            widths.append(len(indentation))
    narrowest = min(widths, default=4)
    return " " * (narrowest if narrowest in (2, 3, 4, 8) else 4)


#: Code rows above the cursor searched for a block and its body, to learn the file's indentation step.
STEP_SEARCH_ROWS = 200


def _block_step(lines: list[str], code_rows: list[int], language: str | None) -> str | None:
    """The indentation the nearest block above (within STEP_SEARCH_ROWS code rows) adds to its body's
    first line: how this file indents a body, which its narrowest indentation may not say (a file
    indented by 4 whose function bodies step by 2 more). None when no block above has a body yet."""
    following = None
    for row in reversed(code_rows[-STEP_SEARCH_ROWS:]):
        line = lines[row]
        if following is not None and opens_block(line, language):
            outer, inner = leading_whitespace(line), leading_whitespace(following)
            if len(inner) > len(outer) and inner.startswith(outer):
                return inner[len(outer) :]
        following = line
    return None


def indentation_to_type(prefix: str, suffix: str, language: str | None) -> str:
    """The indentation the cursor's line must start with, when the cursor is at column 0 (lines go in
    there) and the code above leaves no choice; "" otherwise (the model chooses).

    - After a line that opens a block: one level deeper than that line, a level being what the nearest
      block above adds to its body (the file's narrowest indentation when there is none).
    - In Python, after a definition whose body so far is only its docstring: the docstring's.

    Small models write very different middles with and without that indentation at the end of the
    prompt (at column 0 they often start a new top-level definition instead of the body), so the
    pipeline puts it in the prompt, as if the user had typed it, and in front of the middle.
    """
    if not prefix.endswith("\n"):
        return ""  # the cursor is not at column 0
    lines = prefix.split("\n")[:-1]
    code_rows = [row for row, line in enumerate(lines) if line.strip()]
    if not code_rows:
        return ""
    previous = lines[code_rows[-1]]
    if opens_block(previous, language):
        step = _block_step(lines, code_rows[:-1], language) or _indent_unit(lines)
        return leading_whitespace(previous) + step
    if language != "python":
        return ""
    # A docstring as the whole body so far: from the last block opener above to the cursor, where that
    # opener ends a definition's header (which may span lines: its parameters).
    opener = next((row for row in reversed(code_rows) if opens_block(lines[row], language)), None)
    if opener is None:
        return ""
    header = next(
        (row for row in range(opener, max(-1, opener - 20), -1) if DEFINITIONS["python"].match(lines[row])),
        None,
    )
    if header is None or any(
        indent_width(lines[row]) <= indent_width(lines[header])
        for row in range(header + 1, opener + 1)
        if lines[row].strip() and not lines[row].lstrip().startswith(")")
    ):
        return ""
    body = "\n".join(lines[opener + 1 :]).strip()
    if not body or body[0] not in "\"'":
        return ""
    docstring = token_pattern("python").match(body)
    if docstring is None or docstring.end() != len(body):
        return ""
    first_body_row = next(row for row in code_rows if row > opener)
    return leading_whitespace(lines[first_body_row])
