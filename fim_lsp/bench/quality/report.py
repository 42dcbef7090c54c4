"""The report of a run: a table a person reads, or JSON."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import asdict
from functools import partial
from typing import Any

from fim_lsp.bench.quality.run import SetReport, Summary, TaskResult


def _pair(pipeline: float | None, baseline: float | None, fmt: str) -> str:
    def one(value: float | None) -> str:
        return "-" if value is None else format(value, fmt)

    return f"{one(pipeline)} / {one(baseline)}"


def _cell(pipeline: Summary, baseline: Summary | None, figure: str, fmt: str) -> str:
    return _pair(getattr(pipeline, figure), None if baseline is None else getattr(baseline, figure), fmt)


def format_report(model: str, reports: Sequence[SetReport], systems: str = "pipeline / baseline") -> str:
    """A table for people: one row per set, each cell `pipeline / baseline` (`-` for a baseline not
    run); after the parseable share, how many middles each share is of."""
    header = (
        "set",
        "metric",
        "n",
        "score",
        "edit sim",
        "eot",
        "parseable",
        "dropped",
        "out of time",
        "latency ms: mean",
        "p50",
        "p95",
        "tokens",
    )
    rows = [header]
    for report in reports:
        p, b = report.pipeline, report.baseline
        cell = partial(_cell, p, b)
        rows.append(
            (
                report.name,
                report.metric,
                str(p.tasks),
                cell("score", ".3f"),
                cell("similarity", ".2f"),
                cell("eot", ".2f"),
                cell("parseable", ".2f") + f" ({p.parse_tasks}/{'-' if b is None else b.parse_tasks})",
                cell("dropped", ".2f"),
                cell("out_of_time", ".2f"),
                cell("latency_ms", ".0f"),
                cell("latency_p50_ms", ".0f"),
                cell("latency_p95_ms", ".0f"),
                cell("tokens", ".1f"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"model: {model}  (each cell: {systems})"]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for report in reports:
        p = report.pipeline
        if p.score_any is not None:
            first = "-" if p.first_p50_ms is None else f"{p.first_p50_ms:.0f}"
            lines.append(
                f"{report.name}: with alternatives, the first right {p.score:.3f}, any right "
                f"{p.score_any:.3f}; latency p50 of the first middle alone {first} ms, with the "
                f"alternatives {p.latency_p50_ms:.0f} ms"
            )
    return "\n".join(lines)


def report_json(model: str, reports: Sequence[SetReport], *, details: bool = True) -> dict[str, Any]:
    """The figures for machines; with `details`, every task's middle and outcome too."""
    sets: dict[str, Any] = {}
    for report in reports:
        entry: dict[str, Any] = {
            "metric": report.metric,
            "pipeline": asdict(report.pipeline),
            "baseline": None if report.baseline is None else asdict(report.baseline),
        }
        if details:
            pipelines = report.results["pipeline"]
            baselines: list[TaskResult | None] = list(report.results.get("baseline", [None] * len(pipelines)))
            entry["tasks"] = [
                {
                    "task_id": p.task_id,
                    "pipeline": {
                        "text": p.answer.text,
                        "correct": p.correct,
                        "parseable": p.parseable,
                        "eot": p.answer.reached_eot,
                        "tokens": p.answer.tokens,
                        "latency_ms": round(p.answer.latency_ms),
                        "out_of_time": p.answer.out_of_time,
                    },
                    "baseline": None
                    if b is None
                    else {
                        "text": b.answer.text,
                        "correct": b.correct,
                        "parseable": b.parseable,
                        "eot": b.answer.reached_eot,
                        "tokens": b.answer.tokens,
                        "latency_ms": round(b.answer.latency_ms),
                    },
                }
                for p, b in zip(pipelines, baselines, strict=True)
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
