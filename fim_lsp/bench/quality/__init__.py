"""`fim-lsp bench quality`: fill-in-the-middle benchmarks run through the server's own pipeline.

Each task of each set is completed twice with the same model: by the pipeline (the very code the server
runs: cursor shape, context, prompt, generation, truncation) and by a raw baseline (a plain PSM prompt of
the same budget and max tokens, stopping only at end-of-text, its text taken as is). Per set and system
the report gives the score (pass@1 from running the tests in a sandbox, or SantaCoder exact match), the
share of middles that reached end-of-text, the share of shown middles that leave the file parseable
where the reference does, the share dropped (nothing shown), mean latency and mean tokens generated.

The completion functions are injected (`System`), so the runner is tested without a model; the real ones
come from `engine_systems`. Modules: `tasks` (the sets and their tasks), `run` (running and scoring),
`report`, `systems` (the pipeline and the baseline on a loaded model), `cli`.
"""

from fim_lsp.bench.quality.cli import quality_command, register_cli
from fim_lsp.bench.quality.report import format_report, report_json
from fim_lsp.bench.quality.run import SetReport, Summary, TaskResult, run_benchmark, run_set, score_answer
from fim_lsp.bench.quality.systems import engine_systems, plain_context
from fim_lsp.bench.quality.tasks import (
    SETS,
    Answer,
    Task,
    available_sets,
    bundled_benchmarks,
    dataset_tasks,
    load_set,
    one_per_problem,
    spread,
)

__all__ = [
    "SETS",
    "Answer",
    "SetReport",
    "Summary",
    "Task",
    "TaskResult",
    "available_sets",
    "bundled_benchmarks",
    "dataset_tasks",
    "engine_systems",
    "format_report",
    "load_set",
    "one_per_problem",
    "plain_context",
    "quality_command",
    "register_cli",
    "report_json",
    "run_benchmark",
    "run_set",
    "score_answer",
    "spread",
]
