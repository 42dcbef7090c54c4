"""The engine interface every backend implements: count tokens, and write a middle for a prompt."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fim_lsp.engine.limits import interruption
from fim_lsp.prompt import FimPrompt, FimTemplate

StopReason = Literal["eot", "stop", "length", "cancelled", "deadline"]


class CancelToken:
    """A flag a request's owner sets to stop its generation; engines check it between tokens."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.cancelled_at: float | None = None

    def cancel(self) -> None:
        if not self._event.is_set():
            self.cancelled_at = time.monotonic()
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class GenerationRequest:
    """One generation: the prompt and the limits on what may come back."""

    prompt: FimPrompt
    max_tokens: int
    stop: tuple[str, ...] = ()
    """Strings that end the middle when generated (the model's end-of-generation tokens always do)."""
    deadline: float | None = None
    """`time.monotonic()` value after which generation stops with what it has."""
    cancel: CancelToken = field(default_factory=CancelToken)
    reuse_cache: bool = True
    """Reuse the engine's cached evaluation of a shared prompt start; False evaluates it all afresh."""
    on_text: Callable[[str], bool] | None = None
    """Called with the text so far after each token; returning True stops generation (reason `stop`)."""
    write_something: bool = False
    """End-of-text before anything but spaces is not taken: the model's best other token is written
    instead (engines that sample themselves; others take the model's end as it comes). The pipeline asks
    for it: the cursor is where the user writes, and in SPM a model sometimes ends at once where in PSM
    it writes the middle (the 1.5B on HumanEval tasks it answers right in PSM; see
    docs/design/empty-middles.md)."""
    heal_word_end: bool = False
    """The prompt ends where the user is writing a word (the cursor right after a letter, digit or
    underscore, the prefix last in the prompt): the word's last token is taken off the prompt and the
    middle made to start with its text (token healing; engines that sample themselves). A BPE tokenizer
    cut the typed part of the word alone (`for op in o` ends with ` o`), a split the model rarely saw
    before the rest of a word: without healing it writes the rest as if a token boundary were there
    (`peations`). The text returned is what follows the cursor, as without healing."""

    alternatives: int = 0
    """Other middles to write beside the first, each from another of the model's likeliest first tokens
    (engines that sample themselves; others write one)."""
    before_line: bool = False
    """For `Engine.warm`: evaluate only the start of the prompt that typing on the cursor's line leaves as
    it is (`FimTemplate.pieces`)."""

    def interruption(self) -> StopReason | None:
        """Why the generation must stop now, if it must."""
        return interruption(self.cancel, self.deadline)


@dataclass(frozen=True)
class Alternative:
    """Another middle written for the same prompt."""

    text: str
    stop_reason: StopReason
    log_probability: float
    """Mean log-probability of its tokens (the model's own judgement of it)."""


@dataclass
class Generation:
    """What an engine wrote, why it stopped, and what it cost."""

    text: str
    stop_reason: StopReason
    prompt_tokens: int = 0
    evaluated_tokens: int = 0
    """Prompt tokens actually evaluated: fewer than prompt_tokens when a cached prefix was reused."""
    generated_tokens: int = 0
    prompt_ms: float = 0.0
    generate_ms: float = 0.0
    log_probability: float | None = None
    """Mean log-probability of the tokens written, where the engine knows it."""
    alternatives: list[Alternative] = field(default_factory=list)
    alternatives_ms: float = 0.0
    """Of `generate_ms`, the time the alternatives took after the first middle was whole."""

    @property
    def reached_eot(self) -> bool:
        """Whether the model itself said the middle is complete."""
        return self.stop_reason == "eot"


class Engine(ABC):
    """A loaded model that writes middles. Calls to `generate` come from one worker thread at a time."""

    template: FimTemplate

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's vocabulary (FIM and other special spellings as one token)."""

    @abstractmethod
    def generate(self, request: GenerationRequest) -> Generation:
        """Write a middle for `request.prompt`, stopping at end-of-text, a stop string, the token limit,
        the deadline or cancellation, whichever comes first."""

    def warm(self, request: GenerationRequest) -> int:
        """Evaluate `request.prompt` into the engine's cache without writing anything, so that a later
        prompt that starts with it evaluates only the rest; stops when the request is cancelled.
        Returns the tokens evaluated. Engines that keep no cache of their own do nothing."""
        return 0

    def uncached_tokens(self, prompt: FimPrompt) -> int | None:
        """Tokens of `prompt` its evaluation would cost now (what the engine's cache does not hold), or
        None when the engine cannot tell (a remote server keeps its own cache)."""
        return None

    def prompt_rate(self) -> float | None:
        """Prompt tokens this engine evaluates a second on this machine, as measured so far (None until
        it has been measured, or where it cannot be)."""
        return None

    def write_rate(self) -> float | None:
        """Tokens this engine writes a second on this machine, as measured so far (None until measured)."""
        return None

    def cache_usage(self) -> dict[str, int]:
        """What the engine's own cache of evaluated prompts holds, for `fim-lsp.stats` (nothing where the
        engine keeps none)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Facts for `fim-lsp doctor` and logs: backend, model, template family."""
        return {"template": self.template.family}

    def close(self) -> None:  # noqa: B027 - optional hook, most engines hold nothing to release
        """Release the model."""
