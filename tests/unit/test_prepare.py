"""Work done before it is asked for: the prompt of a place the user just typed at is evaluated while the
editor waits out its debounce (`CompletionService.prepare`), and after an answer the rest of its window
is evaluated in the file's order (`pipeline.stream`)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

from fim_lsp import pipeline
from fim_lsp.completion import CompletionRequest, Shape
from fim_lsp.config import Settings
from fim_lsp.engine.base import Engine, Generation, GenerationRequest
from fim_lsp.prompt import template_for_family
from fim_lsp.service import CompletionService

TEXT = "values = [1, 2, 3]\ntotal = \nprint(total)\n"
OFFSET = TEXT.index("total = ") + len("total = ")
REQUEST = CompletionRequest(TEXT, OFFSET, "python", "/w/stats.py")


class RecordingEngine(Engine):
    """Writes `sum(values)`; records every warm-up's prompt, each held until cancelled with `hold`."""

    def __init__(self, hold: bool = False) -> None:
        self.template = template_for_family("qwen2.5-coder")
        self.hold = hold
        self.warmed: list[GenerationRequest] = []
        self.warming = threading.Event()
        self.stopped = threading.Event()

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def generate(self, request: GenerationRequest) -> Generation:
        return Generation("sum(values)", "eot", prompt_tokens=20, evaluated_tokens=20, generated_tokens=3)

    def warm(self, request: GenerationRequest) -> int:
        self.warmed.append(request)
        self.warming.set()
        if self.hold:
            deadline = time.monotonic() + 30
            while not request.cancel.cancelled and time.monotonic() < deadline:
                time.sleep(0.005)
            self.stopped.set()
            return 5
        return 40


def _service(engine: Engine, **settings: object) -> CompletionService:
    service = CompletionService(
        Settings(workspace_context=False, **settings),  # type: ignore[arg-type]
        engine_factory=lambda _settings: engine,
    )
    service.start()
    assert service.wait_ready(timeout=30).state == "ready"
    return service


def test_a_keystroke_evaluates_the_whole_prompt_a_request_there_would_send():
    engine = RecordingEngine()
    service = _service(engine, prefetch=False)
    try:
        service.prepare("doc", REQUEST)
        service.wait_ready(timeout=10)
        (warmed,) = engine.warmed
        planned = pipeline.plan(REQUEST, service.settings, engine)
        assert isinstance(planned, pipeline.Plan)
        assert warmed.prompt == planned.prompt and not warmed.before_line
        assert (service.stats["prepared"], service.stats["prepared_evaluated_tokens"]) == (1, 40)
    finally:
        service.shutdown()


async def test_the_request_that_follows_stops_the_preparation_and_runs():
    engine = RecordingEngine(hold=True)
    service = _service(engine, prefetch=False)
    try:
        service.prepare("doc", REQUEST)
        await asyncio.get_running_loop().run_in_executor(None, engine.warming.wait, 10)
        completion = await service.complete("doc", REQUEST)
        assert engine.stopped.is_set()
        assert completion.text == "sum(values)"
    finally:
        service.shutdown()


def test_only_the_newest_keystroke_is_prepared_when_they_queue_up():
    engine = RecordingEngine()
    service = _service(engine, prefetch=False)
    try:
        blocker = threading.Event()
        service._worker.submit(blocker.wait, 10)  # the worker is busy: both keystrokes wait in line
        older = CompletionRequest(TEXT[: OFFSET - 1] + TEXT[OFFSET:], OFFSET - 1, "python", "/w/stats.py")
        service.prepare("doc", older)
        service.prepare("doc", REQUEST)
        blocker.set()
        service.wait_ready(timeout=10)
        planned = pipeline.plan(REQUEST, service.settings, engine)
        assert isinstance(planned, pipeline.Plan)
        assert [w.prompt for w in engine.warmed] == [planned.prompt]
    finally:
        service.shutdown()


def test_with_reuse_off_nothing_is_prepared():
    engine = RecordingEngine()
    service = _service(engine, reuse=False)
    try:
        service.prepare("doc", REQUEST)
        service.wait_ready(timeout=10)
        assert engine.warmed == []
    finally:
        service.shutdown()


async def test_after_an_answer_its_window_is_evaluated_in_the_files_order():
    engine = RecordingEngine()
    service = _service(engine, prefetch=False, fim_order="psm")
    try:
        completion = await service.complete("doc", REQUEST)
        assert completion.text == "sum(values)"
        service.wait_ready(timeout=10)
        (streamed,) = engine.warmed
        # The prefix, then the suffix's text as more prefix: the file from the window's start on.
        assert streamed.prompt.prefix == TEXT and streamed.prompt.suffix == ""
        assert service.stats["streamed"] == 1
    finally:
        service.shutdown()


