"""Syntax-aware completion through the server in TypeScript and Go (Python is in test_server.py).

The server keeps a tree of each open document, re-parsed on every change; these tests check what that
buys an editor: a block answer that leaves the file parseable and does not repeat the closing lines the
file already has, and a one-line answer at most where the cursor's line goes on, inside a word too.
"""

from __future__ import annotations

import pytest

from fim_lsp.syntax import count_errors, new_parser, utf8
from tests.e2e.conftest import FAST_MODEL

pytestmark = pytest.mark.model

CURSOR = "█"

TYPESCRIPT_CART = """\
export interface Item {
  name: string;
  price: number;
  quantity: number;
}

export function cartTotal(items: Item[]): number {
  █
}

export function formatPrice(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`;
}
"""

GO_LEDGER = """\
package ledger

type Entry struct {
\tAccount string
\tCents   int64
}

// Balance adds up the cents of every entry that belongs to account.
func Balance(entries []Entry, account string) int64 {
\t█
}

func main() {
\tprintln(Balance(nil, "cash"))
}
"""


def split_cursor(marked: str) -> tuple[str, int, int]:
    """The text without the cursor mark, and the cursor's line and (ASCII) column."""
    before = marked[: marked.index(CURSOR)]
    line = before.count("\n")
    return marked.replace(CURSOR, ""), line, len(before) - (before.rfind("\n") + 1)


def insert_at(text: str, line: int, column: int, middle: str) -> str:
    lines = text.split("\n")
    lines[line] = lines[line][:column] + middle + lines[line][column:]
    return "\n".join(lines)


def errors_in(language: str, text: str) -> int:
    return count_errors(new_parser(language).parse(utf8(text)).root_node)


@pytest.mark.parametrize(
    ("language_id", "grammar", "uri", "marked", "closing"),
    [
        pytest.param("typescript", "typescript", "file:///work/cart.ts", TYPESCRIPT_CART, "}", id="ts"),
        pytest.param("go", "go", "file:///work/ledger.go", GO_LEDGER, "}", id="go"),
    ],
)
async def test_a_function_body_is_written_whole_and_the_file_still_parses(
    start_editor, language_id, grammar, uri, marked, closing
):
    editor = await start_editor({"model": FAST_MODEL})
    await editor.wait_until("ready")
    text, line, column = split_cursor(marked)
    editor.open(uri, text, language_id)

    (item,) = await editor.inline(uri, line, column)
    completed = insert_at(text, line, column, item.insert_text)
    assert item.insert_text.strip(), "a body was asked for"
    assert "return" in item.insert_text
    assert errors_in(grammar, completed) == 0, completed
    # The function's closing brace is already in the file: the answer must not bring a second one.
    assert completed.count(f"\n{closing}\n") == text.count(f"\n{closing}\n")


async def test_typescript_after_edits_gets_one_line_where_the_line_goes_on(start_editor):
    editor = await start_editor({"model": FAST_MODEL})
    await editor.wait_until("ready")
    uri = "file:///work/cart.ts"
    text, line, column = split_cursor(TYPESCRIPT_CART)
    editor.open(uri, text, "typescript")
    # Type a statement with its end already there, as editors auto-close brackets: `;` follows the cursor.
    typed = "const total = "
    editor.change(uri, typed + ";", (line, column), (line, column))
    expected = insert_at(text, line, column, typed + ";")
    state = await editor.document_state(uri)
    assert state["length"] == len(expected)

    (item,) = await editor.inline(uri, line, column + len(typed))
    assert item.insert_text.strip() and "\n" not in item.insert_text
    assert not item.insert_text.rstrip().endswith(";"), "the `;` after the cursor is the file's already"


async def test_go_inside_an_identifier_gets_one_line_at_most(start_editor):
    editor = await start_editor({"model": FAST_MODEL})
    await editor.wait_until("ready")
    uri = "file:///work/ledger.go"
    text, _line, _column = split_cursor(GO_LEDGER)
    editor.open(uri, text, "go")
    # Between "Bal" and "ance" in `func Balance(`: the identifier goes on to the right. The model is asked
    # (a word may be half written), and whatever it says fits on the line.
    items = await editor.inline(uri, 8, len("func Bal"))
    assert len(items) <= 1
    assert all("\n" not in item.insert_text.strip("\n") for item in items)
