"""Huge documents through the real server and the small model: a 100,000-line Python file, 10 MB of
long lines, and 10 MB on one line above the cursor. Each gets its edits applied and a real completion,
and a keystroke (a change, then a completion) costs about what it costs in a small file: the work per
keystroke does not grow with the file. `pytest -s` prints the figures.
"""

from __future__ import annotations

import hashlib
import statistics
import time

import pytest

from fim_lsp.client import EditorClient
from tests.e2e.conftest import FAST_MODEL, TEST_TIME_BUDGET_MS

pytestmark = [pytest.mark.model, pytest.mark.slow]

SETTINGS = {
    "model": FAST_MODEL,
    "maxNewTokens": 16,
    "contextBudget": 256,
    "timeBudgetMs": TEST_TIME_BUDGET_MS,
}
TAIL = "\n\ndef double(x):\n    # \n    return \n"
KEYSTROKES = 5


def python_lines(count: int) -> str:
    """`count` lines of Python: one-line functions and assignments."""
    return "".join(
        f"def f_{n}(x): return x + {n}\n" if n % 2 == 0 else f"value_{n} = compute({n}, 'text {n}')\n"
        for n in range(count)
    )


DOCUMENTS = {
    "small": "import math\n" + python_lines(20) + TAIL,
    "100,000 lines": "import math\n" + python_lines(100_000) + TAIL,
    "10 MB, long lines": "import math\nDATA = [\n"
    + "".join("    " + repr("x" * 990) + ",\n" for _ in range(10_000))
    + "]\n"
    + TAIL,
    "10 MB on one line": "import math\nDATA = [" + ", ".join(["12345"] * 1_400_000) + "]" + TAIL,
}


def test_huge_documents_cost_a_keystroke_what_a_small_one_does():
    figures: dict[str, tuple[float, float]] = {}
    with EditorClient() as server:
        server.initialize(SETTINGS)
        assert server.wait_status("ready", "error")["state"] == "ready"
        for name, text in DOCUMENTS.items():
            uri = f"file:///work/huge/{name.replace(' ', '_').replace(',', '')}.py"
            server.open(uri, text)
            comment_line = text.count("\n") - 2  # "    # ": the user types a comment above the cursor
            changes, completions = [], []
            for typed in range(KEYSTROKES):
                started = time.monotonic()
                server.change(
                    uri, typed + 2, "ab"[typed % 2], (comment_line, 6 + typed), (comment_line, 6 + typed)
                )
                server.request("workspace/executeCommand", {"command": "fim-lsp.stats"})
                changes.append(time.monotonic() - started)
                started = time.monotonic()
                middles = server.inline(uri, comment_line + 1, 11)
                completions.append(time.monotonic() - started)
                assert middles and middles[0].strip(), (name, typed)
            lines = text.split("\n")
            lines[comment_line] += "ababa"[:KEYSTROKES]
            state = server.document_state(uri)
            assert state["sha256"] == hashlib.sha256("\n".join(lines).encode()).hexdigest(), name
            figures[name] = (statistics.median(changes), statistics.median(completions))
            server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            print(
                f"\n{name:18} {len(text) / 1e6:5.1f} MB {text.count(chr(10)):7} lines: change "
                f"{figures[name][0] * 1000:6.1f} ms, completion {figures[name][1] * 1000:5.0f} ms (medians), "
                f"server RSS {server.rss_kib() // 1024} MiB"
            )
        assert server.alive

    # Generous bounds (the machine may be busy): tests/unit/test_documents.py and test_context.py time the
    # per-keystroke work itself. A server that walked the text would take 110-140 ms for such a change,
    # and 6.5 s for a completion below a 10 MB line.
    small_change, small_completion = figures.pop("small")
    for name, (change, completion) in figures.items():
        assert change < small_change + 0.15, (name, change)
        assert completion < 3 * small_completion + 2.0, (name, completion)
