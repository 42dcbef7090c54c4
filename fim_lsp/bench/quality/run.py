"""Running a set through two systems, and scoring each answer: pass@1 by running the tests, exact
match, edit similarity, and whether the file still parses."""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fim_lsp.bench.quality.tasks import (
    Answer,
    Metric,
    System,
    Task,
    load_set,
)
from fim_lsp.bench.scoring import check_infilling, exact_match
from fim_lsp.syntax import count_errors, new_parser

logger = logging.getLogger(__name__)


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
    any_correct: bool = False
    """Whether the middle or one of its alternatives is right (pass@N)."""


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
    out_of_time: float = 0.0
    """Share of tasks whose time budget ran out before the answer was whole."""
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    score_any: float | None = None
    """Share of tasks where the middle or an alternative is right (pass@N), when alternatives came."""
    first_p50_ms: float | None = None
    """With alternatives: the p50 latency of the first middle alone."""

    @classmethod
    def of(cls, results: Sequence[TaskResult]) -> Summary:
        count = len(results) or 1
        judged = [r.parseable for r in results if r.parseable is not None and r.answer.text is not None]
        latencies = sorted(r.answer.latency_ms for r in results) or [0.0]
        offered = any(r.answer.first_ms is not None for r in results)
        firsts = sorted(r.answer.first_ms for r in results if r.answer.first_ms is not None)
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
            out_of_time=sum(r.answer.out_of_time for r in results) / count,
            latency_p50_ms=latencies[(len(latencies) - 1) // 2],
            latency_p95_ms=latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))],
            score_any=sum(r.any_correct for r in results) / count if offered else None,
            first_p50_ms=firsts[(len(firsts) - 1) // 2] if firsts else None,
        )


@dataclass
class SetReport:
    """A set's figures for the pipeline and the baseline (None: not run), and each task's outcome."""

    name: str
    metric: Metric
    pipeline: Summary
    baseline: Summary | None
    results: dict[str, list[TaskResult]] = field(default_factory=dict)


def run_set(
    tasks: Sequence[Task],
    pipeline: System,
    baseline: System | None,
    *,
    progress: Callable[[Task, TaskResult, TaskResult | None], None] | None = None,
) -> SetReport:
    """Complete and score every task with both systems (the pipeline alone when `baseline` is None).
    The baseline runs under the pipeline's cap."""
    task_list = list(tasks)
    if not task_list:
        raise ValueError("a set needs at least one task")
    outcomes: dict[str, list[TaskResult]] = (
        {"pipeline": []} if baseline is None else {"pipeline": [], "baseline": []}
    )
    for task in task_list:
        reference_parses = _parses_clean(task.language, task.prefix + task.reference + task.suffix)
        pipeline_answer = pipeline(task, None)
        answers = [("pipeline", pipeline_answer)]
        if baseline is not None:
            answers.append(("baseline", baseline(task, pipeline_answer.max_tokens)))
        pair = []
        for name, answer in answers:
            parseable = None
            if reference_parses:
                parseable = _parses_clean(task.language, task.prefix + (answer.text or "") + task.suffix)
            correct = score_answer(task, answer.text)
            result = TaskResult(
                task.task_id,
                answer,
                correct,
                parseable,
                edit_similarity(answer.text, task.canonical or task.reference),
                any_correct=correct or any(score_answer(task, other) for other in answer.alternatives),
            )
            outcomes[name].append(result)
            pair.append(result)
        if progress:
            progress(task, pair[0], pair[1] if len(pair) > 1 else None)
    first = task_list[0]
    return SetReport(
        name=first.set_name,
        metric=first.metric,
        pipeline=Summary.of(outcomes["pipeline"]),
        baseline=Summary.of(outcomes["baseline"]) if "baseline" in outcomes else None,
        results=outcomes,
    )


def run_benchmark(
    bench_dir: Path | None,
    set_names: Iterable[str],
    limit: int | None,
    pipeline: System,
    baseline: System | None,
    *,
    progress: Callable[[Task, TaskResult, TaskResult | None], None] | None = None,
) -> list[SetReport]:
    """Every named set through both systems (the pipeline alone when `baseline` is None)."""
    reports = []
    for name in set_names:
        tasks = load_set(bench_dir, name, limit)
        started = time.monotonic()
        report = run_set(tasks, pipeline, baseline, progress=progress)
        logger.info("%s: %d tasks in %.0f s", name, len(tasks), time.monotonic() - started)
        reports.append(report)
    return reports
