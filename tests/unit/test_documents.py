"""LSP positions (UTF-16 columns, three kinds of line break) and incremental edits."""

import pytest

from fim_lsp.documents import (
    InvalidPositionError,
    Position,
    TextDocument,
    offset_at,
    position_at,
    utf16_length,
)

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
