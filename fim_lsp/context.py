"""What goes in the prompt: the prefix and suffix around the cursor, cut to the token budget.

The budget is counted with the model's own tokenizer and filled outward from the cursor, whole lines at
a time, and the cuts fall on the boundaries of the code's block structure:

- the text before the cursor starts where a statement or definition starts at the cursor's level or an
  outer one, never inside a sibling's body: sibling definitions farthest from the cursor are dropped
  whole, first;
- the text after the cursor ends where such a unit ends (with its closing line);
- above the kept text, the file's imports and the headers of the blocks around the cursor (class,
  function, loop) are kept, so the model still knows what is imported and where it writes.

The block structure is read from indentation (and closing lines such as `}` or `end`) rather than from
the syntax tree: while the user types, the line at the cursor is usually broken, and tree-sitter's error
recovery can then regroup large parts of the tree, moving the cuts on every keystroke. Indentation does
not move; with the cursor's line charged to the budget in coarse steps, the start of the prompt stays
the same while the user types on a line, and llama.cpp's cache of it stays warm. The tree, when there
is one, finds the imports and the opening line of a docstring or block comment the window starts
inside of (text above the cursor, which typing at the cursor does not regroup), kept above the window.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fim_lsp.syntax import literal_start_row

if TYPE_CHECKING:
    from fim_lsp.syntax import DocumentSyntax

#: Share of the prefix budget that imports kept above the window may take at most.
IMPORTS_SHARE = 0.25
#: Tokens of budget the cursor's line is charged in steps of (see `cut_context`).
CURSOR_LINE_STEP = 32
#: Tokens of the budget the prefix leaves unused are given to the suffix in steps of (see `cut_context`).
LEFTOVER_STEP = 64
#: Lines at the head of a file searched for imports.
IMPORTS_HEAD_LINES = 300
#: Characters per token no real text averages more than: a line longer than this many per budgeted
#: token cannot fit the budget, and is not tokenized to find that out (10 MB took 6 s).
MAX_CHARS_PER_TOKEN = 32
#: A cursor's line that cannot fit (minified code, a data blob) is cut around the cursor at about this
#: many characters per budgeted token. At the default budget that keeps more of the line before the
#: cursor than `fim_lsp.syntax.LINE_WINDOW_CHARS`, what the shape is judged on, so the prompt's text and
#: the document's give the same shape.
LONG_LINE_CHARS_PER_TOKEN = 3
#: A window cut by the budget starts at the first allowed row at or after a multiple of this many rows
#: (fewer for a small window; see `_anchored_start`). A power of two.
WINDOW_START_GRID = 16

# Top-level tree-sitter nodes that import or declare what the file uses.
_IMPORT_TYPES = frozenset(
    {
        "import_statement",  # python, javascript, typescript
        "import_from_statement",
        "future_import_statement",
        "package_clause",  # go
        "import_declaration",  # go, java
        "package_declaration",  # java
        "use_declaration",  # rust
        "extern_crate_declaration",
        "preproc_include",  # c, cpp
        "using_directive",  # csharp
        "namespace_use_declaration",  # php
    }
)
# The same without a tree: import-like lines at column 0.
_IMPORT_LINE = re.compile(
    r"(?:import\s|from\s+\S+\s+import\s|#\s*include\b|using\s+[\w.]+\s*;|use\s|package\s|extern\s+crate\s"
    r"|require(?:_relative)?[\s(]|(?:const|let|var|local)\s+\w+\s*=\s*require\b)"
)
# Lines that close a block: they belong to the block above them, never start a window.
_CLOSING_LINE = re.compile(r"^\s*(?:[)\]}]|end\b|fi\b|done\b|esac\b|until\b)")


@dataclass(frozen=True)
class PromptContext:
    """The text around the cursor that fits the budget, and where it was cut in the document."""

    prefix: str
    """What the model sees before the cursor: `pinned`, then the document from `prefix_start`."""
    suffix: str
    prefix_start: int
    """Offset in the document where the contiguous part of the prefix (after `pinned`) begins."""
    suffix_end: int
    """Offset in the document just after the suffix's last character."""
    pinned: str = ""
    """Imports and the headers of enclosing blocks from above the window, at the start of the prefix."""


