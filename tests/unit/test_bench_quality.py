"""`fim-lsp bench quality` without a model: loading, sampling, scoring and reporting, with fake systems."""

from __future__ import annotations

import argparse
import gzip
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fim_lsp.bench import quality
from fim_lsp.bench.quality import (
    Answer,
    Summary,
    Task,
    TaskResult,
    available_sets,
    bundled_benchmarks,
    format_report,
    load_set,
    one_per_problem,
    plain_context,
    report_json,
    run_set,
    spread,
    systems,
)
from fim_lsp.bench.quality import cli as quality_cli
from fim_lsp.config import Settings
from fim_lsp.engine.base import Engine, Generation, GenerationRequest
from fim_lsp.errors import ConfigurationError
from fim_lsp.prompt import template_for_family

TEST = "def check(candidate):\n    assert candidate(2) == 4\n"


def human_eval_record(
    task_id: str, prompt: str, middle: str, suffix: str, entry_point: str = "double"
) -> dict:
    return {
        "task_id": task_id,
        "entry_point": entry_point,
        "prompt": prompt,
        "suffix": suffix,
        "canonical_solution": middle,
        "test": TEST,
    }


DOUBLE_PROMPT = 'def double(x):\n    """Twice x."""\n'


def write_jsonl_gz(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    """A small benchmark folder laid out like ../shared/benchmarks."""
    human = tmp_path / "human-eval-infilling"
    single = [
        human_eval_record(
            f"SingleLineInfilling/HumanEval/{n}/L1", DOUBLE_PROMPT, "    y = x * 2\n", "    return y\n"
        )
        for n in range(10)
    ]
    write_jsonl_gz(human / "HumanEval-SingleLineInfilling.jsonl.gz", single)
    multi = [
        human_eval_record(
            f"MultiLineInfilling/HumanEval/{problem}/L{start}_L{start + 1}",
            DOUBLE_PROMPT,
            "    y = x\n    y = y * 2\n",
            "    return y\n",
        )
        for problem in range(4)
        for start in range(5)
    ]
    write_jsonl_gz(human / "HumanEval-MultiLineInfilling.jsonl.gz", multi)
    span = [
        human_eval_record(
            "RandomSpanInfillingLight/HumanEval/0/1", "def double(x):\n    return x *", " 2", "\n"
        ),
    ]
    write_jsonl_gz(human / "HumanEval-RandomSpanInfillingLight.jsonl.gz", span)
    santacoder = [
        {
            "name": "py-1",
            "language": "py",
            "prompt": "def f(x):\n    y = x",
            "suffix": "    return y\n",
            "canonical_solution": "    y += 1",
            "tests": "",
        },
        {
            "name": "java-1",
            "language": "java",
            "prompt": "class A {\n  int f(int x) {",
            "suffix": "  }\n}\n",
            "canonical_solution": "    return x + 1;",
            "tests": "",
        },
        {
            "name": "js-1",
            "language": "js",
            "prompt": "function f(x) {",
            "suffix": "}\n",
            "canonical_solution": "  return x + 1;",
            "tests": "",
        },
        {
            "name": "js-2",
            "language": "js",
            "prompt": "function g(x) {",
            "suffix": "}\n",
            "canonical_solution": "  return x - 1;",
            "tests": "",
        },
    ]
    write_jsonl_gz(tmp_path / "santacoder-fim" / "santacoder-fim-task.jsonl.gz", santacoder)
    return tmp_path


# --- loading and sampling ---


def test_load_single_line_tasks(bench_dir):
    tasks = load_set(bench_dir, "single-line")
    assert len(tasks) == 10
    task = tasks[0]
    assert task.metric == "pass@1" and task.language == "python" and task.path.endswith(".py")
    assert task.prefix + task.reference + task.suffix == DOUBLE_PROMPT + "    y = x * 2\n    return y\n"


def test_multi_line_is_a_fixed_sample_of_one_task_per_problem(bench_dir):
    first = load_set(bench_dir, "multi-line")
    again = load_set(bench_dir, "multi-line")
    assert [t.task_id for t in first] == [t.task_id for t in again]
    problems = [t.task_id.split("/")[2] for t in first]
    assert problems == ["0", "1", "2", "3"]


def test_one_per_problem_does_not_always_pick_the_same_position():
    records = [{"task_id": f"M/HumanEval/{p}/L{i}"} for p in range(40) for i in range(6)]
    positions = {r["task_id"].rsplit("/L", 1)[1] for r in one_per_problem(records)}
    assert len(positions) > 3


def test_santacoder_sets_filter_by_language_and_place_the_hole_on_its_own_line(bench_dir):
    js = load_set(bench_dir, "santacoder-js")
    assert [t.task_id for t in js] == ["js-1", "js-2"]
    java = load_set(bench_dir, "santacoder-java")[0]
    assert java.metric == "exact-match" and java.language == "java"
    assert (
        java.prefix + java.reference + java.suffix
        == "class A {\n  int f(int x) {\n    return x + 1;\n  }\n}\n"
    )


@pytest.mark.parametrize(
    ("count", "limit", "expected"),
    [
        pytest.param(10, None, list(range(10)), id="no-limit"),
        pytest.param(10, 20, list(range(10)), id="limit-above-size"),
        pytest.param(10, 5, [0, 2, 4, 6, 8], id="evenly-spread"),
        pytest.param(10, 3, [0, 3, 6], id="uneven"),
        pytest.param(10, 0, [], id="zero"),
    ],
)
def test_spread(count, limit, expected):
    assert spread(list(range(count)), limit) == expected


def test_limit_applies_per_set(bench_dir):
    assert len(load_set(bench_dir, "single-line", limit=4)) == 4


def test_unknown_set_and_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="unknown set"):
        load_set(tmp_path, "nope")
    with pytest.raises(FileNotFoundError):
        load_set(tmp_path, "single-line")


