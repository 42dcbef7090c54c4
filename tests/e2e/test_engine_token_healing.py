"""The embedded engine with the real small model: token healing (`heal_word_end`, which the pipeline asks
for when the cursor is right after a word character in an SPM prompt).

Each prompt ends where a word is half typed. The tokenizer cut the typed part alone (` o`, ` b`, ` js`);
healed, the prompt ends before that token and the first token written must start with its text, so the
word goes on in that token. What the model writes after it is its own choice and differs between CPUs and
llama.cpp builds (unhealed, the 0.5B wrote `peations:` here and `"0b" + bin(decimal)[` on another CPU),
so only what healing guarantees is checked."""

from __future__ import annotations

import builtins
import re
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


def known_names(prompt: FimPrompt) -> set[str]:
    """The names a finished word may be: those of the prompt's code, but the half-typed one it ends with,
    and Python's builtins."""
    *words, _typed = re.findall(r"\w+", prompt.suffix + "\n" + prompt.prefix)
    return set(words) | set(dir(builtins))


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaCppEngine]:
    loaded = LlamaCppEngine.from_settings(Settings(model=FAST_MODEL))
    yield loaded
    loaded.close()


@pytest.mark.parametrize(
    ("prompt", "typed"),
    [
        pytest.param(BELOW_ZERO, " o", id="python-loop-over-a-parameter"),
        pytest.param(TO_BINARY, " b", id="python-call-of-a-builtin"),
        pytest.param(LOAD_SETTINGS, " js", id="python-module-attribute"),
    ],
)
def test_a_half_typed_word_is_finished_as_one_word(
    engine: LlamaCppEngine, prompt: FimPrompt, typed: str
) -> None:
    unhealed = engine.generate(GenerationRequest(prompt=prompt, max_tokens=8))
    healed = engine.generate(GenerationRequest(prompt=prompt, max_tokens=8, heal_word_end=True))
    # The prompt lost its last token, the typed part of the word, and nothing else.
    assert engine.prompt_tokens(prompt)[-1:] == engine.tokenize(typed)
    assert healed.prompt_tokens == unhealed.prompt_tokens - 1
    # The word is finished as one word: the typed part and what was written make a name the code can
    # mean (one of the file's or a builtin), not a word split at a token boundary (`o` + `peations`).
    word = typed.strip() + re.match(r"\w*", healed.text).group()
    assert word in known_names(prompt), (typed, healed.text)
    # Asked again, the same: greedy, and the constrained first token left the cache consistent.
    again = engine.generate(GenerationRequest(prompt=prompt, max_tokens=8, heal_word_end=True))
    assert again.text == healed.text


def test_a_prompt_that_does_not_end_in_a_word_is_left_as_it_is(engine: LlamaCppEngine) -> None:
    prompt = spm("import json\n\n\ndef load_settings(path):\n    with open(", "\n    return settings\n")
    plain = engine.generate(GenerationRequest(prompt=prompt, max_tokens=8))
    asked = engine.generate(GenerationRequest(prompt=prompt, max_tokens=8, heal_word_end=True))
    assert (asked.text, asked.prompt_tokens) == (plain.text, plain.prompt_tokens)
