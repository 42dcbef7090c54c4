"""Warm-up: a request that typing stopped before its prompt was evaluated leaves that prompt, all but the
cursor's line, to be evaluated into the cache while the user types on; any newer request stops it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

from fim_lsp.completion import CompletionRequest
from fim_lsp.config import Settings
from fim_lsp.engine.base import Engine, Generation, GenerationRequest, StopReason
from fim_lsp.pipeline import complete
from fim_lsp.prompt import template_for_family
from fim_lsp.service import CompletionService

TEXT = "values = [1, 2, 3]\ntotal = \nprint(total)\n"
OFFSET = TEXT.index("total = ") + len("total = ")
REQUEST = CompletionRequest(TEXT, OFFSET, "python", "/w/stats.py")


def wait_for(event: threading.Event) -> None:
    assert event.wait(10), "the engine was not called"


class EvaluatingEngine(Engine):
    """Each generation "evaluates its prompt" until it is cancelled (or, with `stop_reason`, returns at
    once with that reason and nothing written); warm-ups are recorded, and held until cancelled when
    `hold_warm_up` is set."""

    def __init__(self, stop_reason: StopReason = "cancelled", hold_warm_up: bool = False) -> None:
        self.template = template_for_family("qwen2.5-coder")
        self.stop_reason = stop_reason
        self.hold_warm_up = hold_warm_up
        self.prompts: list[str] = []
        self.warmed: list[str] = []
        self.generating = threading.Event()
        self.warming = threading.Event()
        self.warm_up_stopped = threading.Event()

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def generate(self, request: GenerationRequest) -> Generation:
        self.prompts.append(self.template.render(request.prompt))
        self.generating.set()
        if self.stop_reason == "cancelled":
            _until_cancelled(request)
        return Generation("", self.stop_reason, prompt_tokens=40, evaluated_tokens=8, generated_tokens=0)

    def warm(self, request: GenerationRequest) -> int:
        if not request.before_line:
            return 0  # the window evaluated after an answer (`pipeline.stream`), not a warm-up
        self.warmed.append("".join(self.template.pieces(request.prompt, before_line=True)))
        self.warming.set()
        if self.hold_warm_up:
            _until_cancelled(request)
            self.warm_up_stopped.set()
            return 3
        return 30


def _until_cancelled(request: GenerationRequest) -> None:
    deadline = time.monotonic() + 30
    while not request.cancel.cancelled and time.monotonic() < deadline:
        time.sleep(0.005)  # as a model would, between chunks of its prompt


def _service(engine: Engine, **settings: object) -> CompletionService:
    service = CompletionService(
        Settings(workspace_context=False, **settings),  # type: ignore[arg-type]
        engine_factory=lambda _settings: engine,
    )
    service.start()
    assert service.wait_ready(timeout=30).state == "ready"
    return service


async def _cancel_while_evaluating(service: CompletionService, engine: EvaluatingEngine) -> None:
    """A request the editor cancels ($/cancelRequest: the handler's task is cancelled) mid-prompt."""
    task = asyncio.ensure_future(service.complete("doc", REQUEST))
    await asyncio.get_running_loop().run_in_executor(None, wait_for, engine.generating)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_request_cancelled_while_its_prompt_was_evaluated_warms_all_but_the_cursors_line():
    engine = EvaluatingEngine()
    service = _service(engine)
    try:
        await _cancel_while_evaluating(service, engine)
        await asyncio.get_running_loop().run_in_executor(None, wait_for, engine.warming)
        (warmed,) = engine.warmed
        (prompt,) = engine.prompts
        assert prompt.startswith(warmed) and prompt[len(warmed) :] == "total ="
        assert warmed.endswith("values = [1, 2, 3]\n"), "cut where the cursor's line starts"
        service.wait_ready(timeout=10)  # the warm-up has finished on the worker
        assert (service.stats["warm_ups"], service.stats["warm_up_evaluated_tokens"]) == (1, 30)
    finally:
        service.shutdown()


async def test_the_next_request_stops_a_running_warm_up():
    engine = EvaluatingEngine(hold_warm_up=True)
    service = _service(engine)
    try:
        await _cancel_while_evaluating(service, engine)
        await asyncio.get_running_loop().run_in_executor(None, wait_for, engine.warming)
        engine.generating.clear()
        engine.stop_reason = "eot"
        await service.complete("doc", REQUEST)
        assert engine.warm_up_stopped.is_set()
        assert len(engine.prompts) == 2, "the newer request ran after the warm-up stopped"
        assert service.stats["warm_ups"] == 1 and service.stats["warm_up_evaluated_tokens"] == 3
    finally:
        service.shutdown()


async def test_a_superseded_request_leaves_no_warm_up_behind_its_successor():
    """The newer request evaluates its own prompt: a warm-up of the older one would only evict it."""
    engine = EvaluatingEngine()
    service = _service(engine)
    try:
        older = asyncio.ensure_future(service.complete("doc", REQUEST))
        await asyncio.get_running_loop().run_in_executor(None, wait_for, engine.generating)
        engine.stop_reason = "eot"
        newer = await service.complete("doc", REQUEST)
        assert (await older).reason == "superseded" and newer.reason == "eot"
        service.wait_ready(timeout=10)  # whatever was queued on the worker has run
        assert engine.warmed == [] and service.stats["warm_ups"] == 0
    finally:
        service.shutdown()


async def test_with_reuse_off_nothing_is_warmed():
    engine = EvaluatingEngine()
    service = _service(engine, reuse=False)
    try:
        await _cancel_while_evaluating(service, engine)
        service.wait_ready(timeout=10)
        assert engine.warmed == []
    finally:
        service.shutdown()


@pytest.mark.parametrize(
    "reason,generated,warms",
    [("deadline", 0, True), ("cancelled", 0, True), ("deadline", 3, False), ("eot", 0, False)],
    ids=["out of time in the prompt", "cancelled in the prompt", "out of time while writing", "ended"],
)
def test_the_pipeline_offers_a_warm_up_only_when_the_prompt_was_not_evaluated(reason, generated, warms):
    class Stopping(EvaluatingEngine):
        def generate(self, request: GenerationRequest) -> Generation:
            return Generation("", reason, prompt_tokens=40, evaluated_tokens=8, generated_tokens=generated)

    engine = Stopping()
    completion = complete(REQUEST, Settings(workspace_context=False), engine)
    assert (completion.warm_up is not None) == warms
    if completion.warm_up is not None:
        assert completion.warm_up.before_line
        warmed = "".join(engine.template.pieces(completion.warm_up.prompt, before_line=True))
        assert warmed.endswith("values = [1, 2, 3]\n")
        assert completion.warm_up.max_tokens == 0
