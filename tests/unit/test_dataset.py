"""`fim-lsp dataset`: holes cut out of real-looking code, and the quality bench reading them back."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from fim_lsp.bench.quality.run import edit_similarity, score_answer
from fim_lsp.bench.quality.systems import fit
from fim_lsp.bench.quality.tasks import dataset_tasks
from fim_lsp.dataset import (
    DatasetTask,
    code_line,
    cross_file_names,
    cut,
    cut_tasks,
    multi_line_holes,
    random_span,
    read_tasks,
    single_line_holes,
)
from fim_lsp.prompt import RepoFile

ORDERS = '''\
"""Orders and their totals."""

from shop.money import Money, round_cents
from shop.tax import tax_rate


class Order:
    def __init__(self, lines):
        self.lines = list(lines)

    def subtotal(self):
        total = Money(0)
        for line in self.lines:
            total = total + line.price * line.quantity
        return total

    def total(self, region):
        subtotal = self.subtotal()
        tax = subtotal * tax_rate(region)
        return round_cents(subtotal + tax)
'''
LINES = ORDERS.split("\n")


@pytest.mark.parametrize(
    ("line", "wanted"),
    [
        pytest.param("        total = Money(0)", True, id="assignment"),
        pytest.param("from shop.money import Money, round_cents", False, id="import"),
        pytest.param("    # add the tax of the region", False, id="comment"),
        pytest.param("        )", False, id="closing-bracket"),
        pytest.param("    x = 1", False, id="too-short"),
        pytest.param("    @property", False, id="decorator"),
        pytest.param("    ProtocolError,", False, id="name-in-an-import-list"),
    ],
)
def test_code_line(line, wanted):
    assert code_line(line) is wanted


def test_a_single_line_hole_starts_after_the_indentation_and_keeps_the_line_break_in_the_suffix():
    row = LINES.index("        total = Money(0)")
    prefix, middle, suffix = cut(ORDERS, LINES, row, row)
    assert middle == "total = Money(0)"
    assert prefix.endswith("def subtotal(self):\n        ")
    assert suffix.startswith("\n        for line")
    assert prefix + middle + suffix == ORDERS


def test_multi_line_holes_are_whole_statements_at_one_level():
    holes = multi_line_holes(LINES, random.Random(3))
    assert holes
    for first, last in holes:
        run = LINES[first : last + 1]
        levels = {len(line) - len(line.lstrip()) for line in run}
        assert len(levels) == 1, run
        following = next((line for line in LINES[last + 1 :] if line.strip()), "")
        assert len(following) - len(following.lstrip()) <= levels.pop()


def test_a_run_that_opens_a_block_is_not_a_multi_line_hole():
    lines = [
        "        for line in self.lines:",
        "            total = total + line.price",
        "        return total",
    ]
    rng = random.Random(0)
    assert all(first != 0 for first, _last in multi_line_holes(lines, rng))


def test_random_spans_put_the_file_back_together():
    rng = random.Random(7)
    for row, _ in single_line_holes(LINES):
        prefix, middle, suffix = random_span(ORDERS, LINES, row, rng)
        assert prefix + middle + suffix == ORDERS
        assert middle


def test_cross_file_names_are_imported_defined_elsewhere_and_not_here():
    line = "        tax = subtotal * tax_rate(region)"
    imported = {"Money", "round_cents", "tax_rate"}
    files = {"tax_rate": 1, "region": 1}
    defined_here = {"Order", "subtotal", "total"}
    assert cross_file_names(line, imported, defined_here, lambda name: files.get(name, 0)) == ["tax_rate"]
    # Too common a name says nothing about which definition the line needs.
    assert cross_file_names(line, imported, set(), lambda name: 9 if name == "tax_rate" else 0) == []
    # A word that some other file defines but this one does not import is no dependency (`region`).
    assert cross_file_names("    return region", imported, set(), lambda name: files.get(name, 0)) == []
    # A use of the name above shows the model how to write this one: no longer a cross-file line.
    assert cross_file_names(line, imported, defined_here, lambda name: files.get(name, 0), {"tax_rate"}) == []


def test_cross_file_tasks_from_a_repository(tmp_path: Path):
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "orders.py").write_text(ORDERS)
    (shop / "receipt.py").write_text(
        "from shop.money import Money\n\n\ndef describe(amount):\n"
        '    """\n    Format a Money amount for a receipt.\n    """\n    return Money.format(amount)\n\n\n'
        "def describe_nothing():\n    return Money.format(Money(0))\n"
    )
    (shop / "money.py").write_text(
        "class Money:\n    def __init__(self, cents):\n        self.cents = cents\n\n\n"
        "def round_cents(amount):\n    return Money(round(amount.cents))\n"
    )
    (shop / "tax.py").write_text(
        "def tax_rate(region):\n    return 0.2 if region == 'eu' else 0.1\n\n\n"
        "class Ledger:\n    def lines(self):\n        return []\n"
    )
    tasks = cut_tasks(tmp_path, per_kind=20, kinds=["cross-file"])
    lines = sorted(task.middle for task in tasks)
    # Each uses a name imported from another file for the first time in its file; `self.lines =
    # list(lines)` matches only a method, a docstring that mentions Money uses nothing, and the second
    # use of Money in receipt.py has the first above it.
    assert lines == [
        "return Money.format(amount)",
        "return round_cents(subtotal + tax)",
        "tax = subtotal * tax_rate(region)",
        "total = Money(0)",
    ]
    assert all(task.snippets for task in tasks)


def test_tasks_round_trip_through_json_lines(tmp_path: Path):
    task = DatasetTask(
        task_id="cross-file/0/shop/orders.py",
        kind="cross-file",
        repo="shop",
        path="shop/orders.py",
        language="python",
        prefix="x = ",
        suffix="\n",
        middle="tax_rate(region)",
        snippets=(RepoFile("shop/tax.py", "def tax_rate(region):\n    ...\n"),),
    )
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(task.to_json()) + "\n\n", encoding="utf-8")
    assert read_tasks(path) == [task]
    (loaded,) = dataset_tasks(path)["repo:cross-file"]
    assert loaded.snippets == task.snippets and loaded.metric == "exact-match"


def test_a_bad_task_line_is_named(tmp_path: Path):
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"kind": "single-line"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"tasks.jsonl:1"):
        read_tasks(path)


def test_multi_line_tasks_are_scored_on_every_line(tmp_path: Path):
    record = {
        "task_id": "multi-line/0/a.py",
        "kind": "multi-line",
        "path": "a.py",
        "language": "python",
        "prefix": "def f(x):\n    ",
        "suffix": "\n",
        "middle": "y = x + 1\n    return y",
    }
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    (task,) = dataset_tasks(path)["repo:multi-line"]
    assert score_answer(task, "y = x + 1\n    return y  \n")
    assert not score_answer(task, "y = x + 1\n    return x")  # the first line alone is not enough


@pytest.mark.parametrize(
    ("text", "reference", "expected"),
    [
        pytest.param("tax_rate(region)", "tax_rate(region)", 1.0, id="same"),
        pytest.param(None, "tax_rate(region)", 0.0, id="nothing-shown"),
        pytest.param("  tax_rate(region)\n", "tax_rate(region)", 1.0, id="surrounding-space"),
    ],
)
def test_edit_similarity(text, reference, expected):
    assert edit_similarity(text, reference) == expected


def test_edit_similarity_is_between_zero_and_one_for_near_misses():
    assert 0.5 < edit_similarity("tax_rates(region)", "tax_rate(region)") < 1.0


def test_fit_keeps_the_most_relevant_whole_snippets_in_order_within_the_budget():
    files = [RepoFile(f"{name}.py", name * 40) for name in "abcd"] + [RepoFile("e.py", "e" * 400)]
    kept = fit(files, 30, lambda text: len(text) // 4)  # 13 tokens each, the last 103
    # Retrieval puts the most relevant last: the last ones that fit are kept, in their order.
    assert [f.path for f in kept] == ["c.py", "d.py"]
