"""The server's copy of each open document, kept in step with the client's edits.

LSP positions count lines split at `\\n`, `\\r\\n` and `\\r` only, and columns in UTF-16 code units. Python
strings count code points and `str.splitlines` also splits at form feeds and Unicode line separators, so
we convert positions here, in one place, instead of trusting either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class InvalidPositionError(ValueError):
    """A position whose line is past the end of the document."""


@dataclass(frozen=True)
class Position:
    """A zero-based line and UTF-16 column, as LSP sends them."""

    line: int
    character: int


def utf16_length(text: str) -> int:
    """Length of `text` in UTF-16 code units (characters outside the BMP take two)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _line_start(text: str, line: int) -> int | None:
    """Offset where `line` begins, or None when the document has fewer lines."""
    if line < 0:
        return None
    if line == 0:
        return 0
    for number, match in enumerate(_LINE_BREAK.finditer(text), start=1):
        if number == line:
            return match.end()
    return None


def _line_end(text: str, start: int) -> int:
    match = _LINE_BREAK.search(text, start)
    return match.start() if match else len(text)


def offset_at(text: str, position: Position, *, clamp_line: bool = False) -> int:
    """Code point offset in `text` of an LSP position.

    A column past the end of its line means the end of the line (LSP says so). A line past the end of the
    document raises InvalidPositionError, or means the end of the document with `clamp_line`.
    """
    start = _line_start(text, position.line)
    if start is None:
        if clamp_line and position.line >= 0:
            return len(text)
        raise InvalidPositionError(f"line {position.line} is outside the document")
    end = _line_end(text, start)
    units = max(position.character, 0)
    offset = start
    while offset < end and units > 0:
        units -= 2 if ord(text[offset]) > 0xFFFF else 1
        offset += 1
    return offset


def position_at(text: str, offset: int) -> Position:
    """The LSP position of a code point offset."""
    offset = max(0, min(offset, len(text)))
    line = 0
    start = 0
    for match in _LINE_BREAK.finditer(text, 0, offset):
        line += 1
        start = match.end()
    # A "\r\n" split by the offset counts as the end of the line it began.
    return Position(line, utf16_length(text[start:offset]))


@dataclass
class TextDocument:
    """An open document: its text, language and version."""

    uri: str
    language_id: str
    version: int
    text: str

    def apply_change(self, text: str, start: Position | None = None, end: Position | None = None) -> None:
        """Apply one content change: a range replacement, or the whole text when no range is given."""
        if start is None or end is None:
            self.text = text
            return
        begin = offset_at(self.text, start, clamp_line=True)
        finish = offset_at(self.text, end, clamp_line=True)
        if finish < begin:
            begin, finish = finish, begin
        self.text = self.text[:begin] + text + self.text[finish:]


class DocumentStore:
    """The open documents by URI."""

    def __init__(self) -> None:
        self._documents: dict[str, TextDocument] = {}

    def open(self, uri: str, language_id: str, version: int, text: str) -> TextDocument:
        document = TextDocument(uri, language_id, version, text)
        self._documents[uri] = document
        return document

    def get(self, uri: str) -> TextDocument | None:
        return self._documents.get(uri)

    def close(self, uri: str) -> None:
        self._documents.pop(uri, None)

    def __len__(self) -> int:
        return len(self._documents)
