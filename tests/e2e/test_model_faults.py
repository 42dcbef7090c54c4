"""The model file truncated, then removed, under a running server, then put back.

llama.cpp memory-maps a model by default, and a mapped file truncated in place kills the process with
SIGBUS on its next read of a page that is gone (measured: exit status -7 on the first completion after
`truncate`). fim-lsp maps only the files in its own model cache, which it replaces by rename, never in
place; a model given by path is read into memory (see `fim_lsp.engine.llama_library.maps_safely`). So the
running server keeps answering whatever happens to the file; a reload reports the missing file once; and
when the file is back the next request notices and loads it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from fim_lsp.client import EditorClient
from fim_lsp.models import resolve_model
from tests.e2e.conftest import FAST_MODEL, TEST_TIME_BUDGET_MS

pytestmark = pytest.mark.model

URI = "file:///work/faults.py"
TEXT = "def double(x):\n    return \n"
NEW_TEXT = "def triple(x):\n    return \n"


def mapped_files(pid: int) -> set[str]:
    return {line.split(maxsplit=5)[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()}


async def test_the_model_file_truncated_removed_and_put_back(tmp_path):
    original = resolve_model(FAST_MODEL)
    model = tmp_path / "model.gguf"
    shutil.copyfile(original, model)
    settings = {
        "model": str(model),
        "maxNewTokens": 16,
        "contextBudget": 256,
        "timeBudgetMs": TEST_TIME_BUDGET_MS,
        "workspaceContext": False,
    }
    with EditorClient() as server:
        server.initialize(settings)
        assert server.wait_status("ready", "error")["state"] == "ready"
        assert str(model) not in mapped_files(server.pid)  # a file given by path is read, not mapped
        server.open(URI, TEXT)
        assert server.inline(URI, 1, 11)

        # What `cp other.gguf model.gguf` does first: the file loses its tensors in place.
        os.truncate(model, model.stat().st_size // 2)
        server.change(URI, 2, "2 * ", (1, 11), (1, 11))
        assert server.inline(URI, 1, 15)
        model.unlink()
        server.change(URI, 3, "", (1, 11), (1, 15))
        assert server.inline(URI, 1, 11)
        assert server.alive

        # A reload (a setting that shapes the engine changed) finds no file: one clear error.
        after = len(server.notifications)
        server.notify("workspace/didChangeConfiguration", {"settings": {"fimLsp": {"contextSize": 2048}}})
        status = server.wait_status("error", "ready", after=after)
        assert status["state"] == "error" and str(model) in status["message"]
        # (A text never completed before: the completion cache would answer the old one without a model.)
        server.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": URI, "version": 4}, "contentChanges": [{"text": NEW_TEXT}]},
        )
        for _ in range(3):
            assert server.inline(URI, 1, 11) == []
        shown = [m for m in server.messages("window/showMessage") if m["type"] == 1]
        assert len(shown) == 1 and str(model) in shown[0]["message"]

        # The file comes back (copied aside, then renamed into place): the next request notices it.
        partial = tmp_path / "model.gguf.part"
        shutil.copyfile(original, partial)
        partial.rename(model)
        after = len(server.notifications)
        assert server.inline(URI, 1, 11) == []  # this one found no engine, and started the load
        assert server.wait_status("ready", "error", after=after)["state"] == "ready"
        assert server.inline(URI, 1, 11)
        state = server.document_state(URI)
        assert state["sha256"] == hashlib.sha256(NEW_TEXT.encode()).hexdigest()


async def test_a_model_from_fim_lsps_own_cache_is_mapped():
    """The other side of the rule: a cache file, only ever replaced by rename, is mapped (its pages are
    the page cache's, shared by every server process)."""
    with EditorClient() as server:
        server.initialize({"model": FAST_MODEL, "workspaceContext": False})
        assert server.wait_status("ready", "error")["state"] == "ready"
        assert str(resolve_model(FAST_MODEL)) in mapped_files(server.pid)