def test_the_shipped_data_is_human_eval_infilling_whole():
    assert available_sets(None) == ["single-line", "multi-line", "random-span-light"]
    assert [len(load_set(None, name)) for name in available_sets(None)] == [1033, 164, 164]
    assert (
        (bundled_benchmarks() / "human-eval-infilling" / "LICENSE").read_text().startswith("The MIT License")
    )


def test_santacoder_is_not_shipped():
    # Its licence allows evaluation only: it is read from a folder the user gives, never copied.
    assert not list(bundled_benchmarks().rglob("*santacoder*"))
    with pytest.raises(FileNotFoundError, match="evaluation only"):
        load_set(None, "santacoder-py")


# --- running and scoring with fake systems ---


def fixed_system(text: str | None, *, eot: bool = True, tokens: int = 5, max_tokens: int = 32):
    calls: list[tuple[str, int | None]] = []

    def system(task: Task, cap: int | None) -> Answer:
        calls.append((task.task_id, cap))
        return Answer(text, reached_eot=eot, latency_ms=10.0, tokens=tokens, max_tokens=max_tokens)

    system.calls = calls  # type: ignore[attr-defined]
    return system


def test_run_set_scores_both_systems_by_running_the_tests(bench_dir):
    tasks = load_set(bench_dir, "single-line", limit=2)
    pipeline = fixed_system("    y = x * 2\n", max_tokens=32)
    baseline = fixed_system("    y = x * 3\n    return y\n    # and more", eot=False, tokens=32)
    report = run_set(tasks, pipeline, baseline)
    assert report.name == "single-line" and report.metric == "pass@1"
    assert report.pipeline.score == 1.0 and report.baseline.score == 0.0
    assert report.pipeline.eot == 1.0 and report.baseline.eot == 0.0
    assert report.pipeline.parseable == 1.0 and report.baseline.parseable == 1.0
    assert report.pipeline.tokens == 5 and report.baseline.tokens == 32
    # The pipeline chooses its own cap; the baseline runs under the pipeline's.
    assert [cap for _, cap in pipeline.calls] == [None, None]
    assert [cap for _, cap in baseline.calls] == [32, 32]


def test_parseable_share_counts_only_tasks_whose_reference_parses(bench_dir):
    tasks = load_set(bench_dir, "single-line", limit=1)
    broken = Task(**{**tasks[0].__dict__, "task_id": "broken-reference", "reference": "    y = (\n"})
    report = run_set([tasks[0], broken], fixed_system("    y = x *\n"), fixed_system(None))
    assert report.pipeline.parse_tasks == 1
    assert report.pipeline.parseable == 0.0
    # Nothing shown is no completion to judge: it counts as dropped instead.
    assert report.baseline.parse_tasks == 0 and report.baseline.parseable is None
    assert report.baseline.dropped == 1.0


