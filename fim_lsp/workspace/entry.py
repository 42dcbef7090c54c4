"""One file as the workspace index holds it: where it is, its definitions packed in a flat array, the run
of block ids its rows were cut into, and its text (compressed for files read from the disk)."""

from __future__ import annotations

import sys
import zlib
from array import array
from collections.abc import Sequence

from fim_lsp.workspace.symbols import Definition

#: Rows in one block (the unit of the postings); a chunk found by similarity is two neighbouring blocks.
BLOCK_ROWS = 8
CHUNK_BLOCKS = 2
CHUNK_ROWS = BLOCK_ROWS * CHUNK_BLOCKS
_KINDS = ("function", "method", "class", "struct", "interface", "type", "enum", "constant", "macro", "module")
_KIND_INDEX = {kind: index for index, kind in enumerate(_KINDS)}


class IndexedFile:
    """One file in the index: where it is, its definitions, its blocks' id run, its text (compressed)."""

    __slots__ = (
        "_compressed",
        "_text",
        "block_count",
        "def_names",
        "def_rows",
        "first_block",
        "language",
        "live_blocks",
        "path",
        "relative",
        "row_count",
        "size",
        "stamp",
    )

    def __init__(self, path: str, relative: str, language: str | None) -> None:
        self.path = path
        self.relative = relative
        """The path shown to the model: relative to its workspace folder."""
        self.language = language
        self.stamp: tuple[int, int] | None = None
        """(mtime_ns, size) of the disk file indexed; None for an open buffer's text."""
        self.size = 0
        self._text: str | None = None
        self._compressed = b""
        self.def_names: tuple[str, ...] = ()
        self.def_rows = array("I")
        self.first_block = 0
        self.block_count = 0
        self.live_blocks = 0
        """Blocks with at least one term (the others have no postings)."""
        self.row_count = 0

    def set_text(self, text: str, keep_plain: bool) -> None:
        # Disk files are many and read rarely: compressed they take a quarter of the memory, and
        # decompressing one for a snippet costs tens of microseconds. Open buffers are few: kept plain.
        if keep_plain:
            self._text, self._compressed = text, b""
        else:
            self._text, self._compressed = None, zlib.compress(text.encode("utf-8"), 6)

    def set_definitions(self, definitions: Sequence[Definition]) -> None:
        """Keep `definitions` packed: interned names, and four numbers a definition in one array."""
        # Interned: the same names (__init__, new, get) recur in many files.
        self.def_names = tuple(sys.intern(d.name) for d in definitions)
        rows = array("I")
        for d in definitions:
            rows.extend((d.start, d.end, d.header_end, _KIND_INDEX.get(d.kind, 0)))
        self.def_rows = rows

    def text(self) -> str:
        return self._text if self._text is not None else zlib.decompress(self._compressed).decode("utf-8")

    def lines(self) -> list[str]:
        """The rows of the file, without their line breaks."""
        return self.text().split("\n")

    def stored_bytes(self) -> int:
        return len(self._compressed) + (len(self._text) if self._text is not None else 0)

    def definitions(self, name: str | None = None) -> list[Definition]:
        """The file's definitions (only those of `name` when given), in document order."""
        rows = self.def_rows
        return [
            Definition(defined, _KINDS[rows[4 * i + 3]], rows[4 * i], rows[4 * i + 1], rows[4 * i + 2])
            for i, defined in enumerate(self.def_names)
            if name is None or defined == name
        ]

    def chunk_rows(self, block: int) -> tuple[int, int]:
        """First and last row (inclusive) of the chunk that starts at this file's block `block`."""
        first = block * BLOCK_ROWS
        return first, min(first + CHUNK_ROWS, self.row_count) - 1
