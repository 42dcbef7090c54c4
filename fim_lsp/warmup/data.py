"""The warm-up's training data: FIM tasks cut from the given code, rendered as the server prompts them.

Per folder, a share of the source files is held out (chosen by a hash of the path, so the choice is the
same on every run with the same seed): no hole is cut in them and no snippet shows them, so tasks cut
from them later measure the adapter on code it never saw. The rest gives tasks of every kind
(`fim_lsp.dataset`), each one training sequence: the server's prompt, then the middle and end-of-text,
the loss on those alone. A share of the sequences is in the k-shot form: a few other holes of the same
repository with their answers (short prompts, no snippets), then the query.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from fim_lsp.config import Settings
from fim_lsp.dataset import KINDS, DatasetTask, Kind, cut_tasks, source_files
from fim_lsp.warmup.prompts import served_example

if TYPE_CHECKING:
    from fim_lsp.engine.llama_cpp import LlamaCppEngine

#: Context budget of a k-shot sequence's demonstrations: a few lines around each hole, enough to show
#: the task's shape, little enough that several fit beside the query.
SHOT_CONTEXT_BUDGET = 128


def held_out_files(files: Iterable[str], share: float, seed: int) -> set[str]:
    """About `share` of `files`, chosen by a hash of (seed, path): the same files on every run, and a
    file keeps its place when others are added. At least one when `share` > 0 and there are two files."""
    files = sorted(files)

    def rank(path: str) -> float:
        digest = hashlib.sha256(f"{seed}:{path}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    chosen = {path for path in files if rank(path) < share}
    if share > 0 and not chosen and len(files) > 1:
        chosen = {min(files, key=rank)}
    return chosen


@dataclass
class Source:
    """One folder given to the warm-up, and the files of it held out."""

    folder: Path
    held_out: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.folder.name


def sources(folders: Sequence[Path], held_out_share: float, seed: int) -> list[Source]:
    """The folders with their held-out files chosen."""
    return [Source(folder, held_out_files(source_files(folder), held_out_share, seed)) for folder in folders]


def training_tasks(sources: Sequence[Source], per_kind: int, seed: int) -> list[DatasetTask]:
    """Up to `per_kind` tasks of each kind from each source, without its held-out files."""
    tasks: list[DatasetTask] = []
    for source in sources:
        try:
            tasks += cut_tasks(source.folder, per_kind, seed, leave_out=source.held_out)
        except ValueError:
            continue  # a folder with no source files left gives no tasks; the caller counts them
    return tasks


def evaluation_tasks(source: Source, per_kind: int, seed: int) -> list[DatasetTask]:
    """Tasks cut from a source's held-out files only (the rest of the folder serves snippets, as a
    workspace would)."""
    if not source.held_out:
        return []
    return cut_tasks(source.folder, per_kind, seed, only=source.held_out)


@dataclass(frozen=True)
class TrainingSequence:
    """One training sequence: tokens, and where the answer the loss is taken on starts."""

    tokens: list[int]
    answer_start: int
    kind: str
    shots: int = 0
    """Demonstrations in front of the query (0: a plain server prompt)."""
    snippets: bool = True
    """Whether the query's prompt has the task's workspace snippets."""

    def to_json(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "answer_start": self.answer_start,
            "kind": self.kind,
            "shots": self.shots,
            "snippets": self.snippets,
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> TrainingSequence:
        return cls(
            tokens=[int(t) for t in record["tokens"]],
            answer_start=int(record["answer_start"]),
            kind=str(record["kind"]),
            shots=int(record.get("shots", 0)),
            snippets=bool(record.get("snippets", True)),
        )


@dataclass(frozen=True)
class Mix:
    """How the sequences are made."""

    kshot_share: float = 0.25
    """Share of sequences in the k-shot form."""
    shots: int = 3
    """Demonstrations in a k-shot sequence, at most (fewer when they do not fit `max_tokens`)."""
    without_snippets_share: float = 0.2
    """Share of plain sequences whose prompt leaves the workspace snippets out, as the server does for a
    file outside any workspace, so the model stays good at completing without them."""
    max_tokens: int = 2048
    """Longest sequence; a task whose server prompt alone is longer is left out."""


def build_sequences(
    tasks: Sequence[DatasetTask],
    settings: Settings,
    engine: LlamaCppEngine,
    mix: Mix,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[TrainingSequence], dict[str, int]]:
    """One sequence per task that the server would complete and that fits, in a shuffled order; and
    counts of what was made and left out."""
    rng = random.Random(seed)
    shot_settings = attrs.evolve(settings, context_budget=SHOT_CONTEXT_BUDGET)
    demonstrations: dict[str, list[int] | None] = {}

    def demonstration(task: DatasetTask) -> list[int] | None:
        if task.task_id not in demonstrations:
            served = served_example(task, shot_settings, engine, with_snippets=False)
            demonstrations[task.task_id] = None if served is None else served.prompt + served.answer
        return demonstrations[task.task_id]

    by_repo: dict[str, list[DatasetTask]] = {}
    for task in tasks:
        by_repo.setdefault(task.repo, []).append(task)
    counts = {"tasks": len(tasks), "not completed by the server": 0, "too long": 0, "k-shot": 0}
    made: list[TrainingSequence] = []
    for number, task in enumerate(tasks):
        if progress:
            progress(number, len(tasks))
        kshot = rng.random() < mix.kshot_share
        with_snippets = kshot or rng.random() >= mix.without_snippets_share
        served = served_example(task, settings, engine, with_snippets=with_snippets)
        if served is None:
            counts["not completed by the server"] += 1
            continue
        query = served.prompt + served.answer
        if len(query) > mix.max_tokens:
            counts["too long"] += 1
            continue
        head: list[int] = []
        shots = 0
        if kshot:
            # Other files' holes only: a hole of the query's own file would show its answer.
            others = [t for t in by_repo[task.repo] if t.path != task.path]
            rng.shuffle(others)
            others.sort(key=lambda t: t.kind != task.kind)  # the same kind of hole first
            for other in others:
                if shots == mix.shots:
                    break
                shown = demonstration(other)
                if shown is not None and len(head) + len(shown) + len(query) <= mix.max_tokens:
                    head += shown
                    shots += 1
            counts["k-shot"] += shots > 0
        made.append(
            TrainingSequence(
                tokens=head + query,
                answer_start=len(head) + len(served.prompt),
                kind=task.kind,
                shots=shots,
                snippets=with_snippets and bool(task.snippets),
            )
        )
    rng.shuffle(made)
    counts["sequences"] = len(made)
    return made, counts


def kind_counts(tasks: Iterable[DatasetTask]) -> dict[Kind, int]:
    counted = {kind: 0 for kind in KINDS}
    for task in tasks:
        counted[task.kind] += 1
    return counted
