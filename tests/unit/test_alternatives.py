"""Alternatives: other middles offered after the first when the user asks for suggestions, each cut as the
first is, distinct, ranked by the model's own log-probability."""

from __future__ import annotations

from fim_lsp.completion import CompletionRequest
from fim_lsp.config import Settings
from fim_lsp.engine.base import Alternative, Engine, Generation, GenerationRequest
from fim_lsp.pipeline import complete
from fim_lsp.prompt import template_for_family

TEXT = "def mean(xs):\n    return \n\n\nprint(mean([1, 2]))\n"
OFFSET = TEXT.index("return ") + len("return ")


class Candidates(Engine):
    def __init__(self, first: str, others: list[Alternative]) -> None:
        self.template = template_for_family("qwen2.5-coder")
        self.first, self.others = first, others
        self.asked: list[int] = []

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1

    def generate(self, request: GenerationRequest) -> Generation:
        self.asked.append(request.alternatives)
        others = self.others[: request.alternatives]
        return Generation(self.first, "eot", generated_tokens=5, alternatives=others)


def ask(engine: Engine, alternatives: int) -> tuple[str | None, tuple[str, ...]]:
    completion = complete(
        CompletionRequest(TEXT, OFFSET, "python", "m.py"),
        Settings(workspace_context=False),
        engine,
        alternatives=alternatives,
    )
    return completion.text, completion.alternatives


def test_alternatives_are_cut_deduplicated_and_ranked_by_log_probability():
    engine = Candidates(
        "sum(xs) / len(xs)\n",
        [
            Alternative("sum(xs) / len(xs)\n", "eot", -0.5),  # the first again: left out
            Alternative("\n    sum(xs) / len(xs)\n", "eot", -0.4),  # only other whitespace: left out
            Alternative("0 if not xs else sum(xs) / len(xs)\n\nprint('more')", "length", -0.9),
            Alternative("statistics.mean(xs)\n", "eot", -0.3),
            Alternative("", "eot", -0.1),  # nothing: left out
        ],
    )
    first, others = ask(engine, 4)
    assert first == "sum(xs) / len(xs)"
    # Cut at the line's end like the first; the likelier first.
    assert others == ("statistics.mean(xs)", "0 if not xs else sum(xs) / len(xs)")
    assert engine.asked == [4]


def test_without_asking_there_are_none():
    engine = Candidates("sum(xs) / len(xs)\n", [Alternative("max(xs)\n", "eot", -0.2)])
    assert ask(engine, 0) == ("sum(xs) / len(xs)", ())
    assert engine.asked == [0]


def test_when_the_first_middle_is_cut_to_nothing_the_best_alternative_comes_first():
    engine = Candidates("", [Alternative("len(xs)\n", "eot", -0.2), Alternative("max(xs)\n", "eot", -0.4)])
    assert ask(engine, 2) == ("len(xs)", ("max(xs)",))
