"""The embedded engine with the real default model (its adapter ends its middles) at the token cap: a
middle that ends on exactly its last allowed token is whole (the model is asked once more, for its end
only), and one the cap cuts short is not. No answer is compared to a fixed string: whatever the model
writes here, written again under a cap of its own length, must end the same way."""

from __future__ import annotations

import pytest

from fim_lsp.config import Settings
from fim_lsp.engine.base import GenerationRequest
from fim_lsp.engine.llama_cpp import LlamaCppEngine
from fim_lsp.prompt import FimPrompt
from tests.e2e.conftest import DEFAULT_MODEL

pytestmark = pytest.mark.model

ONE_LINE_HOLE = FimPrompt("def add(a, b):\n    return ", "\n\n\nprint(add(1, 2))\n", "psm")


def test_a_middle_that_ends_on_the_caps_last_token_is_whole() -> None:
    engine = LlamaCppEngine.from_settings(Settings(model=DEFAULT_MODEL))
    try:
        free = engine.generate(GenerationRequest(prompt=ONE_LINE_HOLE, max_tokens=32))
        assert free.stop_reason == "eot" and free.generated_tokens >= 2, free
        cap = free.generated_tokens
        exact = engine.generate(GenerationRequest(prompt=ONE_LINE_HOLE, max_tokens=cap))
        assert (exact.text, exact.stop_reason, exact.generated_tokens) == (free.text, "eot", cap)
        short = engine.generate(GenerationRequest(prompt=ONE_LINE_HOLE, max_tokens=cap - 1))
        assert (short.stop_reason, short.generated_tokens) == ("length", cap - 1)
        assert free.text.startswith(short.text) and short.text != free.text
    finally:
        engine.close()