class _Lines:
    """The lines of a document that a cut can reach: `max_lines` rows either side of the cursor, and
    the head of the file (for imports). Rows are absolute; found with C-speed `str.find`, so a long
    document costs no walk over all its lines."""

    def __init__(self, text: str, offset: int, max_lines: int) -> None:
        self.text = text
        self.cursor_row = text.count("\n", 0, offset)
        starts: dict[int, int] = {}
        row, start = self.cursor_row, text.rfind("\n", 0, offset) + 1
        starts[row] = start
        while row > 0 and self.cursor_row - row < max_lines:
            start = text.rfind("\n", 0, start - 1) + 1
            row -= 1
            starts[row] = start
        self.first_row = row
        row, start = self.cursor_row, starts[self.cursor_row]
        while row - self.cursor_row < max_lines:
            newline = text.find("\n", start)
            if newline == -1:
                break
            row, start = row + 1, newline + 1
            starts[row] = start
        self.last_row = row
        # The head of the file, for imports, when the window does not reach it.
        row, start = 0, 0
        while row < min(IMPORTS_HEAD_LINES, self.first_row):
            starts[row] = start
            newline = text.find("\n", start)
            if newline == -1:
                break
            row, start = row + 1, newline + 1
        starts.setdefault(row, start)
        self._starts = starts

    def start(self, row: int) -> int:
        """Offset where `row` starts (the end of the text past the last row)."""
        start = self._starts.get(row)
        if start is not None:
            return start
        newline = self.text.find("\n", self._starts[row - 1])
        return len(self.text) if newline == -1 else newline + 1

    def line(self, row: int) -> str:
        """Row `row` with its line break."""
        return self.text[self.start(row) : self.start(row + 1)]

    def blank(self, row: int) -> bool:
        return not self.line(row).strip()

    def indentation(self, row: int) -> str:
        """The spaces and tabs row `row` starts with (as many bytes as characters: the tree-sitter column
        of its first code)."""
        line = self.line(row)
        return line[: len(line) - len(line.lstrip(" \t"))]

    def indent(self, row: int) -> int:
        return len(self.indentation(row).expandtabs(8))


def _window_starts(lines: _Lines, cursor_row: int, lowest: int) -> tuple[list[int], list[int]]:
    """Rows above the cursor where the prefix window may start, and the header rows of the blocks
    around the cursor (outermost first).

    Going up from the cursor, a line may start the window when it is no deeper than every line between
    it and the cursor: then it starts a statement at the cursor's level or an outer one, not a line
    inside a sibling's body. Such a line that is shallower than all of them opens a block around the
    cursor: a header.
    """
    starts: list[int] = []
    headers: list[int] = []
    level = None if lines.blank(cursor_row) else lines.indent(cursor_row)
    for row in range(cursor_row - 1, lowest - 1, -1):
        if lines.blank(row):
            continue
        indent = lines.indent(row)
        if level is None:
            level = indent  # the cursor's line is blank: the nearest code above sets the level
        if indent <= level and not _CLOSING_LINE.match(lines.line(row)):
            starts.append(row)
            if indent < level:
                headers.append(row)
            level = indent
        else:
            level = min(level, indent) if _CLOSING_LINE.match(lines.line(row)) else level
    starts.append(cursor_row)
    return sorted(starts), headers[::-1]


def _window_ends(lines: _Lines, cursor_row: int, highest: int) -> list[int]:
    """Rows below the cursor after which the suffix window may end: the last row of a unit at the
    cursor's level or an outer one, closing lines included."""
    ends = [cursor_row]
    level = None if lines.blank(cursor_row) else lines.indent(cursor_row)
    row = cursor_row + 1
    previous = cursor_row
    while row <= highest:
        if lines.blank(row):
            row += 1
            continue
        indent = lines.indent(row)
        if level is None:
            level = indent
        if indent <= level and not _CLOSING_LINE.match(lines.line(row)):
            ends.append(previous)  # the unit before this line is complete
        level = min(level, indent)
        previous = row
        row += 1
    ends.append(highest)
    return sorted(set(ends))


