"""Benchmark scoring: the sandboxed human-eval-infilling runner and the SantaCoder-FIM exact match."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from fim_lsp.bench.quality import bundled_benchmarks
from fim_lsp.bench.scoring import (
    build_program,
    check_infilling,
    evaluate_samples,
    exact_match,
    first_line,
    network_isolation,
    pass_at_k,
    run_program,
)

EXAMPLES = bundled_benchmarks() / "human-eval-infilling"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_harness_self_test_gives_the_published_pass_at_1():
    """human-eval-infilling's own self-test: 3 of its 10 sample completions pass."""
    problems = {p["task_id"]: p for p in read_jsonl(EXAMPLES / "example_problem.jsonl")}
    samples = read_jsonl(EXAMPLES / "example_samples.jsonl")
    assert evaluate_samples(problems, samples) == {"pass@1": pytest.approx(0.30)}


PROBLEM = {
    "task_id": "test/0",
    "prompt": "def add(a, b):\n",
    "suffix": "\n",
    "canonical_solution": "    return a + b",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5",
    "entry_point": "add",
}


def test_build_program_inserts_the_completion_verbatim():
    program = build_program("P", " C ", "S", "T", "f")
    assert program == "P C S\nT\ncheck(f)"


@pytest.mark.parametrize(
    ("completion", "outcome"),
    [
        pytest.param("    return a + b", "passed", id="correct"),
        pytest.param("    return a - b", "failed", id="wrong-answer"),
        pytest.param("  return a +", "failed", id="syntax-error"),
        pytest.param(None, "failed", id="no-completion"),
        pytest.param("    while True:\n        pass", "timeout", id="endless-loop"),
        pytest.param("    return int(input())", "failed", id="reads-stdin-gets-eof"),
    ],
)
def test_check_infilling(completion, outcome):
    assert check_infilling(PROBLEM, completion).outcome == outcome


def test_wall_limit_is_about_three_seconds():
    started = time.monotonic()
    result = run_program("import time\ntime.sleep(30)")
    assert result.outcome == "timeout"
    assert time.monotonic() - started < 6


def test_memory_is_limited():
    result = run_program("block = bytearray(3 * 1024 ** 3)")
    assert result.outcome == "failed"
    assert "MemoryError" in result.detail


def test_program_runs_in_an_empty_temporary_directory_that_is_removed(tmp_path):
    report = tmp_path / "cwd.txt"
    program = f"import os\nopen({str(report)!r}, 'w').write(os.getcwd() + '|' + ','.join(os.listdir('.')))"
    assert run_program(program).passed
    cwd, listing = report.read_text().split("|")
    assert cwd != os.getcwd()
    assert listing == "program.py"
    assert not Path(cwd).exists()


def test_isolated_mode_ignores_the_callers_environment(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/evil")
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    program = "import os, sys\nassert 'SECRET_TOKEN' not in os.environ\nassert sys.flags.isolated"
    assert run_program(program).passed


def test_network_is_cut_when_the_system_allows():
    if not network_isolation():
        pytest.skip("unshare -n is not permitted here; the runner logs that programs keep the network")
    program = "import socket\nassert [n for _, n in socket.if_nameindex()] == ['lo']"
    assert run_program(program).passed


def test_timeout_kills_what_the_program_started(tmp_path):
    pid_file = tmp_path / "child.pid"
    program = (
        "import subprocess, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    assert run_program(program, wall_limit_s=1.0).outcome == "timeout"
    pid = int(pid_file.read_text())
    time.sleep(0.2)
    assert not is_running(pid)


def is_running(pid: int) -> bool:
    """Whether `pid` is alive (a killed orphan may linger as a zombie until init reaps it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "zombie" not in state


@pytest.mark.parametrize(
    ("samples", "correct", "k", "expected"),
    [
        pytest.param(10, 3, 1, 0.3, id="pass1-is-the-share"),
        pytest.param(10, 0, 1, 0.0, id="none-correct"),
        pytest.param(10, 10, 5, 1.0, id="all-correct"),
        pytest.param(5, 1, 2, 0.4, id="pass2-of-5-with-1"),
        pytest.param(3, 2, 2, 1.0, id="too-few-wrong-to-fail-k"),
    ],
)
def test_pass_at_k(samples, correct, k, expected):
    assert pass_at_k(samples, correct, k) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("generation", "line"),
    [
        pytest.param("    return x\n    y = 2", "    return x", id="first-line"),
        pytest.param("\n    return x\n", "    return x", id="second-line-after-leading-newline"),
        pytest.param("\n", "", id="only-a-newline"),
        pytest.param("", "", id="empty"),
    ],
)
def test_first_line(generation, line):
    assert first_line(generation) == line


@pytest.mark.parametrize(
    ("generation", "canonical", "matches"),
    [
        pytest.param(
            "\n        return False\n    return", "        return False", True, id="leading-newline"
        ),
        pytest.param("  return False  \nmore", "return False", True, id="whitespace-ignored"),
        pytest.param("return false", "return False", False, id="case-matters"),
        pytest.param(
            "\n\n        return False", "return False", False, id="only-one-leading-newline-skipped"
        ),
        pytest.param(None, "return False", False, id="no-completion"),
    ],
)
def test_exact_match(generation, canonical, matches):
    assert exact_match(generation, canonical) is matches
