"""The pure steps of a completion: the answer's shape, the context cut, the middle's cleanup."""

from typing import get_args

import pytest

from fim_lsp.completion import Completion, Reason, Shape
from fim_lsp.config import Settings
from fim_lsp.context import cut_context
from fim_lsp.engine.base import StopReason
from fim_lsp.pipeline import choose_shape
from fim_lsp.postprocess.artifacts import strip_special_and_fences
from fim_lsp.syntax import LINE_WINDOW_CHARS


@pytest.mark.parametrize(
    ("marked", "shape"),
    [
        pytest.param("def f():\n    █\n", Shape.BLOCK, id="empty-line-in-body"),
        pytest.param("def f():█\n", Shape.BLOCK, id="end-of-block-opener"),
        pytest.param("x = max(a, █)\n", Shape.LINE, id="inside-argument-list"),
        pytest.param("tot█al = 1\n", Shape.LINE, id="inside-identifier"),
        pytest.param("total█ = 1\n", Shape.LINE, id="end-of-identifier-with-text-after"),
    ],
)
def test_choose_shape(marked, shape):
    offset = marked.index("█")
    assert choose_shape(marked.replace("█", ""), offset) is shape


def count_characters(text: str) -> int:
    return len(text)


def test_context_keeps_whole_lines_within_the_budget():
    lines = [f"line_{n} = {n}\n" for n in range(100)]
    text = "".join(lines)
    offset = text.index("line_50")
    context = cut_context(text, offset, budget=200, suffix_share=0.25, count_tokens=count_characters)
    assert len(context.prefix) + len(context.suffix) <= 200
    assert context.prefix.startswith("line_") and context.suffix.endswith("\n")
    assert text[context.prefix_start : context.suffix_end] == context.prefix + context.suffix
    assert len(context.prefix) > 2 * len(context.suffix)


def test_context_gives_unused_suffix_budget_to_the_prefix():
    text = "a = 1\n" * 50 + "b = "
    context = cut_context(text, len(text), budget=120, suffix_share=0.5, count_tokens=count_characters)
    assert context.suffix == ""
    assert len(context.prefix) > 100


def test_small_file_fits_whole():
    text = "import os\n\ndef f():\n    return os.sep\n"
    offset = text.index("return")
    context = cut_context(text, offset, budget=1000, suffix_share=0.25, count_tokens=count_characters)
    assert context.prefix + context.suffix == text


@pytest.mark.parametrize(
    ("tail", "after", "shape"),
    [
        pytest.param("if(a){", "", Shape.BLOCK, id="opens-a-block"),
        pytest.param("x=f(a,", "", Shape.LINE, id="unfinished-call"),
        pytest.param("x=1; // why", "", Shape.LINE, id="ends-in-a-comment"),
        pytest.param("f(a, ", "b);", Shape.LINE, id="text-after-the-cursor"),
    ],
)
def test_a_long_lines_prompt_is_judged_like_the_document(tail, after, shape):
    # Far over the budget: the context cuts the line around the cursor, by characters.
    line = 'a=[1,"x"];' * 100_000 + tail
    text = "first();\n" + line + after + "\nnext();\n"
    offset = len("first();\n") + len(line)
    settings = Settings()
    context = cut_context(
        text, offset, settings.budget_cap, settings.suffix_share, lambda chunk: len(chunk) // 4
    )
    assert context.prefix_start > len("first();\n")  # the long-line cut
    # The prompt keeps all the line the shape is judged on before the cursor, so both judge alike.
    assert len(context.prefix) >= LINE_WINDOW_CHARS
    assert (
        choose_shape(text, offset)
        is choose_shape(context.prefix + context.suffix, len(context.prefix))
        is shape
    )


@pytest.mark.parametrize(
    ("middle", "expected"),
    [
        pytest.param("return x\n", ("return x\n", False), id="nothing-to-cut"),
        pytest.param(
            "return 1\n```\nThis function returns one.", ("return 1\n", True), id="markdown-fence-cut"
        ),
        pytest.param("return 1\nThis function returns the first one.", ("return 1\n", True), id="prose-cut"),
        pytest.param("```python\nreturn 1\n", ("return 1\n", False), id="fence-before-the-code-dropped"),
        pytest.param("pass\n<|fim_middle|>junk", ("pass\n", True), id="special-token-cut"),
    ],
)
def test_artifacts_end_a_middle(middle, expected):
    assert strip_special_and_fences(middle) == expected


@pytest.mark.parametrize(
    "token", ["<|fim_suffix|>", "<fim_middle>", "<｜fim▁end｜>", "<EOT>", "[PREFIX]", "[MIDDLE]"]
)
def test_special_tokens_of_every_family_end_a_middle(token):
    assert strip_special_and_fences(f"x = 1{token}y") == ("x = 1", True)


def test_every_engine_stop_reason_is_a_completion_reason():
    # The pipeline turns the engine's stop reason into the completion's: none may be missing.
    assert {Reason(stop).value for stop in get_args(StopReason)} == set(get_args(StopReason))


def test_a_reason_reads_as_its_value_and_its_detail():
    assert f"{Reason.TYPED_THROUGH}" == "typed-through"
    assert Completion(None, Shape.NONE, Reason.CACHED).why == "cached"
    not_ready = Completion(None, Shape.NONE, Reason.ENGINE_NOT_READY, detail="loading: loading a model")
    assert not_ready.why == "engine not ready: loading: loading a model"