def _anchored_start(fitted: int, starts: list[int], cursor_row: int, lowest: int) -> int:
    """Where a window cut by the budget starts: the first allowed row at or after the next multiple of
    WINDOW_START_GRID rows from `fitted` (the earliest row that fits).

    Without this the window's first row would follow the cursor down line by line, and with it the
    start of the prompt, which is all llama.cpp can reuse: every new line would cost the whole prompt
    again. Snapped to a grid of absolute rows (which edits below them do not move), the start stays put
    for WINDOW_START_GRID lines of typing, at the price of at most that many rows of budget.
    """
    if fitted <= lowest:
        return fitted  # the window reaches as far up as it can look: nothing slides
    # A small window must not lose most of its rows to the grid: at most a quarter of them, in a power
    # of two (so the grid itself changes only when the window's size crosses a power of two).
    grid = 1 << max(0, min(WINDOW_START_GRID, (cursor_row - fitted) // 4).bit_length() - 1)
    anchor = -(-fitted // grid) * grid
    return next((row for row in starts if anchor <= row <= cursor_row), fitted)


def _import_rows(lines: _Lines, syntax: DocumentSyntax | None, before_row: int) -> list[tuple[int, int]]:
    """(first row, last row) of each import above `before_row`, in document order. Only the head of the
    file is searched: imports live there, and a long file must not cost a walk to the cursor."""
    before_row = min(before_row, IMPORTS_HEAD_LINES)
    if syntax is not None:
        found = []
        for child in syntax.tree.root_node.named_children:
            if child.start_point.row >= before_row:
                break
            if child.type in _IMPORT_TYPES and child.end_point.row < before_row:
                found.append((child.start_point.row, child.end_point.row))
        return found
    found = []
    row = 0
    while row < before_row:
        line = lines.line(row)
        if _IMPORT_LINE.match(line):
            last = row
            # A parenthesised import list (Go, Python) goes on to its closing line.
            if line.count("(") > line.count(")"):
                while last + 1 < before_row and ")" not in lines.line(last):
                    last += 1
            found.append((row, last))
            row = last
        row += 1
    return found


class _Rows:
    """The rows a cut can take, each row's cost in tokens (counted once), and filling a token allowance
    outward from the cursor with whole rows."""

    def __init__(self, lines: _Lines, budget: int, count_tokens: Callable[[str], int]) -> None:
        self.lines = lines
        self.budget = budget
        self.count_tokens = count_tokens
        self._costs: dict[int, int] = {}

    def cost(self, row: int) -> int:
        if row not in self._costs:
            line = self.lines.line(row)
            fits = len(line) <= self.budget * MAX_CHARS_PER_TOKEN
            self._costs[row] = self.count_tokens(line) if fits else self.budget + 1
        return self._costs[row]

    def costs(self, rows: Iterable[int]) -> int:
        return sum(self.cost(row) for row in rows)

    def fill_above(self, allowance: int, allowed: set[int] | None) -> tuple[int, int]:
        """The earliest allowed row (any row when `allowed` is None) whose lines down to the cursor fit
        `allowance`, and their cost; whole lines when not even the nearest allowed row fits."""
        cursor_row = self.lines.cursor_row
        used, best, best_used = 0, cursor_row, 0
        for row in range(cursor_row - 1, self.lines.first_row - 1, -1):
            used += self.cost(row)
            if used > allowance:
                break
            if allowed is None or row in allowed:
                best, best_used = row, used
        if best == cursor_row and allowed is not None:
            return self.fill_above(allowance, None)
        return best, best_used

    def fill_below(self, allowance: int, allowed: set[int] | None) -> tuple[int, int]:
        """The last allowed row after the cursor whose lines fit `allowance`, and their cost."""
        cursor_row = self.lines.cursor_row
        used, best, best_used = 0, cursor_row, 0
        for row in range(cursor_row + 1, self.lines.last_row + 1):
            used += self.cost(row)
            if used > allowance:
                break
            if allowed is None or row in allowed:
                best, best_used = row, used
        if best == cursor_row and allowed is not None:
            return self.fill_below(allowance, None)
        return best, best_used


def _long_line_context(
    text: str, offset: int, line_start: int, line_end: int, budget: int, suffix_share: float
) -> PromptContext:
    """The cursor's line alone is far over the budget: it cannot be kept whole, and counting its tokens
    would take seconds per keystroke. The prompt is the line around the cursor, by characters."""
    room = budget * LONG_LINE_CHARS_PER_TOKEN
    after = min(line_end - offset, int(room * suffix_share))
    before = min(offset - line_start, room - after)
    after = min(line_end - offset, room - before)
    return PromptContext(
        text[offset - before : offset], text[offset : offset + after], offset - before, offset + after
    )


def _pinned_rows(
    rows: _Rows, syntax: DocumentSyntax | None, headers: list[int], prefix_allowance: int
) -> tuple[list[int], int]:
    """Imports and headers reserved above the window, and their cost: they are few, and they say what the
    window cannot."""
    pinned_rows: list[int] = []
    pinned_cost = 0
    import_allowance = int(prefix_allowance * IMPORTS_SHARE)
    for first, last in _import_rows(rows.lines, syntax, rows.lines.cursor_row):
        span = range(first, last + 1)
        span_cost = rows.costs(span)
        if pinned_cost + span_cost > import_allowance:
            break
        pinned_rows += span
        pinned_cost += span_cost
    for row in headers:
        if row not in pinned_rows and pinned_cost + rows.cost(row) <= prefix_allowance // 2:
            pinned_rows.append(row)
            pinned_cost += rows.cost(row)
    return pinned_rows, pinned_cost


def _prefix_window(
    rows: _Rows,
    syntax: DocumentSyntax | None,
    starts: list[int],
    pinned: tuple[list[int], int],
    prefix_allowance: int,
) -> tuple[int, int, list[int], int]:
    """Where the window before the cursor starts, what it costs, the pinned rows kept above it, and the
    first row of code (the top of what can be seen)."""
    lines, cursor_row = rows.lines, rows.lines.cursor_row
    pinned_rows, pinned_cost = pinned
    start_row, prefix_used = rows.fill_above(prefix_allowance - pinned_cost, set(starts))
    kept = sorted(row for row in set(pinned_rows) if row < start_row)
    if len(kept) < len(pinned_rows):
        # Some reserved rows fell inside the window: what they reserved buys more window.
        start_row, prefix_used = rows.fill_above(prefix_allowance - rows.costs(kept), set(starts))
        kept = sorted(row for row in set(pinned_rows) if row < start_row)
    # Blank lines at the head of what can be seen are not text the window could reach: a window that
    # reaches the first line of code has reached the top (and must not be moved down the grid).
    top = next((row for row in range(lines.first_row, cursor_row) if not lines.blank(row)), cursor_row)
    anchored = _anchored_start(start_row, starts, cursor_row, top)
    if anchored != start_row:
        prefix_used -= rows.costs(range(start_row, anchored))
        start_row = anchored
        kept = sorted(row for row in set(pinned_rows) if row < start_row)
    if syntax is not None:
        opening = literal_start_row(syntax, start_row, len(lines.indentation(start_row)))
        if opening is not None and opening not in kept:
            # Indentation cannot tell a docstring's lines from code at the same depth, so the window may
            # start inside one. Without its opening line the model would read the rest of the file inside
            # out (the closing quotes opening a string), and the truncation, which parses the same text,
            # would drop middles that are fine; with it, the docstring's last lines keep their meaning.
            kept = sorted([*kept, opening])
    return start_row, prefix_used, kept, top


def cut_context(
    text: str,
    offset: int,
    budget: int,
    suffix_share: float,
    count_tokens: Callable[[str], int],
    *,
    syntax: DocumentSyntax | None = None,
    max_lines: int = 2000,
) -> PromptContext:
    """Prefix and suffix around `offset` within `budget` tokens, `suffix_share` of it for the suffix.

    The cursor's own line is kept whole on both sides (unless it is far longer than the budget: then it is
    cut around the cursor, and is the whole prompt). Budget one side leaves unused goes to the
    other. `syntax` (a tree of `text`) finds the imports; without it a pattern does. `max_lines` bounds
    the lines looked at on each side of the cursor.
    """
    lines = _Lines(text, offset, max_lines)
    cursor_row = lines.cursor_row
    line_start, line_end = lines.start(cursor_row), lines.start(cursor_row + 1)
    if line_end - line_start > budget * MAX_CHARS_PER_TOKEN:
        return _long_line_context(text, offset, line_start, line_end, budget, suffix_share)
    # The cursor's line changes with every keystroke: charging the part before the cursor in steps of
    # CURSOR_LINE_STEP tokens, not exactly, keeps the cuts (and the start of the prompt) where they were
    # while the user types. The part after the cursor does not change as they type; it is the
    # suffix's, so the suffix's cut (the start of an SPM prompt) does not depend on the typing either.
    step = max(1, min(CURSOR_LINE_STEP, budget // 32))
    line_before_cost = -(-count_tokens(text[line_start:offset]) // step) * step
    line_after_cost = count_tokens(text[offset:line_end])
    remaining = max(budget - line_before_cost - line_after_cost, 0)
    if syntax is not None and syntax.text != text:
        syntax = None  # a tree of another version of the text would point at the wrong rows
    rows = _Rows(lines, budget, count_tokens)
    starts, headers = _window_starts(lines, cursor_row, lines.first_row)
    ends = set(_window_ends(lines, cursor_row, lines.last_row))

    suffix_allowance = max(int(budget * suffix_share) - line_after_cost, 0)
    end_row, suffix_used = rows.fill_below(suffix_allowance, ends)
    prefix_allowance = max(remaining - suffix_used, 0)
    pinned = _pinned_rows(rows, syntax, headers, prefix_allowance)
    start_row, prefix_used, kept, top = _prefix_window(rows, syntax, starts, pinned, prefix_allowance)
    leftover = prefix_allowance - prefix_used - rows.costs(kept)
    # What the prefix leaves shrinks with every keystroke; counted in whole steps, the suffix's cut
    # moves once per step typed, not once per character.
    leftover = leftover // LEFTOVER_STEP * LEFTOVER_STEP
    if start_row <= top and leftover > 0 and end_row < lines.last_row:
        # The prefix reached the top of the file: what it left over extends the suffix.
        end_row, suffix_used = rows.fill_below(suffix_used + leftover, ends)

    window_start = lines.start(start_row)
    pinned_text = "".join(lines.line(row) for row in kept)
    suffix_end = lines.start(end_row + 1) if end_row > cursor_row else line_end
    return PromptContext(
        prefix=pinned_text + text[window_start:offset],
        suffix=text[offset:suffix_end],
        prefix_start=window_start,
        suffix_end=suffix_end,
        pinned=pinned_text,
    )
