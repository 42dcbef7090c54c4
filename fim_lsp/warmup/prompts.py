"""A task as the server would prompt the model for it, and the tokens the model should answer with.

All of the warm-up's coupling to the server's prompt is in `served_example`: it takes the steps of
`fim_lsp.pipeline.complete` up to the engine call (context cut, cursor shape, indentation typed for the
model, FIM order, held-back spaces, prompt rendering) by calling the pipeline's own functions, then
tokenizes the prompt as the embedded engine does (a fresh start at `split_at`, the last word piece taken
off where the engine heals it). When the pipeline or the engine changes how it builds a prompt, this is
the one function to follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fim_lsp.config import Settings
from fim_lsp.dataset import DatasetTask

if TYPE_CHECKING:
    from fim_lsp.engine.llama_cpp import LlamaCppEngine


@dataclass(frozen=True)
class ServedExample:
    """One hole as the model sees it: the prompt's tokens, and what it should write after them."""

    prompt: list[int]
    answer: list[int]
    """The middle as the pipeline takes it from the model (after spaces held back from the prompt, and
    without indentation the pipeline typed for it), then the end-of-text token."""


def end_of_middle(engine: LlamaCppEngine) -> int:
    """The token that ends a middle: the template's first stop spelling (Qwen2.5-Coder: <|endoftext|>)."""
    tokens = engine.tokenize(engine.template.stop[0]) if engine.template.stop else []
    if len(tokens) != 1:
        raise ValueError(f"the {engine.template.family} template names no single end-of-middle token")
    return tokens[0]


def served_example(
    task: DatasetTask, settings: Settings, engine: LlamaCppEngine, *, with_snippets: bool = True
) -> ServedExample | None:
    """The server's prompt for `task`'s hole under `settings` (with the task's workspace snippets, or
    none), and the answer that fills it; None where the server would not complete (the cursor inside a
    word) or its answer could not start as the reference does."""
    from fim_lsp import pipeline
    from fim_lsp.bench.quality import fit
    from fim_lsp.engine.base import GenerationRequest
    from fim_lsp.syntax import LANGUAGES, DocumentSyntax, indentation_to_type, language_of

    text = task.prefix + task.suffix
    workspace = None
    if with_snippets and task.snippets:
        workspace = pipeline.WorkspaceContext(
            task.repo, task.path, lambda budget, count: fit(task.snippets, budget, count)
        )
    syntax = DocumentSyntax(task.language, text) if task.language in LANGUAGES else None
    request = pipeline.CompletionRequest(
        text, len(task.prefix), task.language, task.path, syntax=syntax, workspace=workspace
    )
    if pipeline.choose_shape(text, request.offset) is pipeline.Shape.NONE:
        return None
    language = language_of(request.language_id, request.path)
    snippets = pipeline.workspace_snippets(request, settings, engine)
    context = pipeline.build_context(request, settings, engine)
    shape = pipeline._shape_in_context(request, context, language)
    if shape is pipeline.Shape.NONE:
        return None
    typed = (
        indentation_to_type(context.prefix, context.suffix, language) if shape is pipeline.Shape.BLOCK else ""
    )
    if not task.middle.startswith(typed):
        return None
    order = pipeline.prompt_order(engine, settings, context.suffix)
    shown_prefix = context.prefix + typed
    held = pipeline._held_back(shown_prefix, order)
    prompt_prefix = shown_prefix[: len(shown_prefix) - len(held)]
    prompt = pipeline.render_prompt(
        engine, settings, prompt_prefix, context.suffix, snippets, request.workspace, language, order
    )
    split_at = pipeline._suffix_second_line(prompt, context.suffix)
    tokens = engine._prompt_tokens(GenerationRequest(prompt=prompt, max_tokens=0, split_at=split_at))
    written = held + task.middle[len(typed) :]
    if order != "psm" and pipeline._ends_in_word(prompt_prefix) and not held:
        # The engine heals the word at the cursor: it takes the word's last token off the prompt, and the
        # model's first token must start with that token's text.
        piece = engine._word_end_piece(tokens)
        if piece:
            tokens = tokens[:-1]
            written = piece.decode("utf-8", errors="replace") + written
    return ServedExample(tokens, [*engine.tokenize(written), end_of_middle(engine)])
