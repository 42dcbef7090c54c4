"""Snippets for a cursor: definitions of what the code uses, similar chunks, recent edits; stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from fim_lsp.prompt import FILE_SEPARATOR_TOKENS, RepoFile
from fim_lsp.workspace import retrieval
from fim_lsp.workspace.index import WorkspaceIndex
from fim_lsp.workspace.retrieval import SnippetRetriever, definition_rows, snippets_for
from fim_lsp.workspace.symbols import definitions
from tests.unit.workspace_samples import PRICING_PY

CURSOR = "█"


CART_PY = """from shop.pricing import apply_discount


class Cart:
    def __init__(self):
        self.items = []

    def total(self):
        subtotal = sum(item.price for item in self.items)
        discounted = apply_discount(subtotal, 10)
        █
"""

# A CSV exporter in another file: the code being written in report.py looks very much like it.
EXPORT_PY = """import csv


def unrelated_helper(value):
    return str(value).strip()


def export_invoices_csv(invoices, handle):
    writer = csv.writer(handle)
    writer.writerow(["number", "customer", "amount", "currency"])
    for invoice in invoices:
        writer.writerow([invoice.number, invoice.customer, invoice.amount, invoice.currency])
    return handle
"""

REPORT_PY = """import csv


def export_refunds_csv(refunds, handle):
    writer = csv.writer(handle)
    writer.writerow(["number", "customer", "amount", "currency"])
    █
"""

NOISE_PY = """def parse_header(line):
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


def read_headers(stream):
    headers = {}
    for line in stream:
        if not line.strip():
            break
        name, value = parse_header(line)
        headers[name] = value
    return headers
