"""`fim-lsp bench quality`: the command line.

Each task of each set is completed twice with the same model: by the pipeline (the very code the server
runs: cursor shape, context, prompt, generation, truncation) and by a raw baseline (a plain PSM prompt of
the same budget and max tokens, stopping only at end-of-text, its text taken as is). Per set and system
the report gives the score (pass@1 from running the tests in a sandbox, or SantaCoder exact match), the
share of middles that reached end-of-text, the share of shown middles that leave the file parseable
where the reference does, the share dropped (nothing shown), mean latency and mean tokens generated.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, get_args

from fim_lsp.bench import json_object_arg
from fim_lsp.bench.quality.report import format_report, machine, report_json
from fim_lsp.bench.quality.run import SetReport, TaskResult, run_benchmark, run_set
from fim_lsp.bench.quality.systems import engine_systems
from fim_lsp.bench.quality.tasks import (
    SETS,
    Comparison,
    System,
    Task,
    available_sets,
    dataset_tasks,
    missing_set,
    set_path,
)
from fim_lsp.config import NO_ADAPTER, FimOrder

logger = logging.getLogger(__name__)


def _log_progress(task: Task, pipeline: TaskResult, baseline: TaskResult | None) -> None:
    logger.info(
        "%s: pipeline %s (%s tokens), baseline %s",
        task.task_id,
        "ok" if pipeline.correct else "--",
        pipeline.answer.tokens,
        "not run"
        if baseline is None
        else f"{'ok' if baseline.correct else '--'} ({baseline.answer.tokens} tokens)",
    )


def _task_sets(args: argparse.Namespace) -> tuple[dict[str, list[Task]], list[str]] | str:
    """The tasks of a `--tasks` file, or the names of the benchmark sets to run; a message when neither
    can be had."""
    if args.bench_dir is not None and args.tasks is not None:
        return "give either BENCH_DIR or --tasks FILE, not both"
    if args.tasks is not None:
        try:
            return dataset_tasks(Path(args.tasks), args.limit), []
        except (OSError, ValueError) as exc:
            return str(exc)
    bench_dir = Path(args.bench_dir) if args.bench_dir is not None else None
    set_names = args.sets or available_sets(bench_dir)
    if not set_names:
        return f"{bench_dir}: benchmark data not found"
    for name in set_names:
        if set_path(name, bench_dir) is None:
            return missing_set(name, bench_dir)
    return {}, set_names


def _run_all(
    args: argparse.Namespace,
    task_sets: dict[str, list[Task]],
    set_names: list[str],
    first: System,
    second: System | None,
) -> list[SetReport]:
    """Every set of the run (dataset tasks, or the named benchmark sets) through both systems."""
    if task_sets:
        return [run_set(tasks, first, second, progress=_log_progress) for tasks in task_sets.values()]
    bench_dir = Path(args.bench_dir) if args.bench_dir is not None else None
    return run_benchmark(bench_dir, set_names, args.limit, first, second, progress=_log_progress)


def _run_model(
    args: argparse.Namespace,
    name: str,
    engine: dict[str, Any] | None,
    task_sets: dict[str, list[Task]],
    set_names: list[str],
) -> tuple[str, list[SetReport]]:
    """One model (on one engine) through the run: its description and its reports."""
    if args.served and args.no_baseline:
        # The server loads its own model: nothing to load here.
        return f"fim-lsp --stdio ({_served_settings(args)})", _run_served(args, task_sets, set_names, None)
    compare: Comparison = "workspace" if task_sets and not args.served else "baseline"
    settings = _settings_of(args, engine)
    if args.served:
        # Only the raw baseline runs here, and it is the model alone (the server applies its adapter).
        settings["adapter"] = NO_ADAPTER
    systems = engine_systems(
        name, args.order, args.threads, settings, compare, alternatives=args.alternatives
    )
    with systems as (pipeline, second, description):
        if not args.served:
            return description, _run_all(
                args, task_sets, set_names, pipeline, None if args.no_baseline else second
            )
        reports = _run_served(args, task_sets, set_names, second)
        return f"fim-lsp --stdio ({_served_settings(args)}); raw baseline: {description}", reports


def _run_served(
    args: argparse.Namespace, task_sets: dict[str, list[Task]], set_names: list[str], baseline: System | None
) -> list[SetReport]:
    """The run with the server's own pipeline answering, in its own process, with its own settings."""
    from fim_lsp.bench.served import served_system

    with served_system(args.settings_json or {}, args.open_wait) as served:
        return _run_all(args, task_sets, set_names, served, baseline)


def _systems_names(args: argparse.Namespace, task_sets: dict[str, list[Task]]) -> tuple[list[str], str]:
    """The systems' names in the JSON report, and in the table's header (the second one's `-` where
    it was not run)."""
    if args.served:
        names, label = ["served", "baseline"], "served / raw baseline"
    elif task_sets:
        names, label = ["with workspace", "without"], "with workspace context / without"
    else:
        names, label = ["pipeline", "baseline"], "pipeline / baseline"
    if args.no_baseline:
        return names[:1], f"{label}, not run"
    return names, label


