"""One completion, start to end: document + cursor + settings + engine -> the middle to show.

No LSP here: the server (and the CLI, and the benchmarks) call `complete` with plain text and an offset,
so the same steps serve every entry point. The steps, in order: decide what shape of answer fits the
cursor (nothing, one line, a block), cut the context to the budget, render the model family's FIM
prompt, generate, and cut the middle where it stops being whole.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import Enum

from fim_lsp.config import Settings
from fim_lsp.context import PromptContext, cut_context
from fim_lsp.engine.base import CancelToken, Engine, Generation, GenerationRequest
from fim_lsp.postprocess import clean_middle

logger = logging.getLogger(__name__)


class Shape(Enum):
    """What kind of answer the cursor's position calls for."""

    NONE = "none"
    LINE = "line"
    BLOCK = "block"


@dataclass(frozen=True)
class CompletionRequest:
    """A document's text and the cursor in it (a code point offset)."""

    text: str
    offset: int
    language_id: str | None = None
    path: str | None = None


@dataclass
class Completion:
    """The middle to show (None: nothing worth showing), and how it came about."""

    text: str | None
    shape: Shape
    reason: str
    """Why generation ended (eot, stop, length, cancelled, deadline) or why it never started."""
    generation: Generation | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def choose_shape(text: str, offset: int) -> Shape:
    """The answer's shape from the text around the cursor.

    Inside a word with more word to its right there is nothing to insert; text after the cursor on its
    line means the answer must fit inside the line; otherwise a block may follow.
    """
    before = text[offset - 1] if offset > 0 else ""
    after = text[offset] if offset < len(text) else ""
    if before and after and _is_word(before) and _is_word(after):
        return Shape.NONE
    line_end = text.find("\n", offset)
    rest_of_line = text[offset : len(text) if line_end < 0 else line_end]
    return Shape.LINE if rest_of_line.strip() else Shape.BLOCK


def max_new_tokens(settings: Settings, shape: Shape) -> int:
    """Token cap for a shape: a single line needs far fewer tokens than a block."""
    return max(16, settings.max_new_tokens // 4) if shape is Shape.LINE else settings.max_new_tokens


def build_prompt(request: CompletionRequest, settings: Settings, engine: Engine) -> tuple[str, PromptContext]:
    """The rendered FIM prompt for a request, and the context it was made from."""
    context = cut_context(
        request.text, request.offset, settings.context_budget, settings.suffix_share, engine.count_tokens
    )
    prompt = engine.template.render(context.prefix, context.suffix, settings.fim_order)
    return prompt, context


def _stop_after_first_line(text: str) -> bool:
    """For single-line answers: stop once a non-empty line has ended."""
    return "\n" in text.lstrip("\n")


def complete(
    request: CompletionRequest,
    settings: Settings,
    engine: Engine,
    *,
    cancel: CancelToken | None = None,
    deadline: float | None = None,
) -> Completion:
    """Write the middle for the cursor in `request`. Runs on the engine's worker thread."""
    started = time.monotonic()
    if not 0 <= request.offset <= len(request.text):
        return Completion(None, Shape.NONE, "position outside the document")
    shape = choose_shape(request.text, request.offset)
    if shape is Shape.NONE:
        return Completion(None, shape, "cursor inside a word")
    if deadline is None:
        deadline = started + settings.time_budget_ms / 1000

    prompt, _context = build_prompt(request, settings, engine)
    prompt_built = time.monotonic()
    generation = engine.generate(
        GenerationRequest(
            prompt=prompt,
            max_tokens=max_new_tokens(settings, shape),
            deadline=deadline,
            cancel=cancel or CancelToken(),
            on_text=_stop_after_first_line if shape is Shape.LINE else None,
        )
    )
    if generation.stop_reason == "cancelled":
        text = None
    else:
        text = clean_middle(
            generation.text,
            reached_eot=generation.reached_eot or generation.stop_reason == "stop",
            single_line=shape is Shape.LINE,
        )
    finished = time.monotonic()
    return Completion(
        text=text,
        shape=shape,
        reason=generation.stop_reason,
        generation=generation,
        timings_ms={
            "prompt_build": (prompt_built - started) * 1000,
            "prompt_eval": generation.prompt_ms,
            "generate": generation.generate_ms,
            "total": (finished - started) * 1000,
        },
    )