"""


def tokens(text: str) -> int:
    """A stand-in tokenizer: about four characters a token."""
    return (len(text) + 3) // 4


def split_cursor(marked: str) -> tuple[str, int]:
    return marked.replace(CURSOR, ""), marked.index(CURSOR)


def make_workspace(root: Path, files: dict[str, str]) -> WorkspaceIndex:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace(CURSOR, ""), encoding="utf-8")
    index = WorkspaceIndex()
    index.add_folder(root)
    index.build()
    return index


def retrieve(
    index: WorkspaceIndex, root: Path, relative: str, marked: str, budget: int = 400
) -> list[RepoFile]:
    text, offset = split_cursor(marked)
    return snippets_for(index, str(root / relative), text, offset, "python", budget, tokens)


def test_definition_of_an_imported_function_from_another_file(tmp_path):
    index = make_workspace(tmp_path, {"shop/pricing.py": PRICING_PY, "shop/cart.py": CART_PY})
    files = retrieve(index, tmp_path, "shop/cart.py", CART_PY)
    assert [f.path for f in files] == ["shop/pricing.py"]
    assert files[0].text.startswith(
        "def apply_discount(price: float, percent: float) -> float:\n"
        '    """`price` reduced by `percent` per cent."""\n'
    )
    assert "shop/cart.py" not in [f.path for f in files]  # the cursor's own file is never a snippet


def test_the_words_of_an_imported_module_path_are_not_looked_up(tmp_path):
    # `shop` in `from shop.pricing import ...` names a folder; a variable that happens to share the
    # name (as pygls's `__init__.py` has `pygls = "pygls"`) is no definition the code needs.
    files = {"shop/__init__.py": 'shop = "shop"\n', "shop/pricing.py": PRICING_PY, "shop/cart.py": CART_PY}
    index = make_workspace(tmp_path, files)
    assert [f.path for f in retrieve(index, tmp_path, "shop/cart.py", CART_PY)] == ["shop/pricing.py"]


def test_long_definition_is_shown_by_its_header():
    body = "".join(f"    step_{n} = price * {n}\n" for n in range(30))
    long_pricing = PRICING_PY.replace(
        "    return price * (1 - percent / 100)\n", body + "    return price * (1 - percent / 100)\n"
    )
    lines = long_pricing.split("\n")
    long, short = (d for d in definitions(long_pricing, "python") if d.name in ("with_tax", "apply_discount"))
    first, last = definition_rows(long)
    assert lines[first : last + 1] == [
        "def apply_discount(price: float, percent: float) -> float:",
        '    """`price` reduced by `percent` per cent."""',
    ]
    first, last = definition_rows(short)
    assert lines[first : last + 1] == [
        "def with_tax(price: float) -> float:",
        "    return price * (1 + TAX_RATE)",
    ]


def test_bm25_ranks_the_similar_chunk_first(tmp_path):
    index = make_workspace(
        tmp_path,
        {"billing/export.py": EXPORT_PY, "http/headers.py": NOISE_PY, "billing/report.py": REPORT_PY},
    )
    text, _offset = split_cursor(REPORT_PY)
    hits = index.similar_chunks(
        retrieval.terms_of(text), exclude=str(tmp_path / "billing/report.py"), limit=3
    )
    assert hits[0].file.relative == "billing/export.py"
    files = retrieve(index, tmp_path, "billing/report.py", REPORT_PY)
    assert files[-1].path == "billing/export.py"  # the most relevant file last, next to the cursor
    assert "writer.writerow([invoice.number" in files[-1].text


def test_recent_edits_in_other_files_are_offered(tmp_path):
    index = make_workspace(tmp_path, {"shop/pricing.py": PRICING_PY, "http/headers.py": NOISE_PY})
    index.note_edit(str(tmp_path / "http/headers.py"), 10)
    marked = "def unrelated():\n    █\n"
    files = retrieve(index, tmp_path, "shop/new.py", marked)
    assert [f.path for f in files] == ["http/headers.py"]
    assert "headers[name] = value" in files[0].text


@pytest.mark.parametrize("budget", [40, 80, 150, 400])
def test_budget_is_respected(tmp_path, budget):
    files = {f"shop/pricing_{n}.py": PRICING_PY.replace("apply_discount", f"discount_{n}") for n in range(8)}
    uses = ", ".join(f"discount_{n}" for n in range(8))
    files["shop/cart.py"] = f"from shop import {uses}\n\n\ndef checkout(price):\n    x = {uses}\n    █\n"
    index = make_workspace(tmp_path, files)
    found = retrieve(index, tmp_path, "shop/cart.py", files["shop/cart.py"], budget=budget)
    spent = sum(tokens(f"{f.path}\n{f.text}") + FILE_SEPARATOR_TOKENS for f in found)
    assert spent <= budget
    if budget >= 80:
        assert found


def test_no_budget_no_snippets(tmp_path):
    index = make_workspace(tmp_path, {"shop/pricing.py": PRICING_PY, "shop/cart.py": CART_PY})
    assert retrieve(index, tmp_path, "shop/cart.py", CART_PY, budget=0) == []


def test_typing_on_the_cursor_line_gives_identical_snippets(tmp_path):
    index = make_workspace(
        tmp_path,
        {
            "shop/pricing.py": PRICING_PY,
            "billing/export.py": EXPORT_PY,
            "http/headers.py": NOISE_PY,
            "shop/cart.py": CART_PY,
        },
    )
    cart = str(tmp_path / "shop/cart.py")
    text, offset = split_cursor(CART_PY)
    first = snippets_for(index, cart, text, offset, "python", 400, tokens)
    assert first
    typed = ""
    for character in "return with_tax(export_invoices_csv(headers":
        typed += character
        now_text = text[:offset] + typed + text[offset:]
        # The editor sends each change: the buffer of the cursor's own file changes every keystroke.
        index.set_buffer(cart, now_text)
        again = snippets_for(index, cart, now_text, offset + len(typed), "python", 400, tokens)
        assert again == first


def test_repeated_query_is_answered_from_the_memo(tmp_path, monkeypatch):
    index = make_workspace(tmp_path, {"shop/pricing.py": PRICING_PY, "shop/cart.py": CART_PY})
    retriever = SnippetRetriever(index)
    text, offset = split_cursor(CART_PY)
    cart = str(tmp_path / "shop/cart.py")
    first = retriever.snippets_for(cart, text, offset, "python", 400, tokens)
    monkeypatch.setattr(retriever, "_candidates", lambda query: pytest.fail("not memoised"))
    assert retriever.snippets_for(cart, text, offset, "python", 400, tokens) is first


def test_a_change_in_another_file_is_seen(tmp_path):
    index = make_workspace(tmp_path, {"shop/pricing.py": PRICING_PY, "shop/cart.py": CART_PY})
    first = retrieve(index, tmp_path, "shop/cart.py", CART_PY)
    index.set_buffer(
        str(tmp_path / "shop/pricing.py"),
        PRICING_PY.replace(
            "def apply_discount(price: float, percent: float)", "def apply_discount(price, rate)"
        ),
    )
    second = retrieve(index, tmp_path, "shop/cart.py", CART_PY)
    assert second != first
    assert "def apply_discount(price, rate)" in second[0].text


def test_next_line_keeps_snippets_that_are_still_relevant(tmp_path):
    index = make_workspace(
        tmp_path, {"shop/pricing.py": PRICING_PY, "http/headers.py": NOISE_PY, "shop/cart.py": CART_PY}
    )
    first = retrieve(index, tmp_path, "shop/cart.py", CART_PY)
    # Enter pressed: one more row above the cursor, using nothing new.
    moved = CART_PY.replace("        █\n", "        result = discounted\n        █\n")
    assert retrieve(index, tmp_path, "shop/cart.py", moved) == first
    # A newly used name brings its definition in.
    uses_new = CART_PY.replace("        █\n", "        taxed = with_tax(discounted)\n        █\n")
    changed = retrieve(index, tmp_path, "shop/cart.py", uses_new)
    assert "def with_tax(price: float) -> float:" in changed[-1].text


def test_output_order_is_deterministic_across_indexes(tmp_path):
    files = {
        "shop/pricing.py": PRICING_PY,
        "billing/export.py": EXPORT_PY,
        "http/headers.py": NOISE_PY,
        "shop/cart.py": CART_PY,
    }
    first = retrieve(make_workspace(tmp_path, files), tmp_path, "shop/cart.py", CART_PY)
    second = retrieve(make_workspace(tmp_path, files), tmp_path, "shop/cart.py", CART_PY)
    assert first == second


def test_ambiguous_names_need_an_import_to_say_where(tmp_path):
    files = {f"pkg_{n}/util.py": "def load(path):\n    return open(path).read()\n" for n in range(5)}
    files["app/main.py"] = "from pkg_3.util import load\n\n\ndef main():\n    data = load('x')\n    █\n"
    index = make_workspace(tmp_path, files)
    found = retrieve(index, tmp_path, "app/main.py", files["app/main.py"])
    definitions = [f.path for f in found if f.text.startswith("def load")]
    assert definitions == ["pkg_3/util.py"]


def test_an_empty_answer_does_not_stick(tmp_path):
    index = make_workspace(tmp_path, {"shop/cart.py": CART_PY})
    assert retrieve(index, tmp_path, "shop/cart.py", CART_PY) == []
    (tmp_path / "shop/pricing.py").write_text(PRICING_PY, encoding="utf-8")
    index.update_file(str(tmp_path / "shop/pricing.py"))
    moved = CART_PY.replace("        █\n", "        result = discounted\n        █\n")
    assert [f.path for f in retrieve(index, tmp_path, "shop/cart.py", moved)] == ["shop/pricing.py"]


LEDGER_PY = '''class Ledger:
    def post(self, entry):
        """
        Record one entry.

        Entries are kept in the order they are posted.
        """
        self.entries.append(entry)

    def balance(self):
        """The sum of every entry."""
        return sum(entry.amount for entry in self.entries)
'''


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param((3, 9), (1, 8), id="starting-in-a-docstring-starts-at-its-definition"),
        pytest.param((7, 9), (7, 8), id="ending-on-a-signature-ends-before-it"),
        pytest.param((7, 10), (7, 10), id="a-whole-header-stays"),
        pytest.param((0, 4), (0, 0), id="ending-in-a-docstring-keeps-what-is-above-it"),
    ],
)
def test_similar_chunks_are_moved_off_the_middle_of_a_header(rows, expected):
    # Chunks are fixed blocks of rows; a docstring's tail at the start of one reads to a model as code.
    assert retrieval._off_headers(definitions(LEDGER_PY, "python"), *rows) == expected


ACCOUNTS_PY = '''"""Accounts and their ledgers."""


class Account:
    """A customer's account: its ledger, limits and statements."""

    def __init__(self, owner: str, limit: float = 0.0) -> None:
        self.owner = owner
        self.limit = limit
        self.ledger = Ledger()

    @property
    def balance(self) -> float:
        """What the account holds now."""
        return self.ledger.balance()

    def deposit(
        self, amount: float, memo: str = ""
    ) -> None:
        self.ledger.post(Entry(amount, memo))

    def _check_limit(self, amount: float) -> None:
        if self.balance - amount < -self.limit:
            raise OverdraftError(self.owner, amount)

    def withdraw(self, amount: float) -> None:
        self._check_limit(amount)
        self.ledger.post(Entry(-amount, "withdrawal"))
