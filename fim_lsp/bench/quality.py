"""`fim-lsp bench quality`: fill-in-the-middle benchmarks run through the server's own pipeline.

Each task of each set is completed twice with the same model: by the pipeline (the very code the server
runs: cursor shape, context, prompt, generation, truncation) and by a raw baseline (a plain PSM prompt of
the same budget and max tokens, stopping only at end-of-text, its text taken as is). Per set and system
the report gives the score (pass@1 from running the tests in a sandbox, or SantaCoder exact match), the
share of middles that reached end-of-text, the share of shown middles that leave the file parseable
where the reference does, the share dropped (nothing shown), mean latency and mean tokens generated.

The completion functions are injected (`System`), so the runner is tested without a model; the real ones
come from `engine_systems`.
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import hashlib
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from fim_lsp.bench import json_object_arg
from fim_lsp.bench.scoring import check_infilling, exact_match
from fim_lsp.config import FimOrder
from fim_lsp.prompt import RepoFile
from fim_lsp.syntax import count_errors, new_parser

logger = logging.getLogger(__name__)

Metric = Literal["pass@1", "exact-match", "exact-match-all"]
"""`exact-match` compares the first line (SantaCoder-FIM, as the Qwen report scores it); `exact-match-all`
the whole middle, line by line, for holes of several lines cut from a repository (`fim-lsp dataset`)."""

HUMAN_EVAL_DIR = "human-eval-infilling"
SANTACODER_FILE = "santacoder-fim/santacoder-fim-task.jsonl.gz"

#: Set name -> (file under the benchmark folder, metric). SantaCoder sets filter one language each.
SETS: dict[str, tuple[str, Metric]] = {
    "single-line": (f"{HUMAN_EVAL_DIR}/HumanEval-SingleLineInfilling.jsonl.gz", "pass@1"),
    "multi-line": (f"{HUMAN_EVAL_DIR}/HumanEval-MultiLineInfilling.jsonl.gz", "pass@1"),
    "random-span-light": (f"{HUMAN_EVAL_DIR}/HumanEval-RandomSpanInfillingLight.jsonl.gz", "pass@1"),
    "santacoder-py": (SANTACODER_FILE, "exact-match"),
    "santacoder-java": (SANTACODER_FILE, "exact-match"),
    "santacoder-js": (SANTACODER_FILE, "exact-match"),
}


def bundled_benchmarks() -> Path:
    """The benchmark data shipped with fim-lsp: HumanEval-infilling (MIT), not SantaCoder-FIM, whose
    licence allows evaluation only (it is read from a folder the user gives)."""
    return Path(str(resources.files("fim_lsp").joinpath("data/benchmarks")))


def set_path(set_name: str, bench_dir: Path | None) -> Path | None:
    """The file of set `set_name` in `bench_dir`, or in the data shipped with fim-lsp when no folder is
    given; None when it is not there."""
    file_name, _metric = SETS[set_name]
    path = (bench_dir or bundled_benchmarks()) / file_name
    return path if path.exists() else None


def available_sets(bench_dir: Path | None) -> list[str]:
    """The sets whose data is at hand (see `set_path`), in `SETS` order."""
    return [name for name in SETS if set_path(name, bench_dir) is not None]


_SANTACODER_LANGUAGES = {
    "py": ("python", "task.py"),
    "java": ("java", "Task.java"),
    "js": ("javascript", "task.js"),
}


@dataclass(frozen=True)
class Task:
    """One hole to fill: the text around it, what belongs in it, and how to score a middle."""

    set_name: str
    task_id: str
    language: str
    """tree-sitter grammar (and LSP language id) of the file."""
    path: str
    """A file name with the language's extension, as an editor would send it."""
    prefix: str
    suffix: str
    reference: str
    """The reference middle as it stands in the file between prefix and suffix."""
    metric: Metric
    canonical: str = ""
    """The canonical solution the exact-match scorer compares with (SantaCoder)."""
    test: str = ""
    entry_point: str = ""
    snippets: tuple[RepoFile, ...] = ()
    """Workspace snippets for the cursor (tasks cut by `fim-lsp dataset`)."""
    repo: str = ""

    def problem(self) -> dict[str, str]:
        """The human-eval-infilling problem record the execution scorer takes."""
        return {
            "prompt": self.prefix,
            "suffix": self.suffix,
            "test": self.test,
            "entry_point": self.entry_point,
        }


