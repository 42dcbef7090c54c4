"""`fim-lsp bench latency` end to end: a short replay against `fim-lsp --stdio` with the small model.

Behaviour only, never timing (the machines are shared and noisy): every request is answered or
cancelled, the warm server evaluates fewer prompt tokens per request than the cold baseline, answers come
from the cache or typed-through (and typing a shown suggestion is answered from it), and a superseded
generation never comes back as ghost text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import fim_lsp
from fim_lsp.bench import latency
from fim_lsp.bench.latency import BenchOptions, ReplayOptions, TypingPace
from tests.e2e.conftest import FAST_MODEL, TEST_TIME_BUDGET_MS

pytestmark = [pytest.mark.model, pytest.mark.slow]

REPLAY_FILE = Path(fim_lsp.__file__).parent / "data" / "replay" / "jobs.py"

#: A person who pauses after every word, often mistypes, and types suggestions out rather than accept
#: them (so the script does not depend on what the model says). Seed 12 makes them erase a typo after a
#: pause twice within the first five requests: the cursor comes back to a place already answered.
PATIENT_TYPIST = TypingPace(
    chars_per_second=12.0,
    line_pause_probability=1.0,
    word_pause_probability=1.0,
    pause_s=(0.5, 1.0),
    arrival_pause_s=(0.5, 1.0),
    typo_probability=0.4,
    type_along_probability=1.0,
)
SEED = 12
#: Small prompts and answers: the test checks behaviour, and a shared machine evaluates slowly.
SETTINGS = {"timeBudgetMs": TEST_TIME_BUDGET_MS, "contextBudget": 512, "maxNewTokens": 32}


async def test_a_short_replay_answers_or_cancels_every_request_and_reuses_work(tmp_path):
    options = BenchOptions(
        files=(REPLAY_FILE,),
        holes=2,
        pace=PATIENT_TYPIST,
        # The typist waits for each answer at a pause, however slow the machine: every request is answered
        # and the ones that come back to a known place can be served from the cache. Cancellation is
        # exercised by the supersession probes.
        replay=ReplayOptions(
            debounce_s=0.18, limit_requests=6, request_timeout_s=600, seed=SEED, wait_for_answer_s=600
        ),
        baseline_requests=2,
        probes_per_file=2,
        typed_through_chars=4,
        accept_after_s=0.2,
        settings=SETTINGS,
        log_dir=tmp_path,
    )
    report = await latency.run_model(FAST_MODEL, options, say=lambda _message: None)

    requests = report["requests"]
    assert len(requests) == 6
    assert {r["outcome"] for r in requests} <= {"answered", "empty", "cancelled"}, requests
    assert report["in_sync"], "the server's copy of the document must equal the editor's"
    warm, baseline = report["warm"], report["baseline"]
    assert warm["answered"] >= 1
    assert warm["cache_hits"] + warm["typed_through"] >= 1, requests

    # Reuse shows in the tokens evaluated: warm requests evaluate a part of their prompt (none at all for
    # an answer from the cache or typed-through), the baseline's evaluate all of it.
    assert baseline["requests"] == 2 and baseline["failed"] == 0
    assert warm["evaluated_p50"] is not None and baseline["evaluated_p50"] is not None
    assert warm["evaluated_p50"] < baseline["evaluated_p50"]
    for cold in report["baseline_requests"]:
        if cold["source"] == "model":
            assert cold["evaluated_tokens"] == cold["prompt_tokens"], cold

    # A superseded generation answers empty (or cancelled), never with late ghost text.
    probes = report["probes"]
    assert probes
    for probe in probes:
        if not probe["finished_first"]:
            assert probe["first_outcome"] in ("empty", "cancelled"), probe
            # Superseded without a cancel, the old request is answered once its generation stopped.
            assert (probe["stop_ms"] is not None) == (probe["variant"] == "supersede"), probe
    assert report["supersession"]["late_ghost"] == 0

    # Typing a shown suggestion's characters is answered from typed-through, each one timed.
    typed = report["typed_through_probes"]
    assert 1 <= typed["samples"] <= 4, typed
    assert typed["p95_ms"] is not None and typed["p95_ms"] >= typed["p50_ms"] > 0

    # A suggestion accepted whole (Tab): the request at its end is answered and its source known.
    (accepted,) = report["acceptance_probes"]["probes"]
    assert accepted["latency_ms"] is not None and accepted["source"] in ("model", "cache", "none"), accepted
    assert report["acceptance_probes"]["samples"] == 1
    assert warm["peak_rss_mib"] and warm["peak_rss_mib"] > 100