def quality_command(args: argparse.Namespace) -> int:
    chosen = _task_sets(args)
    if isinstance(chosen, str):
        print(f"fim-lsp: {chosen}", file=sys.stderr)
        return 2
    task_sets, set_names = chosen
    from fim_lsp.config import Settings
    from fim_lsp.errors import FimError

    documents = []
    names, labels = _systems_names(args, task_sets)
    runs = [
        (name, engine) for name in args.model or [Settings().model] for engine in args.engine_json or [None]
    ]
    for name, engine in runs:
        try:
            description, reports = _run_model(args, name, engine, task_sets, set_names)
        except FimError as exc:
            print(f"fim-lsp: cannot benchmark model {name}: {exc}", file=sys.stderr)
            return 1
        if args.json:
            document = report_json(description, reports, details=not args.no_details)
            document["systems"] = names
            documents.append(document)
        else:
            print(format_report(description, reports, labels))
            print()
    if args.json:
        json.dump({"machine": machine(), "limit": args.limit, "runs": documents}, sys.stdout, indent=1)
        print()
    else:
        info = machine()
        print(f"machine: {info['processor']}, {info['cpus']} CPUs, {info['platform']}")
    return 0


def _served_settings(args: argparse.Namespace) -> str:
    return f"settings {json.dumps(args.settings_json)}" if args.settings_json else "its default settings"


def _settings_of(args: argparse.Namespace, engine: dict[str, Any] | None) -> dict[str, Any]:
    settings = dict(args.settings_json or {})
    if engine is not None:
        settings["engine"] = engine
    return settings


def register_cli(subparsers: Any) -> None:
    """Add `quality` to the `bench` command's subparsers."""
    parser = subparsers.add_parser(
        "quality",
        help="FIM benchmarks through the pipeline, beside a raw baseline",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "bench_dir",
        metavar="BENCH_DIR",
        nargs="?",
        help="folder holding human-eval-infilling/ and santacoder-fim/ (default: the HumanEval-infilling "
        "data shipped with fim-lsp)",
    )
    parser.add_argument(
        "--tasks",
        metavar="FILE",
        help="tasks cut by `fim-lsp dataset` instead: the pipeline with and without workspace snippets",
    )
    parser.add_argument(
        "--sets",
        nargs="+",
        choices=list(SETS),
        metavar="SET",
        help=f"sets to run (default: every one whose data is at hand): {', '.join(SETS)}",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="at most N tasks per set, spread evenly")
    _add_system_arguments(parser)
    parser.set_defaults(handler=quality_command)


def _add_system_arguments(parser: argparse.ArgumentParser) -> None:
    """What runs the tasks: the models, the engines, their settings, and how the report is written."""
    parser.add_argument(
        "--model",
        action="append",
        metavar="NAME_OR_PATH",
        help="model to measure (repeat to compare; default: the default model)",
    )
    parser.add_argument(
        "--order",
        choices=get_args(FimOrder),
        default="auto",
        help="FIM order of the pipeline's prompt (the baseline is always PSM)",
    )
    parser.add_argument(
        "--threads", type=int, metavar="N", help="CPU threads for the model (default: one per core)"
    )
    parser.add_argument(
        "--engine-json",
        type=json_object_arg,
        action="append",
        metavar="JSON",
        help="where the model runs, as the `engine` setting, e.g. "
        '\'{"kind": "openai", "url": "http://127.0.0.1:8080/v1"}\'; repeat to compare engines in one run '
        '(\'{"kind": "embedded"}\' for the model in process)',
    )
    parser.add_argument(
        "--settings-json", type=json_object_arg, metavar="JSON", help="more settings, as a client sends them"
    )
    parser.add_argument(
        "--alternatives",
        type=int,
        default=1,
        metavar="N",
        help="the pipeline offers N middles, as an invoked request does: pass@1 of the first and pass@N "
        "of them all, and what they cost the first (1)",
    )
    parser.add_argument(
        "--served",
        action="store_true",
        help="what users get: each task asked of a fresh `fim-lsp --stdio` with its own settings (and "
        "--settings-json) and its time budget, the file opened --open-wait seconds before; beside the "
        "raw baseline of --model (default: the model the server's defaults choose here)",
    )
    parser.add_argument(
        "--open-wait",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="with --served: seconds between opening a task's file and asking (2)",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="run the pipeline (or with --served, the server) alone: no raw baseline, or with --tasks no "
        "run without workspace snippets; for comparing settings, where the second system costs as "
        "much again",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--no-details", action="store_true", help="leave each task's middle out of the JSON")
