"""The embedded engine with the real small model: token healing (`heal_word_end`, which the pipeline asks
for when the cursor is right after a word character in an SPM prompt).

Each prompt ends where a word is half typed. The tokenizer cut the typed part alone (` o`, ` b`, ` js`),
and the 0.5B, shown that token, writes the rest as if a token boundary were there; healed, the prompt ends
before that token and the first token written must start with its text. Both answers were measured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fim_lsp.config import Settings
from fim_lsp.engine.base import GenerationRequest
from fim_lsp.engine.llama_cpp import LlamaCppEngine
from fim_lsp.prompt import FimPrompt
from tests.e2e.conftest import FAST_MODEL

pytestmark = pytest.mark.model


def spm(prefix: str, suffix: str) -> FimPrompt:
    return FimPrompt(prefix, suffix, "spm")


BELOW_ZERO = spm(
    "from typing import List\n\n\ndef below_zero(operations: List[int]) -> bool:\n"
    "    balance = 0\n    for op in o",
    "\n        balance += op\n        if balance < 0:\n            return True\n    return False\n",
)
TO_BINARY = spm('def decimal_to_binary(decimal):\n    return "db" + b', '"db"\n')
LOAD_SETTINGS = spm(
    "import json\n\n\ndef load_settings(path):\n    with open(path) as handle:\n        settings = js",
    "\n    return settings\n",
)


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaCppEngine]:
    loaded = LlamaCppEngine.from_settings(Settings(model=FAST_MODEL))
    yield loaded
    loaded.close()


@pytest.mark.parametrize(
    ("prompt", "unhealed_start", "healed_start"),
    [
        pytest.param(BELOW_ZERO, "peations:", "perations:", id="python-loop-over-a-parameter"),
        pytest.param(TO_BINARY, "(decimal)", "in(decimal)", id="python-call-of-a-builtin"),
        pytest.param(LOAD_SETTINGS, ".load(", "on.load(handle)", id="python-module-attribute"),
    ],
)
def test_a_half_typed_word_is_finished_as_one_word(
    engine: LlamaCppEngine, prompt: str, unhealed_start: str, healed_start: str
) -> None:
    unhealed = engine.generate(GenerationRequest(prompt=prompt, max_tokens=8))
    healed = engine.generate(GenerationRequest(prompt=prompt, max_tokens=8, heal_word_end=True))
    assert unhealed.text.startswith(unhealed_start)
    assert healed.text.startswith(healed_start)
    # One prompt token fewer: the typed part of the word came back as the start of what was written.
    assert healed.prompt_tokens == unhealed.prompt_tokens - 1
    # Asked again, the same: greedy, and the constrained first token left the cache consistent.
    again = engine.generate(GenerationRequest(prompt=prompt, max_tokens=8, heal_word_end=True))
    assert again.text == healed.text


def test_a_prompt_that_does_not_end_in_a_word_is_left_as_it_is(engine: LlamaCppEngine) -> None:
    prompt = spm("import json\n\n\ndef load_settings(path):\n    with open(", "\n    return settings\n")
    plain = engine.generate(GenerationRequest(prompt=prompt, max_tokens=8))
    asked = engine.generate(GenerationRequest(prompt=prompt, max_tokens=8, heal_word_end=True))
    assert (asked.text, asked.prompt_tokens) == (plain.text, plain.prompt_tokens)
    assert plain.text.lstrip().startswith("path")
