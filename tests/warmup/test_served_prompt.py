"""The warm-up trains on the very prompt the server sends: for tasks of every kind, the tokens
`served_example` trains on are the tokens the embedded engine is asked to evaluate when the pipeline
completes the same hole (context cut, FIM order, held-back spaces, snippets, the template's pieces
tokenized apart, healed word end and all).

When the pipeline or the engine changes how a prompt is built, this test says that the warm-up's one
adapter function (`fim_lsp.warmup.prompts.served_example`) must follow.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fim_lsp.config import Settings
from fim_lsp.dataset import cut_tasks
from fim_lsp.engine.base import Generation, GenerationRequest
from fim_lsp.engine.llama_cpp import LlamaCppEngine
from fim_lsp.warmup.prompts import served_example

pytestmark = pytest.mark.model


class RecordingEngine(LlamaCppEngine):
    """The real engine's tokenizer and template; `generate` only records what it was asked."""

    requests: list[GenerationRequest]

    def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        return Generation("", "eot")

    def evaluated_tokens(self, request: GenerationRequest) -> list[int]:
        """The tokens the engine would evaluate for `request` before writing."""
        tokens = self._checked_tokens(request)
        if request.heal_word_end and self.vocabulary.word_end_piece(tokens):
            tokens = tokens[:-1]
        return tokens


@pytest.mark.parametrize("order", ["auto", "psm", "spm", "psm-line"])
def test_training_prompts_are_the_prompts_the_pipeline_sends(repository: Path, order: str) -> None:
    from fim_lsp.bench.quality.systems import fit
    from fim_lsp.completion import CompletionRequest, WorkspaceContext
    from fim_lsp.pipeline import complete
    from fim_lsp.syntax import DocumentSyntax

    settings = Settings(model="qwen2.5-coder-0.5b", fim_order=order, context_budget=256, threads=1)  # type: ignore[arg-type]
    engine = RecordingEngine.from_settings(settings)
    engine.requests = []
    tasks = cut_tasks(repository, per_kind=6, seed=3)
    end_of_text = engine.tokenize("<|endoftext|>")
    compared = 0
    try:
        for task in tasks:
            for with_snippets in (True, False):
                served = served_example(task, settings, engine, with_snippets=with_snippets)
                workspace = None
                if with_snippets and task.snippets:
                    workspace = WorkspaceContext(
                        task.repo, task.path, lambda budget, count, t=task: fit(t.snippets, budget, count)
                    )
                text = task.prefix + task.suffix
                request = CompletionRequest(
                    text,
                    len(task.prefix),
                    task.language,
                    task.path,
                    syntax=DocumentSyntax(task.language, text),
                    workspace=workspace,
                )
                engine.requests.clear()
                complete(request, settings, engine)
                if served is None:
                    assert not engine.requests, f"{task.task_id}: the server prompts the model here"
                    continue
                assert len(engine.requests) == 1, task.task_id
                assert served.prompt == engine.evaluated_tokens(engine.requests[0]), task.task_id
                answer = engine.detokenize(served.answer[:-1]).decode()
                assert task.middle.strip() in answer
                assert served.answer[-1:] == end_of_text
                compared += 1
    finally:
        engine.close()
    assert compared >= len(tasks)  # most holes give a training example, with and without snippets
