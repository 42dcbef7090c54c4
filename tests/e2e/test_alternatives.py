"""Alternatives through the protocol with the real small model: typing (an automatic request) gets one
middle; asking on purpose at the same place (an invoked request, as the next-suggestion command sends)
gets the same first middle and other, distinct ones after it."""

from __future__ import annotations

import pytest

from fim_lsp.config import Settings
from fim_lsp.engine.base import GenerationRequest
from fim_lsp.engine.llama_cpp import LlamaCppEngine
from fim_lsp.prompt import FimPrompt
from tests.e2e.conftest import FAST_MODEL

pytestmark = pytest.mark.model

SOURCE = (
    'def average(xs):\n    """The mean of xs, 0 when there are none."""\n'
    "    if not xs:\n        return 0\n    return \n\n\nprint(average([1, 2]))\n"
)
ROW, COLUMN = 4, len("    return ")


async def test_an_invoked_request_offers_alternatives_after_the_same_first_middle(start_editor):
    settings = {"model": FAST_MODEL, "workspaceContext": False, "prefetch": False, "alternatives": 3}
    editor = await start_editor(settings)
    await editor.wait_until("ready")
    uri = "file:///work/average.py"
    editor.open(uri, SOURCE)
    automatic = await editor.inline(uri, ROW, COLUMN)
    assert len(automatic) == 1 and automatic[0].insert_text
    invoked = await editor.inline(uri, ROW, COLUMN, invoked=True)
    texts = [item.insert_text for item in invoked]
    assert texts[0] == automatic[0].insert_text
    assert 2 <= len(texts) <= 3
    assert len(set(texts)) == len(texts), texts
    # Asked again, the same list, from what the server remembers of this place.
    again = await editor.inline(uri, ROW, COLUMN, invoked=True)
    assert [item.insert_text for item in again] == texts


def test_the_first_middle_is_the_same_with_and_without_alternatives():
    engine = LlamaCppEngine.from_settings(Settings(model=FAST_MODEL))
    try:
        prompt = FimPrompt(
            SOURCE[: SOURCE.index("return \n") + 7], SOURCE[SOURCE.index("return \n") + 7 :], "psm"
        )
        alone = engine.generate(GenerationRequest(prompt, max_tokens=16))
        with_others = engine.generate(GenerationRequest(prompt, max_tokens=16, alternatives=3))
        assert with_others.text == alone.text
        assert len(with_others.alternatives) == 3
        firsts = {engine.tokenize(a.text)[0] for a in with_others.alternatives if a.text}
        assert engine.tokenize(alone.text)[0] not in firsts  # each started from another first token
    finally:
        engine.close()
