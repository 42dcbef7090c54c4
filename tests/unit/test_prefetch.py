"""Prefetch: after an answer is shown, the answer for the document as it will be once that answer is
accepted is computed in the background, so accepting it costs no model time; a newer request stops it."""

from __future__ import annotations

import asyncio
import threading
import time

from fim_lsp.cache import cache_key
from fim_lsp.completion import CompletionRequest
from fim_lsp.config import Settings
from fim_lsp.engine.base import Engine, Generation, GenerationRequest
from fim_lsp.prompt import template_for_family
from fim_lsp.service import CompletionService

TEXT = "values = [1, 2, 3]\ntotal = \nprint(total)\n"
OFFSET = TEXT.index("total = ") + len("total = ")
FIRST = "sum(values)"
ACCEPTED = TEXT[:OFFSET] + FIRST + TEXT[OFFSET:]


class ScriptedEngine(Engine):
    """Writes `sum(values)` where the line is empty, a second statement once it is there, and closes a
    `len(` call. With `hold_second`, the second statement's generation runs until it is cancelled."""

    def __init__(self, hold_second: bool = False) -> None:
        self.template = template_for_family("qwen2.5-coder")
        self.prompts: list[str] = []
        self.hold_second = hold_second
        self.second_started = threading.Event()
        self.stopped = 0

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def generate(self, request: GenerationRequest) -> Generation:
        prompt = self.template.render(request.prompt)
        self.prompts.append(prompt)
        if "len(" in prompt:
            return Generation("values)", "eot", prompt_tokens=20, evaluated_tokens=2, generated_tokens=2)
        if FIRST not in prompt:
            return Generation(FIRST, "eot", prompt_tokens=20, evaluated_tokens=20, generated_tokens=3)
        self.second_started.set()
        if self.hold_second:
            deadline = time.monotonic() + 30
            while not request.cancel.cancelled and time.monotonic() < deadline:
                time.sleep(0.005)  # as a model would, between tokens
            self.stopped += request.cancel.cancelled
            return Generation("", "cancelled", prompt_tokens=20, evaluated_tokens=4, generated_tokens=0)
        return Generation(
            "\nmean = total / len(values)\n", "eot", prompt_tokens=24, evaluated_tokens=4, generated_tokens=9
        )


def _service(engine: Engine, prefetch: bool) -> CompletionService:
    service = CompletionService(
        Settings(workspace_context=False, prefetch=prefetch), engine_factory=lambda _settings: engine
    )
    service.start()
    assert service.wait_ready(timeout=30).state == "ready"
    return service


async def test_accepting_an_answer_is_answered_from_the_prefetch():
    engine = ScriptedEngine()
    service = _service(engine, prefetch=True)
    try:
        shown = await service.complete("doc", CompletionRequest(TEXT, OFFSET, "python", "/w/stats.py"))
        assert shown.text == FIRST
        await service.prefetches_done()
        assert len(engine.prompts) == 2 and FIRST in engine.prompts[1]
        assert service.stats["prefetched"] == 1 and service.stats["prefetch_evaluated_tokens"] == 4

        accepted = await service.complete(
            "doc", CompletionRequest(ACCEPTED, OFFSET + len(FIRST), "python", "/w/stats.py")
        )
        assert accepted.reason == "cached"
        assert accepted.text is not None and "mean = total / len(values)" in accepted.text
        assert len(engine.prompts) == 2  # no model time for the accepted document
        assert service.stats["evaluated_tokens"] == 20  # the prefetch is counted apart
    finally:
        service.shutdown()


async def test_a_newer_request_stops_the_prefetch():
    engine = ScriptedEngine(hold_second=True)
    service = _service(engine, prefetch=True)
    try:
        await service.complete("doc", CompletionRequest(TEXT, OFFSET, "python", "/w/stats.py"))
        assert await asyncio.to_thread(engine.second_started.wait, 30)  # the prefetch is generating
        typed_on = TEXT[:OFFSET] + "len(" + TEXT[OFFSET:]
        # The user typed something else: the newer request stops the prefetch and is answered.
        answer = await service.complete(
            "doc", CompletionRequest(typed_on, OFFSET + 4, "python", "/w/stats.py")
        )
        assert (answer.reason, answer.text) == ("eot", "values)")
        assert engine.stopped == 1
        await service.prefetches_done()
        # Nothing was cached from the stopped prefetch.
        assert cache_key(ACCEPTED, OFFSET + len(FIRST), "python", service.settings) not in service.cache
    finally:
        service.shutdown()


async def test_a_request_for_another_document_stops_the_prefetch():
    """The model has one worker: a prefetch for the document left behind must not make the one being
    edited wait for it."""
    engine = ScriptedEngine(hold_second=True)
    service = _service(engine, prefetch=True)
    try:
        await service.complete("doc", CompletionRequest(TEXT, OFFSET, "python", "/w/stats.py"))
        assert await asyncio.to_thread(engine.second_started.wait, 30)  # the prefetch is generating
        other = "items = []\ncount = len(\n"
        answer = await service.complete(
            "other", CompletionRequest(other, other.index("len(") + 4, "python", "/w/other.py")
        )
        assert (answer.reason, answer.text) == ("eot", "values)")
        assert engine.stopped == 1
    finally:
        service.shutdown()


async def test_typing_the_suggestion_does_not_stop_the_prefetch():
    """Typed-through answers need no model: the user typing the suggestion's first characters is on the
    way to the very document the prefetch computes the answer for."""
    engine = ScriptedEngine(hold_second=True)
    service = _service(engine, prefetch=True)
    try:
        await service.complete("doc", CompletionRequest(TEXT, OFFSET, "python", "/w/stats.py"))
        assert await asyncio.to_thread(engine.second_started.wait, 30)  # the prefetch is generating
        typed = TEXT[:OFFSET] + FIRST[:3] + TEXT[OFFSET:]
        answer = await service.complete("doc", CompletionRequest(typed, OFFSET + 3, "python", "/w/stats.py"))
        assert (answer.reason, answer.text) == ("typed-through", FIRST[3:])
        await asyncio.sleep(0.05)
        assert engine.stopped == 0 and service.stats["prefetched"] == 0, "the prefetch runs on"
    finally:
        service.shutdown()
        await service.prefetches_done()
    assert engine.stopped == 1, "stopped when the server shut down"


async def test_no_prefetch_when_the_setting_is_off():
    engine = ScriptedEngine()
    service = _service(engine, prefetch=False)
    try:
        await service.complete("doc", CompletionRequest(TEXT, OFFSET, "python", "/w/stats.py"))
        await service.prefetches_done()
        assert len(engine.prompts) == 1
    finally:
        service.shutdown()
