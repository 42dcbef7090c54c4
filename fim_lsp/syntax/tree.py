"""A document's syntax tree, kept current by incremental re-parsing, and what it says about a point
(inside a comment or a string, and where that literal began)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from fim_lsp.syntax.languages import COMMENT_TYPES, STRING_TYPES, byte_offset, count_errors, new_parser, utf8

if TYPE_CHECKING:
    from tree_sitter import Node, Tree

logger = logging.getLogger(__name__)


def _common_prefix_length(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix, by bisection on slice comparisons (C speed, O(n log n))."""
    low, high = 0, min(len(a), len(b))
    # Each step compares only the undecided window [low, mid), so the bytes compared halve per step:
    # about 2n in all, done by memcmp.
    while low < high:
        mid = (low + high + 1) // 2
        if a[low:mid] == b[low:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _common_suffix_length(a: bytes, b: bytes, limit: int) -> int:
    """Length of the longest common suffix of `a` and `b`, at most `limit`."""
    low, high = 0, limit
    len_a, len_b = len(a), len(b)
    while low < high:
        mid = (low + high + 1) // 2
        if a[len_a - mid : len_a - low] == b[len_b - mid : len_b - low]:
            low = mid
        else:
            high = mid - 1
    return low


def _is_continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def point_of(data: bytes, offset: int) -> tuple[int, int]:
    """tree-sitter (row, byte column) of a byte offset."""
    row = data.count(b"\n", 0, offset)
    line_start = data.rfind(b"\n", 0, offset) + 1
    return row, offset - line_start


class DocumentSyntax:
    """A document's text and its syntax tree, kept current by incremental re-parsing.

    `update` finds the one changed span between the old and new text (common prefix and suffix), tells
    a copy of the old tree about it, and lets tree-sitter re-parse reusing everything outside that span.
    Updates come from one thread (the server's); other threads (the completion worker) read through
    `snapshot()`, which gives them a text and the tree of that very text, never touched again: a
    published tree is never edited in place.
    """

    def __init__(self, language: str, text: str) -> None:
        self.language = language
        self._parser = new_parser(language)
        self._lock = threading.Lock()
        data = utf8(text)
        self._state: tuple[str, bytes, Tree] = (text, data, self._parser.parse(data))

    @property
    def text(self) -> str:
        return self._state[0]

    @property
    def data(self) -> bytes:
        """The text as UTF-8, as the tree sees it."""
        return self._state[1]

    @property
    def tree(self) -> Tree:
        return self._state[2]

    def snapshot(self) -> DocumentSyntax:
        """A view of the current text and tree that later updates leave alone (do not update it)."""
        view = object.__new__(DocumentSyntax)
        view.language, view._parser, view._lock, view._state = (
            self.language,
            self._parser,
            self._lock,
            self._state,
        )
        return view

    def update(self, new_text: str) -> None:
        """Replace the text with `new_text`, re-parsing only what changed."""
        with self._lock:
            _text, old, tree = self._state
            new = utf8(new_text)
            if old == new:
                self._state = (new_text, new, tree)
                return
            start = _common_prefix_length(old, new)
            # Never split a UTF-8 sequence: move back to the first byte of the character.
            while start > 0 and start < len(old) and _is_continuation(old[start]):
                start -= 1
            tail = _common_suffix_length(old, new, min(len(old), len(new)) - start)
            while tail > 0 and len(old) - tail < len(old) and _is_continuation(old[len(old) - tail]):
                tail -= 1
            old_end, new_end = len(old) - tail, len(new) - tail
            edited = tree.copy()
            edited.edit(
                start_byte=start,
                old_end_byte=old_end,
                new_end_byte=new_end,
                start_point=point_of(old, start),
                old_end_point=point_of(old, old_end),
                new_end_point=point_of(new, new_end),
            )
            self._state = (new_text, new, self._parser.parse(new, edited))

    def error_count(self) -> int:
        """ERROR and MISSING nodes in the whole document."""
        return count_errors(self.tree.root_node)

    def node_at(self, offset: int) -> Node:
        """The smallest node that spans string index `offset` (or the node that ends there)."""
        text, _data, tree = self._state
        position = byte_offset(text, offset)
        return tree.root_node.descendant_for_byte_range(position, position) or tree.root_node

    def byte_offset(self, offset: int) -> int:
        """UTF-8 byte offset of string index `offset`."""
        return byte_offset(self.text, offset)


#: Documents longer than this (in characters) keep no whole-document tree: a 10 MB file takes seconds
#: to parse, hundreds of MiB of tree, and ~150 ms per keystroke to re-parse on two cores. For them the
#: pipeline parses only the prompt's window, a few kilobytes, whatever the file's size.
MAX_TREE_CHARS = 1_000_000


def follow_document(tree: DocumentSyntax | None, language: str | None, text: str) -> DocumentSyntax | None:
    """The tree of an open document after a change: `tree` re-parsed incrementally when it is of the
    same language, a new one when there was none, None when the document has no grammar or is too
    long to keep whole (see MAX_TREE_CHARS)."""
    if language is None or len(text) > MAX_TREE_CHARS:
        return None
    try:
        if tree is None or tree.language != language:
            return DocumentSyntax(language, text)
        tree.update(text)
        return tree
    except Exception:  # a grammar failing on odd text must cost the tree, not the server
        logger.warning("cannot parse the document as %s; the prompt window is parsed instead", language)
        logger.debug("parse failure", exc_info=True)
        return None


def inside_comment_or_string(syntax: DocumentSyntax, text: str, offset: int) -> str | None:
    """'comment' or 'string' when the cursor is inside one (per the tree), else None."""
    if syntax.text is not text and syntax.text != text:
        return None  # the tree is of another version of the text: do not trust it
    return literal_at(syntax.tree.root_node, syntax.byte_offset(offset))


def literal_at(root: Node, position: int) -> str | None:
    """'comment' or 'string' when byte `position` of the tree under `root` is inside one, else None."""
    probe = max(0, position - 1)
    node: Node | None = root.descendant_for_byte_range(probe, position)
    while node is not None:
        if node.type in COMMENT_TYPES and node.start_byte < position <= node.end_byte:
            return "comment"
        if node.type in STRING_TYPES and node.start_byte < position < node.end_byte:
            return "string"
        node = node.parent
    return None


def literal_start_row(syntax: DocumentSyntax, row: int, column: int) -> int | None:
    """The row where the string or comment that holds the point (`row`, byte `column`) begins, when it
    begins on an earlier row (a docstring's second line, the middle of a block comment), per the tree."""
    point = (row, column)
    node: Node | None = syntax.tree.root_node.descendant_for_point_range(point, point)
    while node is not None:
        if node.type in COMMENT_TYPES or node.type in STRING_TYPES:
            return node.start_point.row if node.start_point.row < row else None
        node = node.parent
    return None
