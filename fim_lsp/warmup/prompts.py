"""A task as the server would prompt the model for it, and the tokens the model should answer with.

All of the warm-up's coupling to the server's prompt is in `served_example`: the pipeline's own `plan`
(context cut, cursor shape, indentation typed for the model, FIM order, held-back spaces, the structured
FIM prompt), the engine's own tokenization of that prompt, and the word end the engine heals where
`pipeline.complete` asks it to. When the pipeline or the engine changes how it builds a prompt, this is the
one function to follow it (`tests/warmup/test_served_prompt.py` says when).
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
    from fim_lsp.bench.quality.systems import fit
    from fim_lsp.completion import Completion, CompletionRequest, WorkspaceContext
    from fim_lsp.syntax import LANGUAGES, DocumentSyntax

    text = task.prefix + task.suffix
    workspace = None
    if with_snippets and task.snippets:
        workspace = WorkspaceContext(
            task.repo, task.path, lambda budget, count: fit(task.snippets, budget, count)
        )
    syntax = DocumentSyntax(task.language, text) if task.language in LANGUAGES else None
    request = CompletionRequest(
        text, len(task.prefix), task.language, task.path, syntax=syntax, workspace=workspace
    )
    planned = pipeline.plan(request, settings, engine)
    if isinstance(planned, Completion) or not task.middle.startswith(planned.typed):
        return None
    tokens = engine.prompt_tokens(planned.prompt)
    written = planned.held + task.middle[len(planned.typed) :]
    prompt = planned.prompt
    if prompt.order != "psm" and pipeline._ends_in_word(prompt.prefix) and not planned.held:
        # The engine heals the word at the cursor (`complete` asks it to here): it takes the word's last
        # token off the prompt, and the model's first token must start with that token's text.
        piece = engine.vocabulary.word_end_piece(tokens)
        if piece:
            tokens = tokens[:-1]
            written = piece.decode("utf-8", errors="replace") + written
    return ServedExample(tokens, [*engine.tokenize(written), end_of_middle(engine)])
