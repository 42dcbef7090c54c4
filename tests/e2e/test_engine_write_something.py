"""The embedded engine with the real small model: a request that asks for text (`write_something`, as the
pipeline's do) is not answered with the model's end-of-text before anything but spaces; the raw
benchmark's requests, which do not ask, take that end as it comes.

The prompt is an SPM prompt whose hole is already filled (a whole function before the cursor, its call
after): the 0.5B's first choice there is end-of-text by a wide margin (p = 0.93 measured), the situation
the 1.5B meets in SPM where it saw no hole to fill (HumanEval random-span 13 and 39)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fim_lsp.config import Settings
from fim_lsp.engine.base import GenerationRequest
from fim_lsp.engine.llama_cpp import LlamaCppEngine
from fim_lsp.prompt import FimPrompt
from tests.e2e.conftest import FAST_MODEL

pytestmark = pytest.mark.model

FILLED_HOLE_SPM = FimPrompt("def add(a, b):\n    return a + b\n", "\n\nprint(add(1, 2))\n", "spm")


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaCppEngine]:
    loaded = LlamaCppEngine.from_settings(Settings(model=FAST_MODEL))
    yield loaded
    loaded.close()


def test_without_asking_the_models_end_of_text_is_taken(engine: LlamaCppEngine) -> None:
    generation = engine.generate(GenerationRequest(prompt=FILLED_HOLE_SPM, max_tokens=12))
    assert (generation.text, generation.stop_reason, generation.generated_tokens) == ("", "eot", 0)


def test_a_request_that_asks_for_text_gets_the_models_next_choice(engine: LlamaCppEngine) -> None:
    asking = GenerationRequest(prompt=FILLED_HOLE_SPM, max_tokens=12, write_something=True)
    generation = engine.generate(asking)
    assert generation.text.strip()
    assert generation.generated_tokens > 0
    # The same prompt asked again writes the same: greedy, and the restart left the cache consistent.
    again = engine.generate(GenerationRequest(prompt=FILLED_HOLE_SPM, max_tokens=12, write_something=True))
    assert again.text == generation.text
    # And the plain request after it still ends at once (nothing of the forced text stayed in the way).
    plain = engine.generate(GenerationRequest(prompt=FILLED_HOLE_SPM, max_tokens=12))
    assert plain.text == ""
