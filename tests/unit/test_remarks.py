"""Comments a model writes: `drop_line_end_remarks` (remarks at line ends), `is_placeholder` (an answer that
is only `# Your code here`), and `finish_middle` that applies both.

Each case is a document with a cursor mark, what the model wrote there, and what must remain.
"""

from __future__ import annotations

import pytest

from fim_lsp.completion import Shape
from fim_lsp.postprocess import finish_middle
from fim_lsp.postprocess.remarks import drop_line_end_remarks, is_placeholder

CURSOR = "█"

JS_MIN_SUM = """\
function minSubArraySum(nums) {
    let sum = nums[0];█
    for (let i = 1; i < nums.length; i++) {
        sum = Math.min(sum, nums[i]);
    }
    return sum;
}
"""

PY_WITH_PRAGMA = """\
import typing

if typing.TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterator


def pairs(items):
    █
"""

PY_PLAIN = """\
def pairs(items):
    █
    return result
"""

JAVA_WORDS = """\
class Solution {
    public static String wordsInSentence(String sentence) {
        StringBuilder ans = new StringBuilder();█
        return ans.toString();
    }
}
"""

GO_SUM = """\
package main

func sum(xs []int) int {
\t█
}
"""

RUST_MEAN = """\
fn mean(xs: &[f64]) -> f64 {
    █
}
"""

PY_NON_ASCII = """\
def prix(articles):
    █
    return total
"""

C_BLOCK_COMMENT = """\
int area(int w, int h) {
    █
}
"""


def drop(marked: str, middle: str, language: str | None) -> str:
    prefix, suffix = marked.split(CURSOR)
    return drop_line_end_remarks(prefix, middle, suffix, language)


@pytest.mark.parametrize(
    ("marked", "middle", "language", "expected"),
    [
        pytest.param(
            JS_MIN_SUM,
            "\n    let minSum = sum; // Initialize minSum to the sum of the first element",
            "javascript",
            "\n    let minSum = sum;",
            id="javascript-remark-after-statement",
        ),
        pytest.param(
            JAVA_WORDS,
            '\n        String[] words = sentence.split(" "); // Split the sentence into words',
            "java",
            '\n        String[] words = sentence.split(" ");',
            id="java-line-comment",
        ),
        pytest.param(
            PY_PLAIN,
            "result = []  # the pairs found so far\n    for a, b in zip(items, items[1:]):  # neighbours\n"
            "        result.append((a, b))\n",
            "python",
            "result = []\n    for a, b in zip(items, items[1:]):\n        result.append((a, b))\n",
            id="python-every-line-end",
        ),
        pytest.param(
            GO_SUM,
            "total := 0 // running sum\n\tfor _, x := range xs {\n\t\ttotal += x\n\t}\n\treturn total",
            "go",
            "total := 0\n\tfor _, x := range xs {\n\t\ttotal += x\n\t}\n\treturn total",
            id="go-remark",
        ),
        pytest.param(
            RUST_MEAN,
            "let n = xs.len() as f64; /* never zero here */\n    xs.iter().sum::<f64>() / n",
            "rust",
            "let n = xs.len() as f64;\n    xs.iter().sum::<f64>() / n",
            id="rust-one-line-block-comment",
        ),
        pytest.param(
            PY_NON_ASCII,
            "total = sum(a.prix for a in articles)  # somme des prix en €\n",
            "python",
            "total = sum(a.prix for a in articles)\n",
            id="python-non-ascii-remark",
        ),
    ],
)
def test_a_remark_at_a_line_end_is_dropped_where_the_file_has_none(
    marked: str, middle: str, language: str, expected: str
) -> None:
    assert drop(marked, middle, language) == expected