@dataclass(frozen=True)
class Answer:
    """What one system wrote for one task, and what it cost."""

    text: str | None
    """The middle to insert; None when the system showed nothing."""
    reached_eot: bool
    latency_ms: float
    tokens: int
    """Tokens generated."""
    max_tokens: int
    """The cap on generated tokens this answer ran under (the baseline gets the same)."""


#: What the second system of a run is: the raw baseline, or the pipeline without workspace snippets.
Comparison = Literal["baseline", "workspace"]

#: A completion function: `(task, max_tokens)` -> answer. `max_tokens` None lets the system choose (the
#: pipeline does, from the cursor's shape); a number is a cap the system must use (the baseline).
System = Callable[[Task, int | None], Answer]


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _read_jsonl_gz(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _problem_of(task_id: str) -> str:
    """`MultiLineInfilling/HumanEval/12/L3_L5` -> `HumanEval/12`."""
    parts = task_id.split("/")
    return "/".join(parts[1:3])


def one_per_problem(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A fixed sample of one task per problem: the choice hangs on the problem's name only (a hash), so
    it is the same on every run, machine and Python version, and spread over the tasks' positions."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(_problem_of(record["task_id"]), []).append(record)
    chosen = []
    for problem, group in groups.items():
        digest = int.from_bytes(hashlib.sha256(problem.encode()).digest()[:8], "big")
        chosen.append(group[digest % len(group)])
    return chosen


def spread(items: Sequence[Any], limit: int | None) -> list[Any]:
    """`limit` items taken evenly across `items` (all of them when `limit` is None or large enough), so
    a fast subset still covers different problems instead of the first few."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        return []
    return [items[index * len(items) // limit] for index in range(limit)]


def _human_eval_task(set_name: str, record: dict[str, Any]) -> Task:
    return Task(
        set_name=set_name,
        task_id=record["task_id"],
        language="python",
        path="task.py",
        prefix=record["prompt"],
        suffix=record["suffix"],
        reference=record["canonical_solution"],
        metric="pass@1",
        canonical=record["canonical_solution"],
        test=record["test"],
        entry_point=record["entry_point"],
    )


def _santacoder_task(set_name: str, record: dict[str, Any]) -> Task:
    language, path = _SANTACODER_LANGUAGES[record["language"]]
    return Task(
        set_name=set_name,
        task_id=record["name"],
        language=language,
        path=path,
        prefix=record["prompt"],
        suffix=record["suffix"],
        # The prompt ends before the hole's line break and the suffix starts on the next line.
        reference="\n" + record["canonical_solution"] + "\n",
        metric="exact-match",
        canonical=record["canonical_solution"],
    )


def dataset_tasks(path: Path, limit: int | None = None) -> dict[str, list[Task]]:
    """The tasks of a `fim-lsp dataset` file, a set per kind (`repo:cross-file`...), `limit` per set."""
    from fim_lsp.dataset import read_tasks

    sets: dict[str, list[Task]] = {}
    for record in read_tasks(path):
        one_line = record.kind in ("single-line", "cross-file")
        task = Task(
            set_name=f"repo:{record.kind}",
            task_id=record.task_id,
            language=record.language,
            path=record.path,
            prefix=record.prefix,
            suffix=record.suffix,
            reference=record.middle,
            metric="exact-match" if one_line else "exact-match-all",
            canonical=record.middle,
            snippets=record.snippets,
            repo=record.repo,
        )
        sets.setdefault(task.set_name, []).append(task)
    return {name: spread(tasks, limit) for name, tasks in sets.items()}


def load_set(bench_dir: Path | None, set_name: str, limit: int | None = None) -> list[Task]:
    """The tasks of one set (see `SETS`, and `set_path` for where its file is found), `limit` of them
    spread evenly when given."""
    if set_name not in SETS:
        raise ValueError(f"unknown set {set_name!r}; known: {', '.join(SETS)}")
    path = set_path(set_name, bench_dir)
    if path is None:
        raise FileNotFoundError(missing_set(set_name, bench_dir))
    records = _read_jsonl_gz(path)
    if set_name.startswith("santacoder-"):
        code = set_name.removeprefix("santacoder-")
        tasks = [_santacoder_task(set_name, r) for r in records if r["language"] == code]
    else:
        if set_name == "multi-line":
            records = one_per_problem(records)
        tasks = [_human_eval_task(set_name, r) for r in records]
    return spread(tasks, limit)


# --------------------------------------------------------------------------------------------------
# Scoring and summaries
# --------------------------------------------------------------------------------------------------


def _parses_clean(language: str, text: str) -> bool:
    return count_errors(new_parser(language).parse(text.encode("utf-8")).root_node) == 0


def score_answer(task: Task, text: str | None) -> bool:
    """Whether a middle is right: the tests pass (human-eval), or the line matches (SantaCoder)."""
    if task.metric == "pass@1":
        return check_infilling(task.problem(), text).passed
    if task.metric == "exact-match-all":
        return text is not None and _lines_of(text) == _lines_of(task.canonical)
    return exact_match(text, task.canonical)


def _lines_of(text: str) -> list[str]:
    """A middle's lines without trailing spaces or blank lines at either end: what a reader compares."""
    return [line.rstrip() for line in text.strip("\n").split("\n")]


def edit_similarity(text: str | None, reference: str) -> float:
    """1 for the same text, towards 0 the more edits apart (difflib's ratio over the stripped texts),
    as cross-file completion benchmarks report beside exact match; nothing shown scores 0."""
    if text is None:
        return 0.0
    return difflib.SequenceMatcher(None, text.strip(), reference.strip(), autojunk=False).ratio()


@dataclass
class TaskResult:
    """One task's outcome for one system."""

    task_id: str
    answer: Answer
    correct: bool
    parseable: bool | None
    """Whether the file parses with the middle inserted; None where the reference itself does not."""
    similarity: float = 0.0
    """Edit similarity of the middle to the reference (see `edit_similarity`)."""


@dataclass
class Summary:
    """One system's figures on one set."""

    tasks: int
    score: float
    eot: float
    """Share of middles the model ended with end-of-text."""
    parseable: float | None
    """Share of shown middles that leave the file parsing, among tasks whose reference file parses."""
    parse_tasks: int
    """How many middles that share is of."""
    dropped: float
    """Share of tasks where nothing was shown."""
    latency_ms: float
    tokens: float
    similarity: float = 0.0
    """Mean edit similarity to the reference."""

    @classmethod
    def of(cls, results: Sequence[TaskResult]) -> Summary:
        count = len(results) or 1
        judged = [r.parseable for r in results if r.parseable is not None and r.answer.text is not None]
        return cls(
            tasks=len(results),
            score=sum(r.correct for r in results) / count,
            eot=sum(r.answer.reached_eot for r in results) / count,
            parseable=sum(judged) / len(judged) if judged else None,
            parse_tasks=len(judged),
            dropped=sum(r.answer.text is None for r in results) / count,
            latency_ms=sum(r.answer.latency_ms for r in results) / count,
            tokens=sum(r.answer.tokens for r in results) / count,
            similarity=sum(r.similarity for r in results) / count,
        )


@dataclass
class SetReport:
    """A set's figures for the pipeline and the baseline, and each task's outcome."""

    name: str
    metric: Metric
    pipeline: Summary
    baseline: Summary
    results: dict[str, list[TaskResult]] = field(default_factory=dict)


def run_set(
    tasks: Sequence[Task],
    pipeline: System,
    baseline: System,
    *,
    progress: Callable[[Task, TaskResult, TaskResult], None] | None = None,
) -> SetReport:
    """Complete and score every task with both systems. The baseline runs under the pipeline's cap."""
    task_list = list(tasks)
    if not task_list:
        raise ValueError("a set needs at least one task")
    outcomes: dict[str, list[TaskResult]] = {"pipeline": [], "baseline": []}
    for task in task_list:
        reference_parses = _parses_clean(task.language, task.prefix + task.reference + task.suffix)
        pipeline_answer = pipeline(task, None)
        baseline_answer = baseline(task, pipeline_answer.max_tokens)
        pair = []
        for name, answer in (("pipeline", pipeline_answer), ("baseline", baseline_answer)):
            parseable = None
            if reference_parses:
                parseable = _parses_clean(task.language, task.prefix + (answer.text or "") + task.suffix)
            result = TaskResult(
                task.task_id,
                answer,
                score_answer(task, answer.text),
                parseable,
                edit_similarity(answer.text, task.canonical or task.reference),
            )
            outcomes[name].append(result)
            pair.append(result)
        if progress:
            progress(task, pair[0], pair[1])
    first = task_list[0]
    return SetReport(
        name=first.set_name,
        metric=first.metric,
        pipeline=Summary.of(outcomes["pipeline"]),
        baseline=Summary.of(outcomes["baseline"]),
        results=outcomes,
    )


# --------------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------------


def _pair(pipeline: float | None, baseline: float | None, fmt: str) -> str:
    def one(value: float | None) -> str:
        return "-" if value is None else format(value, fmt)

    return f"{one(pipeline)} / {one(baseline)}"


def format_report(model: str, reports: Sequence[SetReport], systems: str = "pipeline / baseline") -> str:
    """A table for people: one row per set, each cell `pipeline / baseline`; after the parseable share,
    how many middles each share is of."""
    header = (
        "set",
        "metric",
        "n",
        "score",
        "edit sim",
        "eot",
        "parseable",
        "dropped",
        "latency ms",
        "tokens",
    )
    rows = [header]
    for report in reports:
        p, b = report.pipeline, report.baseline
        rows.append(
            (
                report.name,
                report.metric,
                str(p.tasks),
                _pair(p.score, b.score, ".3f"),
                _pair(p.similarity, b.similarity, ".2f"),
                _pair(p.eot, b.eot, ".2f"),
                _pair(p.parseable, b.parseable, ".2f") + f" ({p.parse_tasks}/{b.parse_tasks})",
                _pair(p.dropped, b.dropped, ".2f"),
                _pair(p.latency_ms, b.latency_ms, ".0f"),
                _pair(p.tokens, b.tokens, ".1f"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"model: {model}  (each cell: {systems})"]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def report_json(model: str, reports: Sequence[SetReport], *, details: bool = True) -> dict[str, Any]:
    """The figures for machines; with `details`, every task's middle and outcome too."""
    sets: dict[str, Any] = {}
    for report in reports:
        entry: dict[str, Any] = {
            "metric": report.metric,
            "pipeline": asdict(report.pipeline),
            "baseline": asdict(report.baseline),
        }
        if details:
            entry["tasks"] = [
                {
                    "task_id": p.task_id,
                    "pipeline": {
                        "text": p.answer.text,
                        "correct": p.correct,
                        "parseable": p.parseable,
                        "eot": p.answer.reached_eot,
                        "tokens": p.answer.tokens,
                    },
                    "baseline": {
                        "text": b.answer.text,
                        "correct": b.correct,
                        "parseable": b.parseable,
                        "eot": b.answer.reached_eot,
                        "tokens": b.answer.tokens,
                    },
                }
                for p, b in zip(report.results["pipeline"], report.results["baseline"], strict=True)
            ]
        sets[report.name] = entry
    return {"model": model, "sets": sets}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------------------------------
# The real systems: the pipeline and the raw baseline on a loaded model
# --------------------------------------------------------------------------------------------------


@contextmanager
def engine_systems(
    model: str,
    order: str = "auto",
    threads: int | None = None,
    settings_json: dict[str, Any] | None = None,
    compare: Comparison = "baseline",
) -> Iterator[tuple[System, System, str]]:
    """Load `model` once and yield (pipeline, baseline, description) completion functions on it.

    `settings_json` holds more settings as a client sends them (camelCase), `engine` included: with a
    remote engine both systems run on that server, so embedded and remote compare in one report.
    With `compare="workspace"` the first system is the pipeline given each task's workspace snippets
    and the second the same pipeline without them.
    """
    from fim_lsp.completion import CompletionRequest, WorkspaceContext
    from fim_lsp.config import Settings, parse_settings
    from fim_lsp.engine import create_engine
    from fim_lsp.engine.base import GenerationRequest
    from fim_lsp.errors import ConfigurationError
    from fim_lsp.pipeline import complete, max_new_tokens
    from fim_lsp.syntax import LANGUAGES, DocumentSyntax

    base = Settings(model=model, fim_order=order, threads=threads)  # type: ignore[arg-type]
    settings, problems = parse_settings(settings_json or {}, base)
    if problems:
        raise ConfigurationError("; ".join(problems))
    engine = create_engine(settings)

    def forget_cache() -> None:
        # Both systems often send the very same prompt: the second would find it all in llama.cpp's KV
        # cache and look fast. Each answer is timed from a cold cache instead.
        llama = getattr(engine, "llama", None)
        if llama is not None:
            llama.reset()

    try:

        def pipeline(task: Task, max_tokens: int | None, with_snippets: bool = True) -> Answer:
            forget_cache()
            started = time.perf_counter()
            workspace = None
            if with_snippets and task.snippets:
                workspace = WorkspaceContext(
                    task.repo or "workspace",
                    task.path,
                    lambda budget, count: fit(task.snippets, budget, count),
                )
            text = task.prefix + task.suffix
            # The server keeps a tree of every open document it has a grammar for; so does the benchmark.
            syntax = DocumentSyntax(task.language, text) if task.language in LANGUAGES else None
            completion = complete(
                CompletionRequest(
                    text, len(task.prefix), task.language, task.path, syntax=syntax, workspace=workspace
                ),
                settings,
                engine,
                deadline=time.monotonic() + 600,  # the benchmark measures quality, not the time budget
            )
            latency = (time.perf_counter() - started) * 1000
            generation = completion.generation
            return Answer(
                text=completion.text,
                reached_eot=bool(generation and generation.reached_eot),
                latency_ms=latency,
                tokens=generation.generated_tokens if generation else 0,
                max_tokens=max_new_tokens(settings, completion.shape),
            )

        def baseline(task: Task, max_tokens: int | None) -> Answer:
            forget_cache()
            started = time.perf_counter()
            prefix, suffix = plain_context(
                task.prefix, task.suffix, settings.context_budget, engine.count_tokens
            )
            generation = engine.generate(
                GenerationRequest(
                    prompt=engine.template.render(prefix, suffix, "psm"),
                    max_tokens=max_tokens or settings.max_new_tokens,
                )
            )
            return Answer(
                text=generation.text,
                reached_eot=generation.reached_eot,
                latency_ms=(time.perf_counter() - started) * 1000,
                tokens=generation.generated_tokens,
                max_tokens=max_tokens or settings.max_new_tokens,
            )

        def without_snippets(task: Task, max_tokens: int | None) -> Answer:
            return pipeline(task, None, with_snippets=False)

        described = engine.describe()
        where = (
            "" if settings.engine.kind == "embedded" else f", {settings.engine.kind} at {settings.engine.url}"
        )
        name = Path(str(described.get("model", model))).name
        second = without_snippets if compare == "workspace" else baseline
        yield pipeline, second, f"{model} ({name}, order {order}{where})"
    finally:
        engine.close()


def fit(files: Sequence[RepoFile], budget: int, count_tokens: Callable[[str], int]) -> list[RepoFile]:
    """The files that fit `budget` tokens, in their order. Retrieval puts the most relevant file last
    (nearest the code being completed), so they are taken from the end; one that does not fit is left
    out."""
    kept, used = [], 0
    for snippet in reversed(files):
        cost = snippet.tokens(count_tokens)
        if used + cost <= budget:
            kept.append(snippet)
            used += cost
    return kept[::-1]


def plain_context(
    prefix: str, suffix: str, budget: int, count_tokens: Callable[[str], int]
) -> tuple[str, str]:
    """The baseline's context: whole lines nearest the cursor, prefix first, until `budget` tokens."""
    if count_tokens(prefix) + count_tokens(suffix) <= budget:
        return prefix, suffix
    prefix_lines = prefix.splitlines(keepends=True)
    suffix_lines = suffix.splitlines(keepends=True)
    kept_prefix: list[str] = []
    kept_suffix: list[str] = []
    used = 0
    for line in reversed(prefix_lines):
        cost = count_tokens(line)
        if used + cost > budget * 3 // 4:
            break
        kept_prefix.insert(0, line)
        used += cost
    for line in suffix_lines:
        cost = count_tokens(line)
        if used + cost > budget:
            break
        kept_suffix.append(line)
        used += cost
    return "".join(kept_prefix), "".join(kept_suffix)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def missing_set(set_name: str, bench_dir: Path | None) -> str:
    """Why set `set_name` cannot be run, and what to do."""
    file_name, _metric = SETS[set_name]
    if bench_dir is not None:
        return f"{bench_dir / file_name} not found: is {bench_dir} the benchmarks folder?"
    return (
        f"{set_name} is not shipped with fim-lsp (SantaCoder-FIM's licence allows evaluation only): "
        f"give the folder that holds {file_name}"
    )


def run_benchmark(
    bench_dir: Path | None,
    set_names: Iterable[str],
    limit: int | None,
    pipeline: System,
    baseline: System,
    *,
    progress: Callable[[Task, TaskResult, TaskResult], None] | None = None,
) -> list[SetReport]:
    """Every named set through both systems."""
    reports = []
    for name in set_names:
        tasks = load_set(bench_dir, name, limit)
        started = time.monotonic()
        report = run_set(tasks, pipeline, baseline, progress=progress)
        logger.info("%s: %d tasks in %.0f s", name, len(tasks), time.monotonic() - started)
        reports.append(report)
    return reports


def _log_progress(task: Task, pipeline: TaskResult, baseline: TaskResult) -> None:
    logger.info(
        "%s: pipeline %s (%s tokens), baseline %s (%s tokens)",
        task.task_id,
        "ok" if pipeline.correct else "--",
        pipeline.answer.tokens,
        "ok" if baseline.correct else "--",
        baseline.answer.tokens,
    )


def quality_command(args: argparse.Namespace) -> int:
    if args.bench_dir is not None and args.tasks is not None:
        print("fim-lsp: give either BENCH_DIR or --tasks FILE, not both", file=sys.stderr)
        return 2
    task_sets: dict[str, list[Task]] = {}
    if args.tasks is not None:
        try:
            task_sets = dataset_tasks(Path(args.tasks), args.limit)
        except (OSError, ValueError) as exc:
            print(f"fim-lsp: {exc}", file=sys.stderr)
            return 2
    bench_dir = Path(args.bench_dir) if args.bench_dir is not None else None
    set_names = args.sets or available_sets(bench_dir)
    if args.tasks is None:
        if not set_names:
            print(f"fim-lsp: {bench_dir}: benchmark data not found", file=sys.stderr)
            return 2
        for name in set_names:
            if set_path(name, bench_dir) is None:
                print(f"fim-lsp: {missing_set(name, bench_dir)}", file=sys.stderr)
                return 2
    from fim_lsp.config import Settings
    from fim_lsp.errors import FimError

    compare: Comparison = "workspace" if task_sets else "baseline"
    documents = []
    runs = [
        (name, engine) for name in args.model or [Settings().model] for engine in args.engine_json or [None]
    ]
    for name, engine in runs:
        try:
            systems = engine_systems(name, args.order, args.threads, _settings_of(args, engine), compare)
            with systems as (pipeline, second, description):
                if task_sets:
                    reports = [
                        run_set(tasks, pipeline, second, progress=_log_progress)
                        for tasks in task_sets.values()
                    ]
                else:
                    reports = run_benchmark(
                        bench_dir, set_names, args.limit, pipeline, second, progress=_log_progress
                    )
        except FimError as exc:
            print(f"fim-lsp: cannot benchmark model {name}: {exc}", file=sys.stderr)
            return 1
        if args.json:
            document = report_json(description, reports, details=not args.no_details)
            document["systems"] = ["with workspace", "without"] if task_sets else ["pipeline", "baseline"]
            documents.append(document)
        else:
            labels = "with workspace context / without" if task_sets else "pipeline / baseline"
            print(format_report(description, reports, labels))
            print()
    if args.json:
        json.dump({"machine": machine(), "limit": args.limit, "runs": documents}, sys.stdout, indent=1)
        print()
    else:
        info = machine()
        print(f"machine: {info['processor']}, {info['cpus']} CPUs, {info['platform']}")
    return 0


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
    parser.add_argument("--json", action="store_true", help="print JSON for machines")
    parser.add_argument("--no-details", action="store_true", help="leave each task's middle out of the JSON")
    parser.set_defaults(handler=quality_command)