def test_exact_match_sets(bench_dir):
    tasks = load_set(bench_dir, "santacoder-js")
    report = run_set(tasks, fixed_system("\n  return x + 1;\n"), fixed_system("  return x + 1;"))
    assert report.metric == "exact-match"
    assert report.pipeline.score == 0.5  # right for js-1, wrong for js-2
    assert report.baseline.score == 0.5


def test_run_set_without_a_baseline_runs_the_pipeline_alone(bench_dir):
    tasks = load_set(bench_dir, "single-line", limit=2)
    seen = []
    report = run_set(
        tasks, fixed_system("    y = x * 2\n"), None, progress=lambda task, p, b: seen.append((p.correct, b))
    )
    assert report.pipeline.score == 1.0 and report.baseline is None
    assert list(report.results) == ["pipeline"]
    assert seen == [(True, None), (True, None)]


def test_run_set_rejects_an_empty_set():
    with pytest.raises(ValueError):
        run_set([], fixed_system("x"), fixed_system("x"))


def test_summary_of_results():
    results = [
        TaskResult("a", Answer("x", True, 100.0, 4, 32), correct=True, parseable=True),
        TaskResult("b", Answer(None, False, 300.0, 32, 32), correct=False, parseable=None),
        TaskResult("c", Answer(None, False, 200.0, 32, 32), correct=False, parseable=False),
    ]
    summary = Summary.of(results)
    assert summary.tasks == 3
    assert summary.score == pytest.approx(1 / 3) and summary.eot == pytest.approx(1 / 3)
    assert summary.dropped == pytest.approx(2 / 3)
    assert summary.parseable == 1.0 and summary.parse_tasks == 1  # dropped middles are not judged
    assert summary.latency_ms == 200.0 and summary.tokens == pytest.approx(68 / 3)


# --- reports ---


def test_format_report_puts_pipeline_beside_baseline(bench_dir):
    report = run_set(
        load_set(bench_dir, "single-line", limit=2), fixed_system("    y = x * 2\n"), fixed_system(None)
    )
    text = format_report("fake-model", [report])
    lines = text.splitlines()
    assert "fake-model" in lines[0] and "pipeline / baseline" in lines[0]
    assert lines[1].split()[:4] == ["set", "metric", "n", "score"]
    row = lines[2]
    assert row.startswith("single-line")
    assert "1.000 / 0.000" in row  # score
    assert "0.00 / 1.00" in row  # dropped


def test_report_json_is_serialisable_and_has_each_task(bench_dir):
    report = run_set(
        load_set(bench_dir, "single-line", limit=2), fixed_system("    y = x * 2\n"), fixed_system(None)
    )
    document = json.loads(json.dumps(report_json("fake-model", [report])))
    entry = document["sets"]["single-line"]
    assert document["model"] == "fake-model"
    assert entry["metric"] == "pass@1"
    assert entry["pipeline"]["score"] == 1.0 and entry["baseline"]["score"] == 0.0
    assert entry["tasks"][0]["pipeline"] == {
        "text": "    y = x * 2\n",
        "correct": True,
        "parseable": True,
        "eot": True,
        "tokens": 5,
        "latency_ms": 10,
        "out_of_time": False,
    }
    assert "tasks" not in report_json("m", [report], details=False)["sets"]["single-line"]


def test_reports_without_a_baseline_leave_its_figures_out(bench_dir):
    report = run_set(load_set(bench_dir, "single-line", limit=2), fixed_system("    y = x * 2\n"), None)
    row = format_report("fake-model", [report]).splitlines()[2]
    assert "1.000 / -" in row and "(2/-)" in row
    entry = json.loads(json.dumps(report_json("fake-model", [report])))["sets"]["single-line"]
    assert entry["pipeline"]["score"] == 1.0 and entry["baseline"] is None
    assert [task["baseline"] for task in entry["tasks"]] == [None, None]
    assert entry["tasks"][0]["pipeline"]["correct"] is True


def test_plain_context_keeps_the_nearest_whole_lines():
    prefix = "".join(f"line {n}\n" for n in range(100))
    suffix = "".join(f"after {n}\n" for n in range(100))
    kept_prefix, kept_suffix = plain_context(prefix, suffix, budget=200, count_tokens=len)
    assert prefix.endswith(kept_prefix) and suffix.startswith(kept_suffix)
    assert kept_prefix.startswith("line ") and kept_suffix.endswith("\n")
    assert len(kept_prefix) + len(kept_suffix) <= 200
    assert plain_context("a", "b", budget=200, count_tokens=len) == ("a", "b")


