"""The systems a benchmark compares, on one loaded model: the server's pipeline, and the raw baseline
(a plain PSM prompt of the same budget, its answer taken as it comes, from the model without the
adapter the pipeline applies)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from fim_lsp.bench.quality.tasks import (
    Answer,
    Comparison,
    System,
    Task,
)
from fim_lsp.config import NO_ADAPTER, Settings
from fim_lsp.engine.base import Engine
from fim_lsp.prompt import FimPrompt, RepoFile


def forget_cache(engine: Engine) -> None:
    """Both systems often send the very same prompt: the second would find it all in llama.cpp's KV cache
    and look fast. Each answer is timed from a cold cache instead."""
    forget = getattr(engine, "forget", None)
    if forget is not None:
        forget()


def pipeline_answer(
    task: Task, settings: Settings, engine: Engine, with_snippets: bool = True, alternatives: int = 1
) -> Answer:
    """The server's pipeline on `task`, with the task's workspace snippets when it has some and
    `with_snippets`; with `alternatives` over 1, as many middles as an invoked request gets."""
    from fim_lsp.completion import CompletionRequest, WorkspaceContext
    from fim_lsp.pipeline import complete, max_new_tokens
    from fim_lsp.syntax import LANGUAGES, DocumentSyntax

    forget_cache(engine)
    started = time.perf_counter()
    workspace = None
    if with_snippets and task.snippets:
        workspace = WorkspaceContext(
            task.repo or "workspace", task.path, lambda budget, count: fit(task.snippets, budget, count)
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
        alternatives=alternatives - 1,
    )
    latency = (time.perf_counter() - started) * 1000
    generation = completion.generation
    others_ms = generation.alternatives_ms if generation else 0.0
    return Answer(
        text=completion.text,
        reached_eot=bool(generation and generation.reached_eot),
        latency_ms=latency,
        tokens=generation.generated_tokens if generation else 0,
        max_tokens=max_new_tokens(settings, completion.shape),
        alternatives=completion.alternatives,
        first_ms=latency - others_ms if alternatives > 1 else None,
    )


def baseline_answer(task: Task, settings: Settings, engine: Engine, max_tokens: int | None) -> Answer:
    """The raw baseline on `task`: a plain PSM prompt of the nearest whole lines within the budget,
    stopping only at end-of-text, its text taken as it comes."""
    from fim_lsp.engine.base import GenerationRequest

    forget_cache(engine)
    started = time.perf_counter()
    prefix, suffix = plain_context(task.prefix, task.suffix, settings.budget_cap, engine.count_tokens)
    generation = engine.generate(
        GenerationRequest(
            prompt=FimPrompt(prefix, suffix, "psm"),
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


@contextmanager
def engine_systems(
    model: str,
    order: str = "auto",
    threads: int | None = None,
    settings_json: dict[str, Any] | None = None,
    compare: Comparison = "baseline",
    alternatives: int = 1,
) -> Iterator[tuple[System, System, str]]:
    """Load `model` once and yield (pipeline, baseline, description) completion functions on it.

    `settings_json` holds more settings as a client sends them (camelCase), `engine` included: with a
    remote engine both systems run on that server, so embedded and remote compare in one report.
    With `compare="workspace"` the first system is the pipeline given each task's workspace snippets
    and the second the same pipeline without them.
    """
    from fim_lsp.config import parse_settings
    from fim_lsp.engine import create_engine
    from fim_lsp.errors import ConfigurationError

    base = Settings(model=model, fim_order=order, threads=threads)  # type: ignore[arg-type]
    settings, problems = parse_settings(settings_json or {}, base)
    if problems:
        raise ConfigurationError("; ".join(problems))
    engine = create_engine(settings)
    described = engine.describe()
    adapter = described.get("adapter")
    raw: Engine | None = None if adapter else engine
    try:

        def raw_engine() -> Engine:
            nonlocal raw
            if raw is None:
                # The raw baseline is the model alone: an adapter is part of what the pipeline serves.
                raw = create_engine(attrs.evolve(settings, adapter=NO_ADAPTER))
            return raw

        def pipeline(task: Task, _max_tokens: int | None) -> Answer:
            return pipeline_answer(task, settings, engine, alternatives=alternatives)

        def baseline(task: Task, max_tokens: int | None) -> Answer:
            return baseline_answer(task, settings, raw_engine(), max_tokens)

        def without_snippets(task: Task, _max_tokens: int | None) -> Answer:
            return pipeline_answer(task, settings, engine, with_snippets=False)

        where = (
            "" if settings.engine.kind == "embedded" else f", {settings.engine.kind} at {settings.engine.url}"
        )
        name = Path(str(described.get("model", model))).name
        second = without_snippets if compare == "workspace" else baseline
        with_adapter = f", adapter {Path(str(adapter)).name}" if adapter else ""
        yield pipeline, second, f"{model} ({name}{with_adapter}, order {order}{where})"
    finally:
        engine.close()
        if raw is not None and raw is not engine:
            raw.close()


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
