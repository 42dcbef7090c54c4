"""A load storm: several documents edited and completed hundreds of times a second for half a minute,
with random `$/cancelRequest`s, against the real server with a fast fake engine
(tests/e2e/fake_engine_server.py: a real model answers a few requests a second here, not hundreds).

What must hold: every request is answered (a result, or the cancellation error); no answer is stale (each
piece of ghost text is the one for the document as it was when it was asked for); the last request of
each document gets the right answer; and the server's resident memory stays bounded.
`pytest -s` prints the figures.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest

from fim_lsp.client import EditorClient
from tests.e2e.fake_engine_server import expected_middle

pytestmark = pytest.mark.slow

SERVER = str(Path(__file__).with_name("fake_engine_server.py"))
DOCUMENTS = 4
STORM_SECONDS = 30.0
WARM_UP_SECONDS = 5.0
REQUESTS_PER_SECOND = 300
CANCEL_SHARE = 0.2
#: Growth of resident memory allowed between the end of the warm-up and the end of the storm. The
#: caches are bounded (256 answers, 256 K characters); what the storm itself leaks would grow with the
#: thousands of requests it makes, far past this.
RSS_GROWTH_LIMIT_KIB = 48 * 1024
CURSOR = (6, 11)
REQUEST_CANCELLED = -32800


def document_text(document: int, step: int) -> str:
    return (
        "import math\n\n\n"
        f"def work_{document}(value):\n"
        f"    counter_{document} = math.floor(value)\n"
        f"    total = step_{document}({step})\n"
        "    return \n"
    )


def step_line(document: int, step: int) -> str:
    return f"    total = step_{document}({step})"


def test_a_storm_of_edits_completions_and_cancellations():
    rng = random.Random(8)
    uris = [f"file:///storm/doc{d}.py" for d in range(DOCUMENTS)]
    steps = [0] * DOCUMENTS
    versions = [1] * DOCUMENTS
    asked: dict[int, tuple[int, int]] = {}  # request id -> (document, step) when asked
    cancelled = 0
    samples: list[int] = []
    with EditorClient([sys.executable, SERVER]) as server:
        server.initialize({"workspaceContext": False, "timeBudgetMs": 60_000})
        assert server.wait_status("ready", "error")["state"] == "ready"
        for d, uri in enumerate(uris):
            server.open(uri, document_text(d, 0))

        def edit(d: int) -> None:
            old = step_line(d, steps[d])
            steps[d] = rng.randrange(1000)
            versions[d] += 1
            server.change(uris[d], versions[d], step_line(d, steps[d]), (5, 0), (5, len(old)))

        started = time.monotonic()
        warm_rss = None
        next_sample = started
        sent = 0
        while (now := time.monotonic()) < started + STORM_SECONDS:
            d = rng.randrange(DOCUMENTS)
            edit(d)
            msg_id = server.inline_nowait(uris[d], *CURSOR)
            asked[msg_id] = (d, steps[d])
            sent += 1
            if rng.random() < CANCEL_SHARE:
                server.cancel(rng.choice(list(asked)[-20:]))
                cancelled += 1
            if now >= next_sample:
                samples.append(server.rss_kib())
                next_sample += 1.0
                if warm_rss is None and now - started >= WARM_UP_SECONDS:
                    warm_rss = samples[-1]
            # Keep to the rate: sleep off whatever time this request is ahead of its schedule.
            ahead = started + sent / REQUESTS_PER_SECOND - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        storm_seconds = time.monotonic() - started

        # The last request of each document, after its last edit: the right answer, not a superseded one.
        for d in range(DOCUMENTS):
            edit(d)
            middles = server.inline(uris[d], *CURSOR)
            log = [m["message"] for m in server.messages("window/logMessage") if f"doc{d}" in m["message"]]
            assert middles == [expected_middle(d, steps[d])], log[-5:]

        outcome = {"answered": 0, "ghost text": 0, "empty": 0, "cancelled": 0}
        for msg_id, (d, step) in asked.items():
            answer = server.answer(msg_id)
            outcome["answered"] += 1
            if "error" in answer:
                assert answer["error"]["code"] == REQUEST_CANCELLED, answer
                outcome["cancelled"] += 1
                continue
            items = [item["insertText"] for item in answer["result"]["items"]]
            assert items in ([], [expected_middle(d, step)]), (d, step, items)  # never stale
            outcome["ghost text" if items else "empty"] += 1
        end_rss = server.rss_kib()
        stats = server.request("workspace/executeCommand", {"command": "fim-lsp.stats"})
        assert server.alive

    assert warm_rss is not None
    print(
        f"\nload storm: {sent} completion requests (+{sent} edits) in {storm_seconds:.1f} s "
        f"({sent / storm_seconds:.0f}/s), {cancelled} $/cancelRequest sent; outcomes {outcome}; "
        f"server stats {stats}; RSS start {samples[0] / 1024:.1f} MiB, after warm-up "
        f"{warm_rss / 1024:.1f} MiB, peak {max(samples) / 1024:.1f} MiB, end {end_rss / 1024:.1f} MiB"
    )
    assert outcome["answered"] == sent
    assert sent >= REQUESTS_PER_SECOND * STORM_SECONDS / 3  # the storm was a storm, even on a busy machine
    assert end_rss - warm_rss < RSS_GROWTH_LIMIT_KIB