# --- the command line ---


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fim-lsp")
    commands = parser.add_subparsers()
    bench = commands.add_parser("bench").add_subparsers()
    quality.register_cli(bench)
    return parser


def test_register_cli_adds_the_quality_command():
    args = build_parser().parse_args(
        [
            "bench",
            "quality",
            "/data",
            "--sets",
            "single-line",
            "santacoder-py",
            "--limit",
            "5",
            "--model",
            "a",
            "--model",
            "b",
            "--json",
        ]
    )
    assert args.handler is quality.quality_command
    assert args.bench_dir == "/data" and args.sets == ["single-line", "santacoder-py"]
    assert args.limit == 5 and args.model == ["a", "b"] and args.json


def test_register_cli_rejects_an_unknown_set():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "quality", "/data", "--sets", "nope"])


@pytest.fixture
def fake_engine_systems(monkeypatch):
    """Replace the model-backed systems with fakes; record which models were asked for."""
    asked: list[str] = []

    @contextmanager
    def fake(
        model: str,
        order: str = "auto",
        threads: int | None = None,
        settings_json=None,
        compare="baseline",
        alternatives: int = 1,
    ):
        asked.append(model)
        if alternatives != 1:
            asked.append(f"alternatives {alternatives}")
        if settings_json:
            asked.append(f"settings {json.dumps(settings_json, sort_keys=True)}")
        if compare != "baseline":
            asked.append(f"compare {compare}")
        yield fixed_system("    y = x * 2\n"), fixed_system("    pass\n", eot=False), f"{model} (fake)"

    monkeypatch.setattr(quality_cli, "engine_systems", fake)
    return asked


def test_command_prints_a_table_per_model(bench_dir, fake_engine_systems, capsys):
    args = build_parser().parse_args(
        [
            "bench",
            "quality",
            str(bench_dir),
            "--sets",
            "single-line",
            "--limit",
            "2",
            "--model",
            "m1",
            "--model",
            "m2",
        ]
    )
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert fake_engine_systems == ["m1", "m2"]
    assert "m1 (fake)" in out and "m2 (fake)" in out and "machine:" in out
    assert out.count("single-line") == 2


def test_command_json(bench_dir, fake_engine_systems, capsys):
    args = build_parser().parse_args(
        ["bench", "quality", str(bench_dir), "--sets", "random-span-light", "--model", "m1", "--json"]
    )
    assert args.handler(args) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["machine"]["cpus"] >= 1
    run = document["runs"][0]
    assert run["model"] == "m1 (fake)"
    assert run["sets"]["random-span-light"]["baseline"]["eot"] == 0.0


def test_command_without_a_baseline(bench_dir, fake_engine_systems, capsys):
    options = ["--sets", "single-line", "--limit", "2", "--no-baseline", "--json"]
    args = build_parser().parse_args(["bench", "quality", str(bench_dir), *options])
    assert args.handler(args) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["systems"] == ["pipeline"]
    entry = run["sets"]["single-line"]
    assert entry["pipeline"]["tasks"] == 2 and entry["baseline"] is None
    args = build_parser().parse_args(["bench", "quality", str(bench_dir), *options[:-1]])
    assert args.handler(args) == 0
    assert "(each cell: pipeline / baseline, not run)" in capsys.readouterr().out


def test_command_reports_a_missing_benchmark_folder(tmp_path, fake_engine_systems, capsys):
    args = build_parser().parse_args(["bench", "quality", str(tmp_path / "nowhere")])
    assert args.handler(args) == 2
    assert "not found" in capsys.readouterr().err
    assert fake_engine_systems == []


def test_command_without_a_folder_runs_the_shipped_sets_from_anywhere(
    tmp_path, monkeypatch, fake_engine_systems, capsys
):
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["bench", "quality", "--limit", "1", "--model", "m1", "--json"])
    assert args.handler(args) == 0
    sets = json.loads(capsys.readouterr().out)["runs"][0]["sets"]
    assert list(sets) == ["single-line", "multi-line", "random-span-light"]


def test_command_without_a_folder_refuses_santacoder(fake_engine_systems, capsys):
    args = build_parser().parse_args(["bench", "quality", "--sets", "santacoder-py", "--model", "m1"])
    assert args.handler(args) == 2
    assert "evaluation only" in capsys.readouterr().err
    assert fake_engine_systems == []


