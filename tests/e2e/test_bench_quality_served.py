"""`fim-lsp bench quality --served` end to end: tasks cut by `fim-lsp dataset`, each asked of a fresh
`fim-lsp --stdio` with the small model, as a user who opens the file and moves to the spot.

Behaviour only, never which middle the model writes (greedy strings differ between CPUs and llama.cpp
builds): every task is asked and reported, in time, and `--no-baseline` runs the server alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import fim_lsp
from fim_lsp.bench.quality import cli as quality_cli
from fim_lsp.cli import build_parser
from tests.e2e.conftest import FAST_MODEL, TEST_TIME_BUDGET_MS

pytestmark = [pytest.mark.model, pytest.mark.slow]

SOURCE = Path(fim_lsp.__file__).parent / "data" / "replay" / "jobs.py"
SETTINGS = {
    "model": FAST_MODEL,
    "timeBudgetMs": TEST_TIME_BUDGET_MS,
    "contextBudget": 512,
    "maxNewTokens": 32,
}


def test_served_without_a_baseline_asks_the_server_alone(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(SOURCE, repo / "jobs.py")
    tasks = tmp_path / "tasks.jsonl"
    cut = build_parser().parse_args(
        ["dataset", str(repo), "--per-kind", "2", "--kinds", "single-line", "-o", str(tasks)]
    )
    assert cut.handler(cut) == 0

    def no_model_here(*_args, **_kwargs):
        raise AssertionError("the served run without a baseline loads no model of its own")

    monkeypatch.setattr(quality_cli, "engine_systems", no_model_here)
    args = build_parser().parse_args(
        [
            "bench",
            "quality",
            "--tasks",
            str(tasks),
            "--served",
            "--no-baseline",
            "--open-wait",
            "0.5",
            "--settings-json",
            json.dumps(SETTINGS),
            "--json",
        ]
    )
    capsys.readouterr()
    assert args.handler(args) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["model"].startswith("fim-lsp --stdio (settings") and run["systems"] == ["served"]
    entry = run["sets"]["repo:single-line"]
    assert entry["baseline"] is None
    assert entry["pipeline"]["tasks"] == 2
    assert entry["pipeline"]["out_of_time"] == 0.0
    assert [task["baseline"] for task in entry["tasks"]] == [None, None]
    for task in entry["tasks"]:
        answer = task["pipeline"]
        # The server's model wrote for it (whether the pipeline shows that depends on the model's words).
        assert answer["tokens"] > 0 and answer["latency_ms"] > 0 and not answer["out_of_time"]
