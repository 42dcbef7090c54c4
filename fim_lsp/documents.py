"""The server's copy of each open document, kept in step with the client's edits, and its syntax tree.

LSP positions count lines split at `\\n`, `\\r\\n` and `\\r` only, and columns in UTF-16 code units. Python
strings count code points and `str.splitlines` also splits at form feeds and Unicode line separators, so
we convert positions here, in one place, instead of trusting either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from fim_lsp.syntax import DocumentSyntax, follow_document, language_of

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# A UTF-16 surrogate on its own: JSON can carry one (`"\ud800"`), UTF-8 cannot encode it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


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


class _Breaks:
    """Line breaks of a text found with `str.find` (C speed, where a regular expression with three
    alternatives walks the text a character at a time: 60 ms for 10 MB). The next (or previous) `\n`
    and `\r` are remembered between steps, so a walk over many lines reads the text once."""

    def __init__(self, text: str, has_cr: bool) -> None:
        self.text = text
        self.has_cr = has_cr
        self._lf = self._cr = -2  # not looked for yet

    def after(self, start: int) -> tuple[int, int] | None:
        """(where, length) of the first line break at or after `start`; None when there is none."""
        text = self.text
        if self._lf != -1 and self._lf < start:
            self._lf = text.find("\n", start)
        if not self.has_cr:
            return None if self._lf == -1 else (self._lf, 1)
        if self._cr != -1 and self._cr < start:
            self._cr = text.find("\r", start)
        lf, cr = self._lf, self._cr
        if cr != -1 and (lf == -1 or cr < lf):
            return (cr, 2) if lf == cr + 1 else (cr, 1)
        return None if lf == -1 else (lf, 1)

    def before(self, end: int) -> int:
        """Where the line holding offset `end` - 1 starts: just after the last break before `end`."""
        text = self.text
        if self._lf == -2 or self._lf >= end:
            self._lf = text.rfind("\n", 0, end)
        if not self.has_cr:
            return self._lf + 1
        if self._cr == -2 or self._cr >= end:
            self._cr = text.rfind("\r", 0, end)
        return max(self._lf, self._cr) + 1


def _walk_down(text: str, start: int, count: int, has_cr: bool) -> int | None:
    """The start of the line `count` lines below the line starting at `start`; None past the end."""
    breaks = _Breaks(text, has_cr)
    for _ in range(count):
        found = breaks.after(start)
        if found is None:
            return None
        start = found[0] + found[1]
    return start


def _walk_up(text: str, start: int, count: int, has_cr: bool) -> int:
    """The start of the line `count` lines above the line starting at `start` (which has that many)."""
    breaks = _Breaks(text, has_cr)
    for _ in range(count):
        start -= 2 if start >= 2 and text.startswith("\r\n", start - 2) else 1  # over the break above
        start = breaks.before(start)
    return start


def _line_end(text: str, start: int, has_cr: bool) -> int:
    found = _Breaks(text, has_cr).after(start)
    return len(text) if found is None else found[0]


#: A character outside the Basic Multilingual Plane: two UTF-16 code units, one Python code point.
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _column_offset(text: str, start: int, end: int, units: int) -> int:
    """The code point offset of `units` UTF-16 code units after `start`, at most `end` (the line's end).

    A column between the two units of a surrogate pair means the position after the character: an edit
    never leaves half a character behind.
    """
    limit = min(end, start + max(units, 0))  # every code point is at least one unit
    if text.isascii():
        return limit
    offset, remaining = start, max(units, 0)
    for match in _ASTRAL.finditer(text, start, limit):
        plain = match.start() - offset  # one unit each
        if remaining <= plain:
            return offset + remaining
        remaining -= plain + 2
        offset = match.start() + 1
        if remaining <= 0:
            return offset
    return min(end, offset + remaining)


def offset_at(text: str, position: Position, *, clamp_line: bool = False) -> int:
    """Code point offset in `text` of an LSP position.

    A column past the end of its line means the end of the line (LSP says so). A line past the end of the
    document raises InvalidPositionError, or means the end of the document with `clamp_line`. A column
    inside a surrogate pair means the position after the character.
    """
    has_cr = "\r" in text
    start = _walk_down(text, 0, position.line, has_cr) if position.line >= 0 else None
    if start is None:
        if clamp_line and position.line >= 0:
            return len(text)
        raise InvalidPositionError(f"line {position.line} is outside the document")
    return _column_offset(text, start, _line_end(text, start, has_cr), position.character)


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
    """An open document: its text, language and version, and its syntax tree (see `sync_syntax`)."""

    uri: str
    language_id: str
    version: int
    text: str

    def __post_init__(self) -> None:
        self._surrogates = _LONE_SURROGATE.search(self.text) is not None
        self._has_cr = "\r" in self.text
        # A line known to start at an offset: positions are found from there, so typing on one line of a
        # long file walks no lines at all (from the top it is one `find` per line: 40 ms for 160,000).
        self._anchor = (0, 0)
        #: The tree of `text` as of the last `sync_syntax`; None for a language without a grammar or a
        #: document too long to keep one (the pipeline then parses only the prompt's window).
        self.syntax: DocumentSyntax | None = None

    def sync_syntax(self) -> None:
        """Bring the syntax tree up to date with the text, re-parsing only what changed: once per batch of
        changes (an LSP `didChange` may carry several)."""
        self.syntax = follow_document(self.syntax, language_of(self.language_id, self.uri), self.text)

    def offset_at(self, position: Position, *, clamp_line: bool = False) -> int:
        """`offset_at` for this document's text, walking from the last line looked up."""
        line = position.line
        anchor_line, anchor = self._anchor
        start: int | None
        if line < 0:
            start = None
        elif line >= anchor_line:
            start = _walk_down(self.text, anchor, line - anchor_line, self._has_cr)
        elif line <= anchor_line - line:
            start = _walk_down(self.text, 0, line, self._has_cr)
        else:
            start = _walk_up(self.text, anchor, anchor_line - line, self._has_cr)
        if start is None:
            if clamp_line and line >= 0:
                return len(self.text)
            raise InvalidPositionError(f"line {line} is outside the document")
        self._anchor = (line, start)
        return _column_offset(self.text, start, _line_end(self.text, start, self._has_cr), position.character)

    def _move_anchor(self, begin: int, finish: int, inserted: str) -> None:
        """Keep the anchor right across an edit replacing [begin, finish) with `inserted`."""
        anchor_line, anchor = self._anchor
        if begin > anchor or (begin == anchor and not self._has_cr):
            return  # the edit is below the anchor's line start (at it, a "\n" could join a "\r" above)
        if finish <= anchor and not self._has_cr:
            moved = anchor + len(inserted) - (finish - begin)
            # Still a line start when what now comes just before it is a line break: when the edit ends
            # at the anchor, that is the edit's last character (or the one before the edit).
            touching = inserted[-1:] if inserted else self.text[begin - 1 : begin]
            before = "\n" if finish < anchor else touching
            if moved == 0 or before == "\n":
                removed = self.text.count("\n", begin, finish)
                self._anchor = (anchor_line + inserted.count("\n") - removed, moved)
                return
        self._anchor = (0, 0)  # across the anchor, or where "\r\n" pairs may form or part

    def text_for_model(self) -> str:
        """The text for the pipeline, with each lone surrogate (only a broken client sends one) replaced
        by U+FFFD: every offset stays where it was, and every encoder on the way (tokenizer, tree-sitter,
        HTTP) can take it. `text` itself keeps what the client sent, so both copies stay equal."""
        return _LONE_SURROGATE.sub("\ufffd", self.text) if self._surrogates else self.text

    def apply_change(self, text: str, start: Position | None = None, end: Position | None = None) -> None:
        """Apply one content change: a range replacement, or the whole text when no range is given."""
        # Only inserted text can bring a lone surrogate in (an offset never falls inside a character).
        surrogates = _LONE_SURROGATE.search(text) is not None
        if start is None or end is None:
            self.text = text
            self._surrogates = surrogates
            self._has_cr = "\r" in text
            self._anchor = (0, 0)
            return
        self._surrogates = self._surrogates or surrogates
        begin = self.offset_at(start, clamp_line=True)
        finish = self.offset_at(end, clamp_line=True)
        if finish < begin:
            begin, finish = finish, begin
        self._has_cr = self._has_cr or "\r" in text  # before the anchor moves: a "\r" is a break too
        self._move_anchor(begin, finish, text)
        self.text = self.text[:begin] + text + self.text[finish:]


class DocumentStore:
    """The open documents by URI."""

    def __init__(self) -> None:
        self._documents: dict[str, TextDocument] = {}

    def open(self, uri: str, language_id: str, version: int, text: str) -> TextDocument:
        document = TextDocument(uri, language_id, version, text)
        document.sync_syntax()
        self._documents[uri] = document
        return document

    def get(self, uri: str) -> TextDocument | None:
        return self._documents.get(uri)

    def close(self, uri: str) -> None:
        self._documents.pop(uri, None)

    def __len__(self) -> int:
        return len(self._documents)

    def __iter__(self) -> Iterator[TextDocument]:
        return iter(list(self._documents.values()))
