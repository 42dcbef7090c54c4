"""Run `fim-lsp --stdio` with a fast, deterministic fake engine in place of llama.cpp.

For the load storm: hundreds of requests a second are more than a real model answers on a test machine,
and the storm checks the server (protocol, supersession, caches, memory), not the model. Everything but
the engine is the real server, started the way `fim-lsp --stdio` starts it.

The fake "model" reads the prompt's prefix (in PSM, SPM or psm-line order; the last file of a
repository-level prompt), finds the last `step_D(N)` there and writes `counter_D + N`: an answer that
says which document, and which version of it, it was written for. It takes a few milliseconds,
checking the cancel flag and the deadline the way the real engine does between tokens.
"""

from __future__ import annotations

import re
import sys
import time

from fim_lsp.config import Settings
from fim_lsp.engine.base import Engine, Generation, GenerationRequest
from fim_lsp.prompt import template_for_family

MARK = re.compile(r"step_(\d+)\((\d+)\)")
#: Seconds the fake spends on the prompt, then on each of its tokens.
PROMPT_SECONDS = 0.004
TOKEN_SECONDS = 0.001


def expected_middle(document: int, step: int) -> str:
    """What the fake writes for a prompt whose prefix's last mark is `step_{document}({step})`."""
    return f"counter_{document} + {step}"


class EchoEngine(Engine):
    """Writes `counter_D + N` for the last `step_D(N)` before the cursor; nothing when there is none."""

    def __init__(self) -> None:
        self.template = template_for_family("qwen2.5-coder")

    def count_tokens(self, text: str) -> int:
        return len(text) // 3 + 1

    def generate(self, request: GenerationRequest) -> Generation:
        started = time.monotonic()
        marks = MARK.findall(request.prompt.prefix)
        prompt_tokens = self.count_tokens(self.template.render(request.prompt))
        text = expected_middle(int(marks[-1][0]), int(marks[-1][1])) if marks else ""
        pieces = text.split(" ")
        for steps, seconds in ((1, PROMPT_SECONDS), (len(pieces), TOKEN_SECONDS)):
            for _ in range(steps):
                time.sleep(seconds)
                if request.cancel.cancelled:
                    return Generation(
                        "", "cancelled", prompt_tokens=self.count_tokens(self.template.render(request.prompt))
                    )
                if request.deadline is not None and time.monotonic() > request.deadline:
                    return Generation("", "deadline")
        elapsed = (time.monotonic() - started) * 1000
        return Generation(
            text,
            "eot",
            prompt_tokens=prompt_tokens,
            evaluated_tokens=prompt_tokens,
            generated_tokens=len(pieces),
            prompt_ms=elapsed,
        )


def create_engine(_settings: Settings) -> Engine:
    return EchoEngine()


def main() -> int:
    from fim_lsp.cli import protocol_streams, setup_logging
    from fim_lsp.server import create_server

    setup_logging(0, None)
    server = create_server(engine_factory=create_engine)
    stdin, stdout = protocol_streams()
    server.start_io(stdin, stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