class SlowEngine(RecordingEngine):
    """Evaluates 100 prompt tokens a second and writes 20; holds nothing of any prompt."""

    def prompt_rate(self) -> float:
        return 100.0

    def write_rate(self) -> float:
        return 20.0

    def count_tokens(self, text: str) -> int:
        return len(text) // 3 + 1

    def uncached_tokens(self, prompt) -> int:
        return self.count_tokens(self.template.render(prompt))


LONG = "".join(f"value_{n} = compute({n})\n" for n in range(300)) + "total = \nprint(total)\n"
LONG_OFFSET = LONG.index("total = ") + len("total = ")


def test_a_request_while_typing_gets_a_prompt_that_fits_the_typing_latency():
    engine = SlowEngine()
    request = CompletionRequest(LONG, LONG_OFFSET, "python", "/w/long.py")
    settings = Settings(workspace_context=False)
    whole = pipeline.plan(request, settings, engine)
    typing = pipeline.plan(replace(request, typing=True), settings, engine)
    assert isinstance(whole, pipeline.Plan) and isinstance(typing, pipeline.Plan)
    assert not whole.shortened and typing.shortened
    # 100 tokens a second for 2 s less a line's writing (12 tokens at 20 a second): 140 tokens.
    assert engine.uncached_tokens(typing.prompt) <= 160 < engine.uncached_tokens(whole.prompt)
    assert typing.prompt.prefix.endswith("total =") and "value_299" in typing.prompt.prefix


def test_a_shortened_prompt_is_answered_with_a_line():
    """A block takes seconds more to write than a line; the block comes from the whole prompt."""
    text = LONG + "\n\ndef report(values):\n    \n"
    request = CompletionRequest(text, len(text) - 1, "python", "/w/long.py")
    settings = Settings(workspace_context=False)
    whole = pipeline.plan(request, settings, SlowEngine())
    typing = pipeline.plan(replace(request, typing=True), settings, SlowEngine())
    assert isinstance(whole, pipeline.Plan) and isinstance(typing, pipeline.Plan)
    assert whole.shape is Shape.BLOCK and typing.shortened and typing.shape is Shape.LINE


def test_a_prompt_the_cache_mostly_holds_is_not_cut_while_typing():
    class Warm(SlowEngine):
        def uncached_tokens(self, prompt) -> int:
            return 5

    request = CompletionRequest(LONG, LONG_OFFSET, "python", "/w/long.py", typing=True)
    planned = pipeline.plan(request, Settings(workspace_context=False), Warm())
    assert isinstance(planned, pipeline.Plan) and not planned.shortened


def test_a_keystroke_at_a_new_place_prepares_the_prompt_cut_for_typing_then_the_whole_one():
    """The request after the keystroke will be cut short (the cache holds little of its whole prompt):
    that prompt is the one to have ready; the whole one follows, for the requests after it."""
    engine = SlowEngine()
    service = _service(engine, prefetch=False)
    try:
        request = CompletionRequest(LONG, LONG_OFFSET, "python", "/w/long.py")
        service.prepare("doc", request)
        service.wait_ready(timeout=10)
        short = pipeline.plan(replace(request, typing=True), service.settings, engine)
        whole = pipeline.plan(request, service.settings, engine)
        assert isinstance(short, pipeline.Plan) and isinstance(whole, pipeline.Plan) and short.shortened
        assert [w.prompt for w in engine.warmed] == [short.prompt, whole.prompt]
    finally:
        service.shutdown()


async def test_after_a_shortened_answer_the_whole_prompt_is_evaluated_and_the_answer_not_cached():
    engine = SlowEngine()
    service = _service(engine, prefetch=False)
    try:
        request = CompletionRequest(LONG, LONG_OFFSET, "python", "/w/long.py")
        service.prepare("doc", request)  # the keystroke; the request comes before the worker gets to it
        completion = await service.complete("doc", request)
        assert completion.plan is not None and completion.plan.shortened
        service.wait_ready(timeout=10)
        whole = pipeline.plan(request, service.settings, engine)
        assert isinstance(whole, pipeline.Plan)
        assert [w.prompt for w in engine.warmed] == [whole.prompt]  # after the answer
        assert len(service.cache) == 0
    finally:
        service.shutdown()


async def test_an_spm_prompt_has_no_window_evaluated_after_it():
    """An SPM prompt starts with the suffix: a window of the file in its order would serve no request."""
    engine = RecordingEngine()
    service = _service(engine, prefetch=False, fim_order="spm")
    try:
        await service.complete("doc", REQUEST)
        service.wait_ready(timeout=10)
        assert engine.warmed == [] and service.stats["streamed"] == 0
    finally:
        service.shutdown()