'''

TELLER_PY = """from bank.accounts import Account


def open_account(owner):
    account = Account(owner)
    █
"""


def test_a_long_class_is_outlined_by_its_public_method_signatures(tmp_path):
    index = make_workspace(tmp_path, {"bank/accounts.py": ACCOUNTS_PY, "bank/teller.py": TELLER_PY})
    files = retrieve(index, tmp_path, "bank/teller.py", TELLER_PY)
    assert [f.path for f in files] == ["bank/accounts.py"]
    # The header, then each public method's signature (decorators, docstrings and bodies left out);
    # the constructor is kept and the private helper is not.
    assert files[0].text == (
        "class Account:\n"
        '    """A customer\'s account: its ledger, limits and statements."""\n'
        "\n"
        "    def __init__(self, owner: str, limit: float = 0.0) -> None:\n"
        "\n"
        "    def balance(self) -> float:\n"
        "\n"
        "    def deposit(\n"
        '        self, amount: float, memo: str = ""\n'
        "    ) -> None:\n"
        "\n"
        "    def withdraw(self, amount: float) -> None:\n"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(["  @property", "  def rows(self) -> int:", '    """How many."""'], (1, 1), id="python"),
        pytest.param(["  /** Adds. */", "  @Override", "  public int add(int a) {"], (2, 2), id="java"),
        pytest.param(["  push(item: T): void;"], (0, 0), id="typescript-signature"),
        pytest.param(["def f(", "    a,", "    b,", "    c,", "    d,", "):"], (0, 3), id="capped"),
    ],
)
def test_signature_rows(header, expected):
    assert retrieval.signature_rows(header, 0, len(header) - 1) == expected
