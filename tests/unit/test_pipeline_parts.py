"""The pure steps of a completion: the answer's shape, the context cut, the middle's cleanup."""

import pytest

from fim_lsp.context import cut_context
from fim_lsp.pipeline import Shape, choose_shape
from fim_lsp.postprocess import clean_middle, strip_artifacts


@pytest.mark.parametrize(
    ("marked", "shape"),
    [
        pytest.param("def f():\n    █\n", Shape.BLOCK, id="empty-line-in-body"),
        pytest.param("def f():█\n", Shape.BLOCK, id="end-of-block-opener"),
        pytest.param("x = max(a, █)\n", Shape.LINE, id="inside-argument-list"),
        pytest.param("tot█al = 1\n", Shape.NONE, id="inside-identifier"),
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
    ("middle", "kwargs", "expected"),
    [
        pytest.param(
            "return x\n", {"reached_eot": True, "single_line": False}, "return x\n", id="eot-kept-whole"
        ),
        pytest.param(
            "a = 1\nb = 2\nc = ",
            {"reached_eot": False, "single_line": False},
            "a = 1\nb = 2\n",
            id="budget-cut-to-whole-lines",
        ),
        pytest.param("a = ", {"reached_eot": False, "single_line": False}, None, id="no-whole-line-dropped"),
        pytest.param(
            "x + 1)\nprint(y)",
            {"reached_eot": False, "single_line": True},
            "x + 1)",
            id="single-line-keeps-first-line",
        ),
        pytest.param("x + ", {"reached_eot": False, "single_line": True}, None, id="unfinished-line-dropped"),
        pytest.param(
            "return 1\n```\nThis function returns one.",
            {"reached_eot": False, "single_line": False},
            "return 1\n",
            id="markdown-fence-and-prose-cut",
        ),
        pytest.param(
            "pass\n<|fim_middle|>junk",
            {"reached_eot": False, "single_line": False},
            "pass\n",
            id="special-token-cut",
        ),
        pytest.param(
            "   \n", {"reached_eot": True, "single_line": False}, None, id="whitespace-only-is-nothing"
        ),
    ],
)
def test_clean_middle(middle, kwargs, expected):
    assert clean_middle(middle, **kwargs) == expected


@pytest.mark.parametrize("token", ["<|fim_suffix|>", "<fim_middle>", "<｜fim▁end｜>", "<EOT>", "[PREFIX]"])
def test_strip_artifacts_knows_every_family(token):
    assert strip_artifacts(f"x = 1{token}y") == "x = 1"