@pytest.mark.parametrize(
    ("marked", "middle", "language"),
    [
        pytest.param(
            PY_WITH_PRAGMA,
            "for a, b in zip(items, items[1:]):  # pragma: no branch\n        yield a, b\n",
            "python",
            id="python-file-with-its-own-line-end-comments",
        ),
        pytest.param(
            PY_PLAIN,
            "# neighbours, in order\n    result = list(zip(items, items[1:]))\n",
            "python",
            id="python-comment-on-a-line-of-its-own",
        ),
        pytest.param(
            JS_MIN_SUM,
            '\n    let url = "https://example.com/a#b"; let re = /a\\/\\/b/;',
            "javascript",
            id="javascript-comment-markers-inside-string-and-regex",
        ),
        pytest.param(
            C_BLOCK_COMMENT,
            "int a = w * h; /* in square units,\n       never negative */\n    return a;",
            "c",
            id="c-block-comment-over-two-lines",
        ),
        pytest.param(
            PY_PLAIN,
            "result = []  # the pairs found so far\n",
            None,
            id="unknown-language",
        ),
    ],
)
def test_comments_that_are_not_remarks_stay(marked: str, middle: str, language: str | None) -> None:
    assert drop(marked, middle, language) == middle


def test_the_rest_of_a_comment_the_cursor_is_in_stays() -> None:
    prefix = "def pairs(items):\n    result = []  # the pairs "
    assert drop_line_end_remarks(prefix, "found so far", "\n    return result\n", "python") == "found so far"


def test_a_remark_before_text_that_follows_the_cursor_is_not_cut_into_it() -> None:
    # The comment would run on into the rest of the cursor's line: not the model's alone to drop.
    prefix, suffix, middle = "const total = compute(", ");\n", "items // all of them"
    assert drop_line_end_remarks(prefix, middle, suffix, "javascript") == middle


def test_finish_middle_drops_the_remark_and_shows_the_line() -> None:
    prefix, suffix = JS_MIN_SUM.split(CURSOR)
    shown = finish_middle(
        prefix,
        "\n    let minSum = sum; // Initialize minSum to the sum of the first element\n",
        suffix,
        language="javascript",
        shape=Shape.BLOCK,
        reached_eot=True,
    )
    assert shown == "\n    let minSum = sum;"


def test_finish_middle_keeps_the_code_before_a_remark_on_the_cursor_line() -> None:
    prefix, suffix = "x = 1", "\nprint(x)\n"
    shown = finish_middle(
        prefix, "0  # the count", suffix, language="python", shape=Shape.LINE, reached_eot=True
    )
    assert shown == "0"


@pytest.mark.parametrize(
    ("middle", "language"),
    [
        pytest.param("    # Your code here\n", "python", id="python-your-code-here"),
        pytest.param("# TODO: Implement this function\n", "python", id="python-todo-implement"),
        pytest.param("// write your code here", "javascript", id="javascript-write-your-code-here"),
        pytest.param("\n        // TODO: implement\n", "java", id="java-todo-on-the-next-line"),
        pytest.param("-- fill this in", "lua", id="lua-fill-this-in"),
    ],
)
def test_an_answer_that_is_only_a_placeholder_comment_is_not_shown(middle: str, language: str) -> None:
    assert is_placeholder(middle, language)
    prefix, suffix = PY_PLAIN.split(CURSOR) if language == "python" else ("f() {\n    ", "\n}\n")
    shown = finish_middle(prefix, middle, suffix, language=language, shape=Shape.BLOCK, reached_eot=True)
    assert shown is None


@pytest.mark.parametrize(
    ("middle", "language"),
    [
        pytest.param("# sort by date, newest first\n", "python", id="python-comment-that-describes-code"),
        pytest.param("# fill in the missing values with zeros\n", "python", id="python-fill-in-describes"),
        pytest.param("// TODO: implement caching once the API is stable", "java", id="java-a-real-todo"),
        pytest.param("# Your code here\n    return result\n", "python", id="python-placeholder-before-code"),
        pytest.param("pass  # your code here\n", "python", id="python-code-with-a-remark"),
    ],
)
def test_comments_that_are_not_placeholders_are_answers(middle: str, language: str) -> None:
    assert not is_placeholder(middle, language)
