"""The workspace index: build, incremental updates, open buffers, bad input, and its compact postings."""

from __future__ import annotations

import logging
import os
import random
import threading
from pathlib import Path

import pytest

from fim_lsp.workspace import bm25
from fim_lsp.workspace import files as files_module
from fim_lsp.workspace import index as index_module
from fim_lsp.workspace import recent as recent_module
from fim_lsp.workspace.bm25 import terms_of
from fim_lsp.workspace.files import IndexLimits
from fim_lsp.workspace.index import WorkspaceIndex
from fim_lsp.workspace.postings import Postings
from tests.unit.workspace_samples import PRICING_PY, write

INVENTORY_GO = """package inventory

// Warehouse holds stock per SKU.
type Warehouse struct {
\tstock map[string]int
}

// Reserve takes n items of sku out of stock.
func (w *Warehouse) Reserve(sku string, n int) error {
\tif w.stock[sku] < n {
\t\treturn ErrOutOfStock
\t}
\tw.stock[sku] -= n
\treturn nil
}
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    write(tmp_path, "shop/pricing.py", PRICING_PY)
    write(tmp_path, "inventory/warehouse.go", INVENTORY_GO)
    write(tmp_path, "node_modules/left-pad/index.js", "module.exports = function leftPad() {};\n")
    return tmp_path


def built(root: Path, limits: IndexLimits | None = None) -> WorkspaceIndex:
    index = WorkspaceIndex(limits)
    index.add_folder(root)
    index.build()
    return index


def names(index: WorkspaceIndex, path: Path) -> list[str]:
    entry = index.get(str(path))
    return [] if entry is None else [d.name for d in entry.definitions()]


def test_build_indexes_sources_and_their_definitions(workspace):
    index = built(workspace)
    stats = index.stats()
    assert stats.files == 2
    assert index.paths() == [str(workspace / "inventory/warehouse.go"), str(workspace / "shop/pricing.py")]
    assert names(index, workspace / "shop/pricing.py") == ["TAX_RATE", "apply_discount", "with_tax"]
    assert names(index, workspace / "inventory/warehouse.go") == ["Warehouse", "Reserve"]
    [(entry, definition)] = index.lookup("apply_discount")
    assert entry.relative == "shop/pricing.py"
    assert definition.kind == "function"
    assert index.lookup("leftPad") == []  # node_modules is not the workspace's code
    assert index.relative_path(str(workspace / "shop/pricing.py")) == "shop/pricing.py"


def test_progress_is_reported_and_ends_at_the_total(workspace):
    reports: list[tuple[int, int]] = []
    index = WorkspaceIndex()
    index.add_folder(workspace)
    index.build(progress=lambda done, total: reports.append((done, total)))
    assert reports[-1] == (2, 2)


def test_cancel_stops_the_build(workspace):
    index = WorkspaceIndex()
    index.add_folder(workspace)
    index.build(cancel=lambda: True)
    assert index.stats().files == 0


def test_build_in_background_does_not_block(workspace):
    index = WorkspaceIndex()
    index.add_folder(workspace)
    finished = threading.Event()
    thread = index.build_in_background(done=finished.set)
    assert finished.wait(timeout=30)
    thread.join(timeout=5)
    assert index.stats().files == 2 and not index.stats().building


def test_second_build_reads_only_what_changed(workspace, monkeypatch):
    index = built(workspace)
    read: list[str] = []
    real_read = index_module.read_source
    monkeypatch.setattr(
        index_module, "read_source", lambda path, cap: read.append(path) or real_read(path, cap)
    )
    pricing = workspace / "shop/pricing.py"
    pricing.write_text(PRICING_PY.replace("0.2", "0.25"), encoding="utf-8")
    os.utime(pricing, ns=(1, 1))  # a new stamp even on a file system with coarse times
    (workspace / "inventory/warehouse.go").unlink()
    index.build()
    assert read == [str(pricing)]
    assert index.stats().files == 1
    assert index.lookup("Reserve") == []


def test_update_and_remove_file(workspace):
    index = built(workspace)
    pricing = workspace / "shop/pricing.py"
    pricing.write_text(PRICING_PY + "\n\ndef refund(order_id: int) -> None:\n    pass\n", encoding="utf-8")
    index.update_file(str(pricing))
    assert "refund" in names(index, pricing)
    index.remove_file(str(pricing))
    assert index.get(str(pricing)) is None
    assert index.lookup("apply_discount") == []
    # Every posting of the removed file went with it.
    assert all(hit.file.path != str(pricing) for hit in index.similar_chunks(terms_of(PRICING_PY)))


def test_buffer_overrides_disk_until_closed(workspace):
    index = built(workspace)
    pricing = workspace / "shop/pricing.py"
    index.set_buffer(str(pricing), PRICING_PY.replace("def with_tax", "def with_vat"))
    index.refresh()
    assert "with_vat" in names(index, pricing) and "with_tax" not in names(index, pricing)
    # A change on disk (the watcher's update) does not replace what the editor shows.
    index.update_file(str(pricing))
    assert "with_vat" in names(index, pricing)
    index.close_buffer(str(pricing))
    index.refresh()
    assert "with_tax" in names(index, pricing)


def test_refresh_leaves_the_excluded_buffer_stale(workspace):
    index = built(workspace)
    pricing = str(workspace / "shop/pricing.py")
    index.set_buffer(pricing, PRICING_PY.replace("def with_tax", "def with_vat"))
    index.refresh(exclude=pricing)
    assert "with_tax" in names(index, Path(pricing))  # the file being typed in is not re-indexed


def test_buffer_outside_every_folder_is_indexed(tmp_path, workspace):
    index = built(workspace)
    scratch = tmp_path.parent / "scratch_notes.py"
    index.set_buffer(str(scratch), "def scratch_helper():\n    return 1\n")
    index.refresh()
    [(entry, _definition)] = index.lookup("scratch_helper")
    assert entry.relative == str(scratch)


def test_files_over_the_total_cap_are_left_out_with_a_log_line(workspace, caplog):
    module = PRICING_PY.replace("apply_discount", "discount")
    for n in range(5):
        write(workspace, f"shop/module_{n}.py", module)
    # Breadth first and sorted: inventory/warehouse.go, then shop/module_0.py, module_1.py, ...
    cap = len(INVENTORY_GO) + 2 * len(module)
    with caplog.at_level(logging.INFO, logger="fim_lsp.workspace"):
        index = built(workspace, IndexLimits(max_total_bytes=cap))
    assert index.stats().files == 3
    assert index.stats().skipped == {"over the total cap": 4}
    assert "cap on all files is reached" in caplog.text


def test_file_cap_stops_the_listing(workspace, caplog):
    with caplog.at_level(logging.INFO, logger="fim_lsp.workspace"):
        index = built(workspace, IndexLimits(max_files=1))
    assert index.stats().files == 1
    assert "1-file cap" in caplog.text


def test_bad_input_is_skipped_never_a_crash(workspace, caplog):
    write(workspace, "bin/tool.py", b"\x00\x01binary")
    write(workspace, "big/dump.py", b"x = 1\n" * 100_000)
    write(workspace, "legacy/latin.c", "/* Cr\xe9\xe9 */\nint total(void) { return 1; }\n".encode("latin-1"))
    os.symlink(workspace, workspace / "shop" / "loop")
    os.symlink(workspace / "missing.py", workspace / "dangling.py")
    with caplog.at_level(logging.DEBUG, logger="fim_lsp.workspace"):
        index = built(workspace, IndexLimits(max_file_bytes=64 * 1024))
    assert index.stats().skipped == {"binary": 1, "too large": 1}
    assert "total" in names(index, workspace / "legacy/latin.c")
    assert "binary" in caplog.text and "not UTF-8" in caplog.text


def test_file_vanishing_between_listing_and_reading(workspace, monkeypatch, caplog):
    doomed = workspace / "shop/doomed.py"
    write(workspace, "shop/doomed.py", PRICING_PY)
    real_read = index_module.read_source

    def vanish_first(path: str, cap: int) -> str:
        if path == str(doomed) and doomed.exists():
            doomed.unlink()
        return real_read(path, cap)

    monkeypatch.setattr(index_module, "read_source", vanish_first)
    with caplog.at_level(logging.DEBUG, logger="fim_lsp.workspace"):
        index = built(workspace)
    assert index.get(str(doomed)) is None
    assert index.stats().files == 2
    assert "doomed.py" in caplog.text


def test_a_bug_on_one_file_does_not_stop_the_build(workspace, monkeypatch, caplog):
    real_analyse = index_module.analyse

    def flaky(text: str, language: str | None):
        if language == "go":
            raise RuntimeError("a parser bug")
        return real_analyse(text, language)

    monkeypatch.setattr(index_module, "analyse", flaky)
    index = built(workspace)
    assert index.stats().files == 1
    assert "could not index" in caplog.text


def test_note_edit_merges_nearby_rows_and_is_bounded(workspace):
    index = built(workspace)
    pricing = str(workspace / "shop/pricing.py")
    index.note_edit(pricing, 10)
    index.note_edit(pricing, 12)
    [recent] = index.recent_ranges()
    assert (recent.first, recent.last) == (6, 16)
    for row in range(0, 2000, 100):
        index.note_edit(pricing, row)
    ranges = index.recent_ranges()
    assert len(ranges) == recent_module.RECENT_RANGES
    assert ranges[0].first == 1900 - recent_module.RECENT_RADIUS  # newest first


def test_changed_since_names_the_changed_files(workspace):
    index = built(workspace)
    version = index.version
    pricing = str(workspace / "shop/pricing.py")
    index.set_buffer(pricing, PRICING_PY + "\n# edited\n")
    index.refresh()
    assert index.changed_since(version) == {pricing}
    assert index.changed_since(index.version) == set()


def test_similar_chunks_skip_the_excluded_file_and_order_ties_by_path(tmp_path):
    for name in ("b_copy.py", "a_copy.py", "c_copy.py"):
        write(tmp_path, name, PRICING_PY)
    index = built(tmp_path)
    hits = index.similar_chunks(terms_of(PRICING_PY), exclude=str(tmp_path / "c_copy.py"), limit=3)
    assert [hit.file.relative for hit in hits][:2] == ["a_copy.py", "b_copy.py"]


# --- the compact postings, checked against a plain dict of lists ---


def test_postings_match_a_plain_dict_through_adds_merges_and_removals():
    rng = random.Random(7)
    postings = Postings()
    reference: dict[int, list[int]] = {}
    next_block = 0
    files: list[tuple[int, int, set[int]]] = []
    for step in range(3000):
        if files and rng.random() < 0.3:
            low, high, keys = files.pop(rng.randrange(len(files)))
            for key in keys:
                postings.remove_range(key, low, high)
                reference[key] = [p for p in reference.get(key, []) if not low <= p < high]
        else:
            first = next_block
            keys: set[int] = set()
            for block in range(first, first + rng.randint(1, 5)):
                for key in rng.sample(range(1, 400), rng.randint(1, 6)):
                    posting = block << 4 | rng.randint(1, 15)
                    postings.add(key * 4099 + (key % 7) * 2**40, posting)
                    reference.setdefault(key * 4099 + (key % 7) * 2**40, []).append(posting)
                    keys.add(key * 4099 + (key % 7) * 2**40)
                next_block = block + 1
            files.append((first << 4, next_block << 4, keys))
            next_block += 1
        if step % 500 == 0:
            postings.merge()
    for key, expected in reference.items():
        assert list(postings.get(key)) == expected
        assert postings.count(key) == len(expected)
    assert len(postings) == sum(len(v) for v in reference.values())
    assert postings.terms() == sum(1 for v in reference.values() if v)


def test_module_reads_through_the_indexer_filter(workspace):
    # The indexer and the watcher ask the same filter: a file the walk skips is not indexed by events.
    index = built(workspace)
    ignored = write(workspace, "node_modules/left-pad/extra.js", "function more() {}\n")
    index.update_file(str(ignored))
    assert index.get(str(ignored)) is None
    assert files_module.has_excluded_part(str(ignored), str(workspace))


def test_a_second_folder_prefixes_every_name_with_its_folder(tmp_path):
    write(tmp_path, "shop/pricing.py", PRICING_PY)
    write(tmp_path, "stock/warehouse.go", INVENTORY_GO)
    index = WorkspaceIndex()
    index.add_folder(tmp_path / "shop")
    index.build()
    assert index.get(str(tmp_path / "shop/pricing.py")).relative == "pricing.py"
    index.add_folder(tmp_path / "stock")
    index.build()
    assert index.get(str(tmp_path / "shop/pricing.py")).relative == "shop/pricing.py"
    assert index.relative_path(str(tmp_path / "stock/warehouse.go")) == "stock/warehouse.go"
    index.remove_folder(tmp_path / "stock")
    assert index.get(str(tmp_path / "stock/warehouse.go")) is None
    assert index.get(str(tmp_path / "shop/pricing.py")).relative == "pricing.py"


def test_block_ids_are_renumbered_when_they_run_out(workspace, monkeypatch):
    monkeypatch.setattr(bm25, "MAX_BLOCK_ID", 12)
    index = built(workspace)
    pricing = str(workspace / "shop/pricing.py")
    for n in range(10):  # every re-index takes new ids: they run out, and start again from 0
        index.set_buffer(pricing, PRICING_PY + f"\nVERSION_{n} = {n}\n")
        index.refresh()
    assert index._blocks._next_block <= 12
    hits = index.similar_chunks(terms_of("def apply_discount(price, percent): TAX_RATE"), limit=2)
    assert [hit.file.path for hit in hits] == [pricing]
    hits = index.similar_chunks(terms_of("Reserve sku stock Warehouse"), limit=1)
    assert hits[0].file.relative == "inventory/warehouse.go"


def test_queries_run_while_the_index_builds(tmp_path):
    for n in range(150):
        write(
            tmp_path,
            f"pkg_{n % 10}/module_{n}.py",
            PRICING_PY.replace("apply_discount", f"apply_discount_{n}").replace("TAX_RATE", f"RATE_{n}"),
        )
    index = WorkspaceIndex()
    index.add_folder(tmp_path)
    finished = threading.Event()
    index.build_in_background(done=finished.set)
    queries = 0
    while not finished.is_set() or queries == 0:
        index.similar_chunks(terms_of("apply_discount_7 price percent RATE_7"), limit=3)
        index.lookup("apply_discount_7")
        queries += 1
    assert index.stats().files == 150
    [hit] = index.similar_chunks(terms_of("apply_discount_7 RATE_7 percent"), limit=1)
    assert hit.file.relative == "pkg_7/module_7.py"


def test_version_of_others_moves_only_with_other_files(workspace):
    index = built(workspace)
    pricing, warehouse = workspace / "shop/pricing.py", workspace / "inventory/warehouse.go"
    before = index.version_of_others(str(pricing))
    # Typing in the file itself: answers cached for it stay good.
    index.set_buffer(str(pricing), PRICING_PY + "\n\ndef net(price):\n    return price\n")
    index.refresh()
    assert index.version_of_others(str(pricing)) == before
    # Another file changes: what its snippets would say may have changed too.
    index.set_buffer(str(warehouse), INVENTORY_GO.replace("Reserve", "Hold"))
    index.refresh()
    assert index.version_of_others(str(pricing)) != before