class HeldSlowEngine(SlowEngine):
    """A slow engine whose every warm-up runs until the test releases it or it is cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def warm(self, request: GenerationRequest) -> int:
        self.warmed.append(request)
        self.warming.set()
        while not request.cancel.cancelled and not self.release.wait(0.005):
            pass
        return 5


def _typed(request: CompletionRequest, text: str) -> CompletionRequest:
    """`request` after `text` is typed at its cursor."""
    offset = request.offset
    return replace(
        request, text=request.text[:offset] + text + request.text[offset:], offset=offset + len(text)
    )


NEW_PLACE = CompletionRequest(LONG, LONG_OFFSET, "python", "/w/long.py")


async def _started(engine: HeldSlowEngine) -> None:
    assert await asyncio.get_running_loop().run_in_executor(None, engine.warming.wait, 10)


async def test_a_keystroke_on_the_line_lets_its_shortened_prompt_finish_then_prepares_its_own():
    """The next key's prompt starts with the one cut short for typing: stopped, it would be evaluated
    again from its start at every key (the chunk in progress is lost), and never be ready."""
    engine = HeldSlowEngine()
    service = _service(engine, prefetch=False)
    try:
        service.prepare("doc", NEW_PLACE)
        await _started(engine)
        typed = _typed(NEW_PLACE, "s")
        service.prepare("doc", typed)
        await asyncio.sleep(0.05)
        assert not engine.warmed[0].cancel.cancelled
        engine.release.set()
        service.wait_ready(timeout=10)
        first = pipeline.plan(replace(NEW_PLACE, typing=True), service.settings, engine)
        short = pipeline.plan(replace(typed, typing=True), service.settings, engine)
        whole = pipeline.plan(typed, service.settings, engine)
        assert isinstance(first, pipeline.Plan) and first.shortened
        assert isinstance(short, pipeline.Plan) and isinstance(whole, pipeline.Plan)
        assert [w.prompt for w in engine.warmed] == [first.prompt, short.prompt, whole.prompt]
        assert not any(w.cancel.cancelled for w in engine.warmed)
    finally:
        service.shutdown()


async def test_a_request_on_the_line_waits_for_its_shortened_prompt():
    engine = HeldSlowEngine()
    service = _service(engine, prefetch=False)
    try:
        service.prepare("doc", NEW_PLACE)
        await _started(engine)
        asked = asyncio.ensure_future(service.complete("doc", NEW_PLACE))
        await asyncio.sleep(0.05)
        assert not engine.warmed[0].cancel.cancelled and not asked.done()
        engine.release.set()
        completion = await asked
        assert completion.text == "sum(values)" and completion.plan is not None and completion.plan.shortened
        assert not engine.warmed[0].cancel.cancelled
    finally:
        service.shutdown()


async def test_a_keystroke_or_request_on_another_line_stops_the_shortened_prompt():
    above = LONG.index("value_299")
    for act in ("keystroke", "request"):
        engine = HeldSlowEngine()
        service = _service(engine, prefetch=False)
        try:
            service.prepare("doc", NEW_PLACE)
            await _started(engine)
            elsewhere = replace(NEW_PLACE, offset=above)
            if act == "keystroke":
                service.prepare("doc", elsewhere)
                await asyncio.sleep(0.05)
            else:
                await service.complete("doc", elsewhere)
            assert engine.warmed[0].cancel.cancelled, act
        finally:
            service.shutdown()


class PrefetchHeldEngine(RecordingEngine):
    """Answers the first request at once; holds every later generation (the prefetch) until cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.generations: list[GenerationRequest] = []
        self.prefetching = threading.Event()

    def generate(self, request: GenerationRequest) -> Generation:
        self.generations.append(request)
        if len(self.generations) > 1:
            self.prefetching.set()
            deadline = time.monotonic() + 30
            while not request.cancel.cancelled and time.monotonic() < deadline:
                time.sleep(0.005)
        return super().generate(request)


async def test_a_keystroke_away_from_the_ghost_text_stops_the_prefetch_of_accepting_it():
    """The ghost text is gone from the screen, and the keystroke's own prompt would wait for the
    prefetch on the one worker. Typing along the ghost text keeps it."""
    for typed, stopped in (("su", False), ("x", True)):
        engine = PrefetchHeldEngine()
        service = _service(engine)
        try:
            assert (await service.complete("doc", REQUEST)).text == "sum(values)"
            assert await asyncio.get_running_loop().run_in_executor(None, engine.prefetching.wait, 10)
            service.prepare("doc", _typed(REQUEST, typed))
            await asyncio.sleep(0.05)
            assert engine.generations[1].cancel.cancelled is stopped, typed
        finally:
            service.shutdown()
