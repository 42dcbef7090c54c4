"""Several candidates per answer, around the pipeline that computes them: what the service remembers of
a place answers them all again, and typed-through answers and the prefetch follow whichever candidate
the editor shows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fim_lsp import pipeline
from fim_lsp.cache import ShownCompletion, typed_through_candidates
from fim_lsp.completion import Completion, CompletionRequest, Reason, Shape
from fim_lsp.config import Settings
from fim_lsp.engine.base import CancelToken, Engine, Generation
from fim_lsp.prompt import template_for_family
from fim_lsp.service import CompletionService

SHOWN = ShownCompletion(
    before="total = ", after="\n", text="sum(values)", alternatives=("sum(v for v in values)", "len(values)")
)


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        pytest.param("s", ("um(values)", "um(v for v in values)"), id="two-begin-so"),
        pytest.param("sum(v", ("alues)", " for v in values)"), id="both-still"),
        pytest.param("sum(va", ("lues)",), id="one-left"),
        pytest.param("l", (), id="not-the-one-on-screen"),
        pytest.param("sum(values)", (), id="all-of-it-typed"),
    ],
)
def test_typed_through_keeps_the_candidates_that_agree(typed: str, expected: tuple[str, ...]) -> None:
    text = "total = " + typed + "\n"
    assert typed_through_candidates(SHOWN, text, len("total = " + typed)) == expected


def test_showing_puts_the_candidate_on_screen_first() -> None:
    second = SHOWN.showing("len(values)")
    assert second is not None
    assert second.candidates == ("len(values)", "sum(values)", "sum(v for v in values)")
    assert typed_through_candidates(second, "total = l\n", len("total = l")) == ("en(values)",)
    # An item of an earlier answer to the same suggestion holds what was typed since, then the candidate.
    assert SHOWN.showing("xlen(values)") == second
    assert SHOWN.showing("min(values)") is None


Requests = list[CompletionRequest]
TEXT = "values = [3, 1, 2]\ntotal = \nprint(total)\n"
OFFSET = TEXT.index("total = ") + len("total = ")
CANDIDATES = ("sum(values)", "len(values)", "max(values)")


class NoEngine(Engine):
    """Loaded and ready; the pipeline below never calls it."""

    def __init__(self) -> None:
        self.template = template_for_family("qwen2.5-coder")

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def generate(self, request):  # type: ignore[no-untyped-def]
        raise AssertionError("the scripted pipeline does not generate")


@pytest.fixture
def scripted_pipeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[CompletionRequest]]:
    """`pipeline.complete` answering CANDIDATES at the empty `total = ` (the first alone unless asked for
    alternatives), and `\\nmean = 1` after any of them (what accepting it leads to); the requests it
    got, in order."""
    requests: list[CompletionRequest] = []

    def complete(
        request: CompletionRequest,
        settings: Settings,
        engine: Engine,
        *,
        cancel: CancelToken | None = None,
        deadline: float | None = None,
        alternatives: int = 0,
    ) -> Completion:
        requests.append(request)
        generation = Generation("", "eot", prompt_tokens=10, evaluated_tokens=10, generated_tokens=3)
        if request.text == TEXT:
            others = CANDIDATES[1 : 1 + alternatives]
            return Completion(CANDIDATES[0], Shape.LINE, Reason.EOT, generation, alternatives=others)
        return Completion("\nmean = 1", Shape.BLOCK, Reason.EOT, generation)

    monkeypatch.setattr(pipeline, "complete", complete)
    yield requests


async def started(settings: Settings) -> CompletionService:
    service = CompletionService(settings, engine_factory=lambda _settings: NoEngine())
    service.start()
    assert service.wait_ready(timeout=30).state == "ready"
    return service


async def test_a_place_remembered_answers_every_candidate(scripted_pipeline: Requests) -> None:
    service = await started(Settings(workspace_context=False, prefetch=False))
    try:
        first = await service.complete("doc", CompletionRequest(TEXT, OFFSET, "python"), alternatives=True)
        assert (first.text, first.alternatives) == (CANDIDATES[0], CANDIDATES[1:])
        again = await service.complete("doc", CompletionRequest(TEXT, OFFSET, "python"), alternatives=True)
        assert (again.reason, again.text, again.alternatives) == ("cached", CANDIDATES[0], CANDIDATES[1:])
        # Typing elsewhere and coming back (an automatic request): what is remembered of the place.
        back = await service.complete("doc", CompletionRequest(TEXT, OFFSET, "python"))
        assert (back.reason, back.text, back.alternatives) == ("cached", CANDIDATES[0], CANDIDATES[1:])
        assert len(scripted_pipeline) == 1
    finally:
        service.shutdown()


async def test_typing_through_follows_the_candidate_on_screen(scripted_pipeline: Requests) -> None:
    service = await started(Settings(workspace_context=False, prefetch=False))
    try:
        await service.complete("doc", CompletionRequest(TEXT, OFFSET, "python"), alternatives=True)
        typed = TEXT[:OFFSET] + "m" + TEXT[OFFSET:]
        before = await service.complete("doc", CompletionRequest(typed, OFFSET + 1, "python"))
        assert before.reason != "typed-through"  # `m` begins no candidate on screen: the model is asked
        await service.complete(
            "doc", CompletionRequest(TEXT, OFFSET, "python"), alternatives=True
        )  # back, from the cache
        assert service.show("doc", "max(values)")
        # Asked again at the same place (a re-trigger, an editor fetching more to cycle through): the
        # cache answers with the candidate on screen first.
        again = await service.complete("doc", CompletionRequest(TEXT, OFFSET, "python"), alternatives=True)
        assert (again.reason, again.text, again.alternatives) == ("cached", "max(values)", CANDIDATES[:2])
        answer = await service.complete("doc", CompletionRequest(typed, OFFSET + 1, "python"))
        assert (answer.reason, answer.text, answer.alternatives) == ("typed-through", "ax(values)", ())
        assert not service.show("doc", "min(values)"), "not a candidate of the last answer"
    finally:
        service.shutdown()


async def test_the_prefetch_follows_the_candidate_on_screen(scripted_pipeline: Requests) -> None:
    service = await started(Settings(workspace_context=False, prefetch=True))
    try:
        await service.complete("doc", CompletionRequest(TEXT, OFFSET, "python"), alternatives=True)
        await service.prefetches_done()
        assert scripted_pipeline[-1].text == TEXT[:OFFSET] + "sum(values)" + TEXT[OFFSET:]
        assert service.show("doc", "len(values)")
        await service.prefetches_done()
        accepted = TEXT[:OFFSET] + "len(values)" + TEXT[OFFSET:]
        assert scripted_pipeline[-1].text == accepted
        calls = len(scripted_pipeline)
        after = CompletionRequest(accepted, OFFSET + len("len(values)"), "python")
        answer = await service.complete("doc", after)
        assert (answer.reason, answer.text) == ("cached", "\nmean = 1")
        assert len(scripted_pipeline) == calls, "accepting the candidate on screen needs no pipeline run"
    finally:
        service.shutdown()
