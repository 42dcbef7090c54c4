"""The completion service when its engine fails half-way through a generation: that request gets no
answer (never an exception the editor would show), the status says what happened once, and the next
request is answered."""

from __future__ import annotations

from fim_lsp.completion import CompletionRequest
from fim_lsp.config import Settings
from fim_lsp.engine.base import Engine, Generation, GenerationRequest
from fim_lsp.prompt import template_for_family
from fim_lsp.service import CompletionService, Status

TEXT = "def double(x):\n    return \n"
OFFSET = TEXT.index("return ") + len("return ")


class FlakyEngine(Engine):
    """Writes `x * 2`, or fails after its first token while `failures` lasts."""

    def __init__(self, failures: int) -> None:
        self.template = template_for_family("qwen2.5-coder")
        self.failures = failures
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def generate(self, request: GenerationRequest) -> Generation:
        self.calls += 1
        if request.on_text is not None:
            request.on_text("x")
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("llama_decode returned -3")
        return Generation("x * 2", "eot", prompt_tokens=10, evaluated_tokens=10, generated_tokens=3)


async def test_an_engine_failing_mid_generation_costs_one_answer_and_one_status():
    engine = FlakyEngine(failures=2)
    statuses: list[Status] = []
    service = CompletionService(
        Settings(workspace_context=False), engine_factory=lambda _settings: engine, on_status=statuses.append
    )
    service.start()
    assert service.wait_ready(timeout=30).state == "ready"
    request = CompletionRequest(TEXT, OFFSET, "python", "file:///work/double.py")
    try:
        for _ in range(2):  # two keystrokes while the engine fails
            completion = await service.complete("doc", request)
            assert (completion.text, completion.reason) == (None, "engine error")
        errors = [status for status in statuses if status.state == "error"]
        assert len(errors) == 1
        assert "RuntimeError: llama_decode returned -3" in errors[0].message
        assert errors[0].error is not None and not errors[0].error.user_actionable  # no pop-up

        completion = await service.complete("doc", request)
        assert completion.text == "x * 2"
        assert statuses[-1].state == "ready"
        assert engine.calls == 3  # a failed answer is not cached
    finally:
        service.shutdown()