def test_command_passes_the_engine_setting_on(bench_dir, fake_engine_systems, capsys):
    engine = {"kind": "openai", "url": "http://127.0.0.1:9/v1"}
    args = build_parser().parse_args(
        [
            *("bench", "quality", str(bench_dir), "--sets", "single-line", "--model", "m1"),
            *("--engine-json", json.dumps(engine), "--settings-json", '{"maxNewTokens": 32}'),
        ]
    )
    assert args.handler(args) == 0
    assert fake_engine_systems == [
        "m1",
        "settings " + json.dumps({"engine": engine, "maxNewTokens": 32}, sort_keys=True),
    ]


def test_engine_systems_refuses_settings_it_cannot_use():
    with (
        pytest.raises(ConfigurationError, match="contextBudget"),
        quality.engine_systems("m1", settings_json={"contextBudget": "lots"}),
    ):
        pass


def test_command_runs_a_tasks_file_with_and_without_workspace_context(tmp_path, fake_engine_systems, capsys):
    record = {
        "task_id": "cross-file/0/a.py",
        "kind": "cross-file",
        "path": "a.py",
        "language": "python",
        "prefix": "def f(x):\n",
        "suffix": "\n",
        "middle": "    y = x * 2",
        "snippets": [{"path": "b.py", "text": "def g(): ...\n"}],
    }
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps(record) + "\n", encoding="utf-8")
    args = build_parser().parse_args(["bench", "quality", "--tasks", str(tasks), "--model", "m1"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert fake_engine_systems == ["m1", "compare workspace"]
    assert "with workspace context / without" in out and "repo:cross-file" in out


def test_command_wants_a_benchmark_folder_or_a_tasks_file_not_both(tmp_path, fake_engine_systems, capsys):
    args = build_parser().parse_args(
        ["bench", "quality", str(tmp_path), "--tasks", str(tmp_path / "t.jsonl")]
    )
    assert args.handler(args) == 2
    assert "BENCH_DIR or --tasks" in capsys.readouterr().err
    assert fake_engine_systems == []


def test_command_compares_engines_in_one_run(bench_dir, fake_engine_systems, capsys):
    remote = {"kind": "openai", "url": "http://127.0.0.1:9/v1"}
    args = build_parser().parse_args(
        [
            *("bench", "quality", str(bench_dir), "--sets", "single-line", "--model", "m1"),
            *("--engine-json", '{"kind": "embedded"}', "--engine-json", json.dumps(remote)),
        ]
    )
    assert args.handler(args) == 0
    assert fake_engine_systems == [
        "m1",
        "settings " + json.dumps({"engine": {"kind": "embedded"}}, sort_keys=True),
        "m1",
        "settings " + json.dumps({"engine": remote}, sort_keys=True),
    ]
    assert capsys.readouterr().out.count("single-line") == 2


class _AdaptedEngine(Engine):
    """Says whether it runs with an adapter, in its answers and its description."""

    def __init__(self, settings: Settings) -> None:
        self.template = template_for_family("qwen2.5-coder")
        self.adapter = "/models/m.warmup.gguf" if settings.adapter == "auto" else None
        self.closed = False

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def generate(self, request: GenerationRequest) -> Generation:
        text = "with_adapter" if self.adapter else "raw_model"
        return Generation(text, "eot", prompt_tokens=12, evaluated_tokens=12, generated_tokens=1)

    def describe(self) -> dict[str, Any]:
        return {"model": "/models/m.gguf", "adapter": self.adapter}

    def close(self) -> None:
        self.closed = True


def test_the_raw_baseline_runs_the_model_without_the_pipelines_adapter(monkeypatch) -> None:
    import fim_lsp.engine

    engines: list[_AdaptedEngine] = []

    def create_engine(settings: Settings) -> _AdaptedEngine:
        engines.append(_AdaptedEngine(settings))
        return engines[-1]

    monkeypatch.setattr(fim_lsp.engine, "create_engine", create_engine)
    task = Task("s", "t/1", "python", "t.py", "x = ", "\n", "1", "exact-match")
    with systems.engine_systems("m") as (pipeline, baseline, description):
        assert "adapter m.warmup.gguf" in description
        assert baseline(task, 8).text == "raw_model"
        assert pipeline(task, 8).text == "with_adapter"
    assert [engine.adapter for engine in engines] == ["/models/m.warmup.gguf", None]
    assert all(engine.closed for engine in engines)
