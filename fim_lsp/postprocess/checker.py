"""Syntax errors of the file with a middle inserted, counted for many candidate middles by re-parsing
incrementally; the candidate with the fewest wins.

tree-sitter's Python grammar accepts two things Python does not (an empty block, an unexpected indent):
those are counted here as errors too."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from fim_lsp.syntax.languages import LANGUAGES, count_errors, new_parser, utf8
from fim_lsp.syntax.lines import OPENERS, bracket_events, indent_width, opens_block, token_pattern
from fim_lsp.syntax.tree import literal_at, point_of

if TYPE_CHECKING:
    from tree_sitter import Node

logger = logging.getLogger(__name__)


def _python_empty_blocks(node: Node, start: int, end: int) -> int:
    """Empty `block` nodes between byte offsets `start` and `end`.

    tree-sitter's Python grammar accepts a block header with nothing indented under it (`if x:` followed
    by a dedent) without an error node; Python does not, so a middle that ends on a header must count it.
    """
    count = 0
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "block" and current.child_count == 0 and start <= current.start_byte <= end:
            count += 1
        stack.extend(
            child for child in current.children if child.end_byte >= start and child.start_byte <= end
        )
    return count


def _first_code_lines(suffix: str) -> str:
    """The suffix up to the end of its first line with code after the cursor's own line."""
    newline = suffix.find("\n")
    if newline == -1 or suffix[:newline].strip():
        return suffix if newline == -1 else suffix[: newline + 1]
    position = newline + 1
    while True:
        end = suffix.find("\n", position)
        line = suffix[position:] if end == -1 else suffix[position : end + 1]
        if line.strip() or end == -1:
            return suffix[: position + len(line)]
        position = end + 1


def _python_indent_errors(text: str, depth: int) -> int:
    """Lines of `text` indented deeper than the statement before them when that one opens no block.

    Python calls that "unexpected indent"; tree-sitter's Python grammar accepts it silently. Lines that
    continue a statement (inside brackets or a string, after a backslash) do not count. `depth` is the
    bracket depth at the start of `text`.
    """
    line_starts = [0] + [match.end() for match in re.finditer("\n", text)]
    brackets: list[tuple[int, int]] = []
    strings: list[tuple[int, int]] = []
    for match in token_pattern("python").finditer(text):
        bracket = match.group("bracket")
        if bracket:
            brackets.append((match.start(), 1 if bracket in OPENERS else -1))
        elif match.group(0)[0] in "\"'":
            strings.append((match.start(), match.end()))
    errors = 0
    previous_indent: int | None = None
    previous_opens = False
    event = 0
    for number, start in enumerate(line_starts):
        while event < len(brackets) and brackets[event][0] < start:
            depth = max(0, depth + brackets[event][1])
            event += 1
        end = line_starts[number + 1] - 1 if number + 1 < len(line_starts) else len(text)
        line = text[start:end]
        continues = depth > 0 or any(a < start < b for a, b in strings)
        if continues or not line.strip() or line.lstrip().startswith("#"):
            if continues and line.strip() and previous_indent is not None:
                previous_opens = opens_block(line, "python") or line.rstrip().endswith("\\")
            continue
        indent = indent_width(line)
        if previous_indent is not None and indent > previous_indent and not previous_opens:
            errors += 1
        previous_indent = indent
        previous_opens = opens_block(line, "python") or line.rstrip().endswith("\\")
    return errors


class InsertionChecker:
    """Counts syntax errors of `prefix + middle + suffix` for many middles, re-parsing incrementally."""

    def __init__(self, language: str, prefix: str, suffix: str) -> None:
        self._prefix = utf8(prefix)
        self._suffix = utf8(suffix)
        self._language = language
        self._parser = new_parser(language)
        self._base = self._parser.parse(self._prefix + self._suffix)
        self.base_errors = count_errors(self._base.root_node)
        self._start_point = point_of(self._prefix, len(self._prefix))
        # Indentation is checked around the insertion only: from the last code line before the cursor
        # to the first one after the middle, with the bracket depth where that starts. Not in a string
        # (a docstring's lines are indented as its writer likes).
        self._indentation = (
            language == "python" and literal_at(self._base.root_node, len(self._prefix)) != "string"
        )
        if self._indentation:
            last = prefix.rstrip().rfind("\n") + 1
            self._head, self._tail = prefix[last:], _first_code_lines(suffix)
            self._depth = sum(step for _, step in bracket_events(prefix[:last], "python"))
            self.base_errors += _python_indent_errors(self._head + self._tail, max(0, self._depth))

    def errors_with(self, middle: str) -> int:
        """Syntax errors of the file with `middle` inserted (see `_python_empty_blocks` for Python)."""
        inserted = utf8(middle)
        data = self._prefix + inserted + self._suffix
        tree = self._base.copy()
        start = len(self._prefix)
        end_point = point_of(data, start + len(inserted))
        tree.edit(
            start_byte=start,
            old_end_byte=start,
            new_end_byte=start + len(inserted),
            start_point=self._start_point,
            old_end_point=self._start_point,
            new_end_point=end_point,
        )
        root = self._parser.parse(data, tree).root_node
        errors = count_errors(root)
        if self._language == "python":
            errors += _python_empty_blocks(root, start, start + len(inserted))
        if self._indentation:
            errors += _python_indent_errors(self._head + middle + self._tail, max(0, self._depth))
        return errors


def make_checker(language: str | None, prefix: str, suffix: str) -> InsertionChecker | None:
    if language not in LANGUAGES:
        return None
    try:
        return InsertionChecker(language, prefix, suffix)
    except Exception:  # a grammar that fails to load must not take completion down with it
        logger.exception("cannot parse %s for truncation; cutting by lines only", language)
        return None


def fewest_errors(candidates: list[str], checker: InsertionChecker) -> str | None:
    """The first of `candidates` (longest first) with the fewest syntax errors once inserted, and none
    that the file did not have; None when each adds an error. Where the hole itself broke the file (a
    missing closing line), a cut that mends it beats a longer one that breaks it again elsewhere (the
    suffix's own closing brace written once more)."""
    best, best_errors = None, checker.base_errors
    for candidate in candidates:
        errors = checker.errors_with(candidate)
        if errors < best_errors or (best is None and errors <= best_errors):
            best, best_errors = candidate, errors
            if errors == 0:
                break
    return best
