"""The file watcher keeps the index current: files created, modified, deleted, and ignore rules changed."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fim_lsp.workspace.index import WorkspaceIndex
from fim_lsp.workspace.watcher import WorkspaceWatcher

ORDERS_TS = """export interface Order {
  id: string;
  total: number;
}

export function orderTotal(order: Order): number {
  return order.total;
}
"""


def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll `condition` until it holds or `timeout` passes (file events take a moment to arrive)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def defined(index: WorkspaceIndex, name: str) -> bool:
    return bool(index.lookup(name))


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, WorkspaceIndex]]:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "orders.ts").write_text(ORDERS_TS, encoding="utf-8")
    index = WorkspaceIndex()
    index.add_folder(tmp_path)
    index.build()
    watcher = WorkspaceWatcher(index, debounce=0.05)
    if not watcher.start():
        pytest.skip("no file system events here")
    try:
        yield tmp_path, index
    finally:
        watcher.stop()


def test_created_file_is_indexed(watched):
    root, index = watched
    (root / "src" / "refunds.ts").write_text("export function refundOrder(id: string) {}\n", encoding="utf-8")
    assert eventually(lambda: defined(index, "refundOrder"))


def test_modified_file_is_indexed_again(watched):
    root, index = watched
    (root / "src" / "orders.ts").write_text(ORDERS_TS.replace("orderTotal", "orderSum"), encoding="utf-8")
    assert eventually(lambda: defined(index, "orderSum") and not defined(index, "orderTotal"))


def test_deleted_file_is_dropped(watched):
    root, index = watched
    (root / "src" / "orders.ts").unlink()
    assert eventually(lambda: not defined(index, "orderTotal"))


def test_deleted_folder_drops_its_files(watched):
    root, index = watched
    shutil.rmtree(root / "src")
    assert eventually(lambda: index.stats().files == 0)


def test_moved_file_is_indexed_under_its_new_path(watched):
    root, index = watched
    (root / "lib").mkdir()
    (root / "src" / "orders.ts").rename(root / "lib" / "orders.ts")
    assert eventually(
        lambda: [entry.relative for entry, _d in index.lookup("orderTotal")] == ["lib/orders.ts"]
    )


# watchdog warns when a folder it is adding a watch for is created again under it in a burst; harmless.
@pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")
def test_ignored_and_vendored_files_stay_out(watched):
    root, index = watched
    (root / ".gitignore").write_text("generated/\n", encoding="utf-8")
    (root / "node_modules" / "pad").mkdir(parents=True)
    (root / "node_modules" / "pad" / "index.ts").write_text(
        "export function leftPad() {}\n", encoding="utf-8"
    )
    (root / "generated").mkdir()
    (root / "generated" / "api.ts").write_text("export function generatedApi() {}\n", encoding="utf-8")
    # A file that is indexed, written last: once it is in, the events before it were handled too.
    (root / "src" / "marker.ts").write_text("export function markerDone() {}\n", encoding="utf-8")
    assert eventually(lambda: defined(index, "markerDone"))
    assert not defined(index, "leftPad")
    assert not defined(index, "generatedApi")


def test_gitignore_change_drops_newly_ignored_files(watched):
    root, index = watched
    (root / ".gitignore").write_text("src/\n", encoding="utf-8")
    assert eventually(lambda: not defined(index, "orderTotal"))
