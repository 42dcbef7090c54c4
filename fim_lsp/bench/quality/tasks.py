"""The benchmark's tasks: the sets (HumanEval-infilling, shipped; SantaCoder-FIM, from a folder the
user gives), tasks cut by `fim-lsp dataset`, and what a system answers."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fim_lsp.prompt import RepoFile

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


def missing_set(set_name: str, bench_dir: Path | None) -> str:
    """Why set `set_name` cannot be run, and what to do."""
    file_name, _metric = SETS[set_name]
    if bench_dir is not None:
        return f"{bench_dir / file_name} not found: is {bench_dir} the benchmarks folder?"
    return (
        f"{set_name} is not shipped with fim-lsp (SantaCoder-FIM's licence allows evaluation only): "
        f"give the folder that holds {file_name}"
    )


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
    out_of_time: bool = False
    """The time budget ran out before the answer was whole (what was whole by then, if anything, is it)."""
    alternatives: tuple[str, ...] = ()
    """Other middles offered after `text` (pass@N counts a task right when any of them is)."""
    first_ms: float | None = None
    """When alternatives were written: the latency of the first middle alone, without them."""


#: What the second system of a run is: the raw baseline, or the pipeline without workspace snippets.
Comparison = Literal["baseline", "workspace"]


#: A completion function: `(task, max_tokens)` -> answer. `max_tokens` None lets the system choose (the
#: pipeline does, from the cursor's shape); a number is a cap the system must use (the baseline).
System = Callable[[Task, int | None], Answer]


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
