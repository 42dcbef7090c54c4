"""The real `fim-lsp --stdio` with scripted candidates in place of what the model would write.

Everything but the pipeline's answer is the real server: the protocol, the service (cache, typed-through
answers that follow the candidate on screen), exclusions, and the acceptance counts. The pipeline answers
each `--suggest`, in order, less what the text before the cursor already holds of it (like a model
continuing the text), so tests of editors and of the protocol know exactly which candidates arrive. As
the real pipeline, it answers the first alone unless the service asks for alternatives (an invoked
request: a key, or the next suggestion):

    scripted_fim_lsp.py --suggest 'text' [--suggest 'other' ...] [--line-has TEXT] [--stdio]

With `--line-has`, only a cursor whose line holds TEXT before it is answered (elsewhere: nothing).

It loads no model and opens no socket; `fimLsp/status` reports it ready at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from fim_lsp import pipeline
from fim_lsp.completion import Completion, CompletionRequest, Reason, Shape
from fim_lsp.config import Settings
from fim_lsp.engine.base import CancelToken, Engine, Generation, GenerationRequest
from fim_lsp.prompt import template_for_family


def overlap(before: str, suggestion: str) -> int:
    """Length of the longest end of `before` that starts `suggestion`: what the user typed of it already."""
    for size in range(min(len(before), len(suggestion)), 0, -1):
        if before.endswith(suggestion[:size]):
            return size
    return 0


class NoModel(Engine):
    """An engine that is ready at once; the scripted pipeline never asks it to generate."""

    def __init__(self) -> None:
        self.template = template_for_family("qwen2.5-coder")

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def generate(self, request: GenerationRequest) -> Generation:
        raise RuntimeError("the scripted pipeline writes the candidates itself")


def scripted(suggestions: list[str], line_has: str | None = None) -> Callable[..., Completion]:
    def complete(
        request: CompletionRequest,
        settings: Settings,
        engine: Engine,
        *,
        cancel: CancelToken | None = None,
        deadline: float | None = None,
        alternatives: int = 0,
    ) -> Completion:
        before = request.text[: request.offset]
        generation = Generation("", "eot", prompt_tokens=1, evaluated_tokens=1, generated_tokens=1)
        if line_has is not None and line_has not in before[before.rfind("\n") + 1 :]:
            return Completion(None, Shape.LINE, Reason.EOT, generation)
        rests: list[str] = []
        for suggestion in suggestions:
            rest = suggestion[overlap(before, suggestion) :]
            if rest.strip() and rest not in rests:
                rests.append(rest)
        rests = rests[: 1 + alternatives]
        if not rests:
            return Completion(None, Shape.LINE, Reason.EOT, generation)
        return Completion(rests[0], Shape.LINE, Reason.EOT, generation, alternatives=tuple(rests[1:]))

    return complete


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--suggest", action="append", default=[], help="one candidate (repeatable)")
    parser.add_argument("--line-has", help="answer only where the cursor's line holds this before it")
    parser.add_argument("--stdio", action="store_true", help="accepted for fim-lsp compatibility")
    args = parser.parse_args()

    from fim_lsp.cli import protocol_streams, setup_logging
    from fim_lsp.server import create_server

    pipeline.complete = scripted(args.suggest, args.line_has)
    setup_logging(0, None)
    server = create_server(engine_factory=lambda _settings: NoModel())
    stdin, stdout = protocol_streams()
    server.start_io(stdin, stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
