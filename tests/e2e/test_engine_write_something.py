"""The embedded engine with the real small model: a request that asks for text (`write_something`, as the
pipeline's do) is not answered with the model's end-of-text before anything but spaces; the raw
benchmark's requests, which do not ask, take that end as it comes.

The prompt is one whose first token, as the model's own logits say on this build, ends the middle: the
situation the 1.5B meets in SPM where it saw no hole to fill (HumanEval random-span 13 and 39). Which
prompt that is depends on the CPU and the llama.cpp build (the margins are small), so the test reads the
logits rather than trusting a measurement made elsewhere."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fim_lsp.config import Settings
from fim_lsp.engine.base import GenerationRequest
from fim_lsp.engine.llama_cpp import LlamaCppEngine
from tests.e2e.conftest import FAST_MODEL

pytestmark = pytest.mark.model

#: SPM prompts of nearly empty files, where the 0.5B's first choice is often end-of-text.
CANDIDATES = (
    "<|fim_suffix|>\n<|fim_prefix|><|fim_middle|>",
    "<|fim_suffix|>\n\n\n<|fim_prefix|><|fim_middle|>",
    "<|fim_suffix|>\n\n<|fim_prefix|><|fim_middle|>",
    "<|fim_suffix|>\n\n\n\n<|fim_prefix|><|fim_middle|>",
)


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaCppEngine]:
    loaded = LlamaCppEngine.from_settings(Settings(model=FAST_MODEL))
    yield loaded
    loaded.close()


def first_choice_ends(engine: LlamaCppEngine, prompt: str) -> bool:
    """Whether the model's most likely first token for `prompt` ends the middle, read from its logits."""
    import llama_cpp
    import numpy as np

    llama = engine.llama
    llama.reset()
    llama.eval(engine.tokenize(prompt))
    vocabulary = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(llama.model))
    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llama.ctx, -1), shape=(vocabulary,))
    return engine._ends_middle(int(np.argmax(logits)))


@pytest.fixture(scope="module")
def ends_at_once(engine: LlamaCppEngine) -> str:
    """A prompt the model would end at once."""
    for prompt in CANDIDATES:
        if first_choice_ends(engine, prompt):
            return prompt
    pytest.skip("on this build the model writes something first for every candidate prompt")


def test_without_asking_the_models_end_of_text_is_taken(engine: LlamaCppEngine, ends_at_once: str) -> None:
    generation = engine.generate(GenerationRequest(prompt=ends_at_once, max_tokens=12))
    assert (generation.text, generation.stop_reason, generation.generated_tokens) == ("", "eot", 0)


def test_a_request_that_asks_for_text_gets_the_models_next_choice(
    engine: LlamaCppEngine, ends_at_once: str
) -> None:
    asking = GenerationRequest(prompt=ends_at_once, max_tokens=12, write_something=True)
    generation = engine.generate(asking)
    # The end was not taken: a token was written in its place (what follows is the model's choice).
    assert generation.text and generation.generated_tokens > 0
    # The same prompt asked again writes the same: greedy, and the restart left the cache consistent.
    again = engine.generate(GenerationRequest(prompt=ends_at_once, max_tokens=12, write_something=True))
    assert again.text == generation.text
    # And the plain request after it still ends at once (nothing of the forced text stayed in the way).
    plain = engine.generate(GenerationRequest(prompt=ends_at_once, max_tokens=12))
    assert plain.text == ""
