"""LSP positions (UTF-16 columns, three kinds of line break) and incremental edits."""

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fim_lsp import documents
from fim_lsp.documents import (
    DocumentStore,
    InvalidPositionError,
    Position,
    TextDocument,
    offset_at,
    position_at,
    utf16_length,
)
from fim_lsp.syntax import MAX_TREE_CHARS

TEXT = "a😀b\r\ncd\rx\u2028y\n"


@pytest.mark.parametrize(
    ("position", "offset"),
    [
        pytest.param(Position(0, 0), 0, id="start"),
        pytest.param(Position(0, 3), 2, id="after-astral-char"),
        pytest.param(Position(0, 4), 3, id="end-of-crlf-line"),
        pytest.param(Position(0, 99), 3, id="column-past-end-clamps"),
        pytest.param(Position(1, 1), 6, id="after-crlf"),
        pytest.param(Position(2, 2), 10, id="line-separator-is-not-a-break"),
        pytest.param(Position(3, 0), 12, id="last-empty-line"),
    ],
)
def test_offset_at(position, offset):
    assert offset_at(TEXT, position) == offset


def test_line_past_the_end_is_invalid():
    with pytest.raises(InvalidPositionError):
        offset_at(TEXT, Position(4, 0))
    assert offset_at(TEXT, Position(4, 0), clamp_line=True) == len(TEXT)


# Every offset but the one between the two characters of a "\r\n", which no position can name.
OFFSETS = [offset for offset in range(len(TEXT) + 1) if TEXT[offset - 1 : offset + 1] != "\r\n"]


@pytest.mark.parametrize("offset", OFFSETS)
def test_position_and_offset_agree(offset):
    assert offset_at(TEXT, position_at(TEXT, offset)) == offset


def test_utf16_length():
    assert utf16_length("a😀é") == 4


def test_incremental_changes():
    document = TextDocument("file:///a.py", "python", 1, "def f():\n    return 1\n")
    document.apply_change("2", Position(1, 11), Position(1, 12))
    document.apply_change("# 😀\n", Position(0, 0), Position(0, 0))
    document.apply_change("x", Position(0, 4), Position(0, 4))
    assert document.text == "# 😀x\ndef f():\n    return 2\n"


def test_full_change_replaces_the_text():
    document = TextDocument("file:///a.py", "python", 1, "old")
    document.apply_change("new")
    assert document.text == "new"


# --- the fast paths against the plain definition -------------------------------------------------------
# `offset_at` finds lines with `str.find` and columns with a scan for astral characters, and a document
# walks from the last line it looked up; here each is checked against the definition written plainly.

_BREAK = re.compile(r"\r\n|\r|\n")


def plain_offset_at(text: str, line: int, character: int) -> int | None:
    """The definition: lines split at CRLF, CR, LF; columns in UTF-16 units, clamped to the line; a
    column inside a surrogate pair is after it; None for a line past the end."""
    starts = [0] + [m.end() for m in _BREAK.finditer(text)]
    if line >= len(starts):
        return None
    match = _BREAK.search(text, starts[line])
    end = match.start() if match else len(text)
    offset, units = starts[line], character
    while offset < end and units > 0:
        units -= 2 if ord(text[offset]) > 0xFFFF else 1
        offset += 1
    return offset


pieces = st.one_of(
    st.characters(blacklist_categories=("Cs",)),
    st.sampled_from(["\r\n", "\r", "\n", "\n\n", "😀", "a😀", "\u2028", "é"]),
)
texts = st.lists(pieces, max_size=60).map("".join)
positions = st.tuples(st.integers(0, 12), st.integers(0, 14))


@settings(max_examples=300, deadline=None)
@given(text=texts, position=positions)
def test_offset_at_is_the_plain_definition(text, position):
    expected = plain_offset_at(text, *position)
    if expected is None:
        with pytest.raises(InvalidPositionError):
            offset_at(text, Position(*position))
    else:
        assert offset_at(text, Position(*position)) == expected


@settings(max_examples=1000, deadline=None)
@given(
    text=texts, edits=st.lists(st.tuples(positions, positions, texts), max_size=8), probes=st.lists(positions)
)
@example(text="\n", edits=[((0, 0), (1, 0), "1"), ((0, 0), (0, 0), "0")], probes=[])  # the break was removed
@example(text="a\rb", edits=[((1, 0), (1, 0), "\n")], probes=[(1, 0)])  # "\r" + "\n" made one break
def test_a_document_edited_anywhere_finds_positions_as_the_definition_does(text, edits, probes):
    """Edits above, at and below the line last looked up, across CR and CRLF, keep its anchor right."""
    document = TextDocument("file:///a.txt", "plaintext", 1, text)
    for start, end, inserted in edits:
        begin = plain_offset_at(text, *start)
        finish = plain_offset_at(text, *end)
        begin = len(text) if begin is None else begin
        finish = len(text) if finish is None else finish
        begin, finish = min(begin, finish), max(begin, finish)
        text = text[:begin] + inserted + text[finish:]
        document.apply_change(inserted, Position(*start), Position(*end))
        assert document.text == text
        for probe in probes:
            expected = plain_offset_at(text, *probe)
            assert document.offset_at(Position(*probe), clamp_line=True) == (
                len(text) if expected is None else expected
            )


def test_a_long_line_and_many_lines_cost_no_walk_per_keystroke(monkeypatch):
    """Typing at the end of a 10 MB line, or of a 200,000-line file: after the first change each one
    walks no lines (the document remembers where the cursor's line starts); a walk from the top takes
    60-70 ms per position on these."""
    walked: list[int] = []
    walk_down, walk_up = documents._walk_down, documents._walk_up

    def counted_down(text, start, count, has_cr):
        walked.append(count)
        return walk_down(text, start, count, has_cr)

    def counted_up(text, start, count, has_cr):
        walked.append(count)
        return walk_up(text, start, count, has_cr)

    monkeypatch.setattr(documents, "_walk_down", counted_down)
    monkeypatch.setattr(documents, "_walk_up", counted_up)
    for text, line in (("x" * 10_000_000 + "\n", 0), ("value = 1\n" * 200_000, 199_999)):
        document = TextDocument("file:///big.py", "python", 1, text)
        column = len(text.split("\n")[line])
        document.apply_change("y", Position(line, column), Position(line, column))  # the first walk
        assert sum(walked) == line  # from the top, once
        walked.clear()
        for typed in range(1, 101):
            document.apply_change("y", Position(line, column + typed), Position(line, column + typed))
        assert document.text.endswith("y" * 101 + "\n")
        assert sum(walked) == 0, "a keystroke walked over lines"


def test_an_open_document_keeps_its_tree_in_step_with_its_text():
    store = DocumentStore()
    document = store.open("file:///w/a.py", "python", 1, "def f():\n    return 1\n")
    assert document.syntax is not None and document.syntax.text == document.text
    assert document.syntax.error_count() == 0
    document.apply_change("(", Position(1, 11), Position(1, 11))
    assert document.syntax.text != document.text  # one tree per batch of changes, when asked
    document.sync_syntax()
    assert document.syntax.text == document.text and document.syntax.error_count() > 0


def test_a_document_without_a_grammar_keeps_no_tree():
    store = DocumentStore()
    assert store.open("file:///w/notes.txt", "plaintext", 1, "some notes\n").syntax is None
    assert store.open("file:///w/b.py", "python", 1, "x" * (MAX_TREE_CHARS + 1)).syntax is None
