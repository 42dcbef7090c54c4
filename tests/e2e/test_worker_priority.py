"""The model computes at a lower priority than the server's protocol thread (Linux): while both want a
core, answers without the model, cancels and JSON-RPC come first. llama.cpp's compute threads inherit
the worker's niceness; the protocol thread keeps the process's."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fim_lsp.client import EditorClient
from fim_lsp.service import WORKER_NICENESS
from tests.e2e.conftest import FAST_MODEL, TEST_TIME_BUDGET_MS

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's"),
]

URI = "file:///work/priority.py"
TEXT = "def double(x):\n    return \n"


def threads_of(pid: int) -> list[tuple[int, int, int]]:
    """(thread id, niceness, CPU ticks used) of each thread of process `pid`."""
    threads = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        # After the name: state is field 3 of stat(5); utime 14, stime 15, nice 19.
        threads.append((int(task.name), int(fields[16]), int(fields[11]) + int(fields[12])))
    return threads


def test_the_model_runs_nicer_than_the_protocol_thread():
    settings = {"model": FAST_MODEL, "maxNewTokens": 16, "timeBudgetMs": TEST_TIME_BUDGET_MS}
    with EditorClient() as server:
        server.initialize(settings)
        assert server.wait_status("ready", "error")["state"] == "ready"
        server.open(URI, TEXT)
        assert server.inline(URI, 1, 11)
        threads = threads_of(server.pid)
    process_niceness = os.getpriority(os.PRIO_PROCESS, 0)  # the test's, which the server inherited
    main = next(t for t in threads if t[0] == server.pid)
    assert main[1] == process_niceness, "the protocol thread keeps the process's priority"
    nicer = [t for t in threads if t[1] == min(19, process_niceness + WORKER_NICENESS)]
    assert nicer, threads
    # The model's work was done by the nicer threads: they used more CPU than all the others together.
    assert sum(t[2] for t in nicer) > sum(t[2] for t in threads if t not in nicer), threads
