"""Where a generated middle stops: `truncate_middle` on real-looking code in several languages.

Each case is a document with a cursor mark, what the model wrote there, whether the model itself ended
(end-of-text), and what must be shown (None: nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from fim_lsp.completion import CompletionRequest, Shape, WorkspaceContext
from fim_lsp.config import Settings
from fim_lsp.engine.base import Engine, Generation, GenerationRequest
from fim_lsp.pipeline import complete
from fim_lsp.postprocess import middle_is_done, truncate_middle
from fim_lsp.postprocess.line import before_suffix
from fim_lsp.prompt import FimPrompt, RepoFile, template_for_family
from fim_lsp.syntax import count_errors, new_parser

CURSOR = "█"
LINE, BLOCK, NONE = Shape.LINE, Shape.BLOCK, Shape.NONE


def cut(marked: str, middle: str, language: str | None, shape: Shape, eot: bool) -> str | None:
    prefix, suffix = marked.split(CURSOR)
    return truncate_middle(prefix, middle, suffix, language, shape, eot)


PY_LOOP = """\
def count_vowels(word: str) -> int:
    total = 0
█    return total


def main():
    print(count_vowels("hello"))
"""

PY_BODY_AT_END = """\
import math


def circle_area(r: float) -> float:
█"""

TS_ADD = """\
export function add(a: number, b: number): number {
  █
}

export const zero = 0;
"""

GO_DOUBLE_EOF = """\
package main

func double(x int) int {
\t█"""

JAVA_SQUARE = """\
public class Geometry {
    static int square(int x) {
        █
    }
}
"""

C_MAX = """\
#include <stdio.h>

int max(int a, int b) {
    █
}
"""

COUNT_TIMES = """\
def how_many_times(text: str, part: str) -> int:
    times = 0
    for i in range(█

    return times
"""

RUBY_EACH = """\
def shout(words)
  words.each do |w|
    █
  end
end
"""


@pytest.mark.parametrize(
    ("marked", "middle", "language", "shape", "eot", "expected"),
    [
        pytest.param(
            "def gr█eet(name):\n    return name\n",
            "eet(name):",
            "python",
            LINE,
            True,
            None,
            id="python-line-that-is-the-rest-of-the-line-again-is-nothing-to-insert",
        ),
        pytest.param(
            'def wait_writable(sock):\n    """\n    Wait until the socket can be written to.\n\n'
            "    :raises BusyResourceError: if another task is already waiting for the socket\n"
            "        to become writable\n    █\n        current thread\n\n"
            '    """\n    return backend().wait_writable(sock)\n',
            ":raises NoEventLoopError: if no event loop is running in the",
            "python",
            BLOCK,
            True,
            ":raises NoEventLoopError: if no event loop is running in the",
            id="python-docstring-line-is-indented-as-the-docstring-likes",
        ),
        # --- Python, blocks ---
        pytest.param(
            PY_LOOP,
            "    for ch in word:\n        if ch in 'aeiou':\n            total += 1\n",
            "python",
            BLOCK,
            True,
            "    for ch in word:\n        if ch in 'aeiou':\n            total += 1\n",
            id="python-block-eot-kept-whole",
        ),
        pytest.param(
            PY_LOOP,
            "    for ch in word:\n        if ch in 'aeiou':\n            total += 1\n"
            "    return total\n\n\ndef main",
            "python",
            BLOCK,
            False,
            "    for ch in word:\n        if ch in 'aeiou':\n            total += 1\n",
            id="python-block-cut-where-it-repeats-the-suffix",
        ),
        pytest.param(
            PY_LOOP,
            "    for ch in word:\n        if ch in 'aeiou':\n            total += 1\n        if ch",
            "python",
            BLOCK,
            False,
            "    for ch in word:\n        if ch in 'aeiou':\n            total += 1\n",
            id="python-block-unfinished-last-line-dropped",
        ),
        pytest.param(
            PY_LOOP,
            "    for ch in word:\n        if ch in 'aeiou':\n            total +=",
            "python",
            BLOCK,
            False,
            None,
            id="python-block-no-eot-no-whole-cut-dropped",
        ),
        pytest.param(
            PY_BODY_AT_END,
            "    return math.pi * r ** 2\n\n\ndef square_area(s: float) -> float:\n    return s * s\n",
            "python",
            BLOCK,
            False,
            "    return math.pi * r ** 2\n",
            id="python-block-does-not-leave-the-function",
        ),
        pytest.param(
            "def mean(xs):\n    █\n",
            "return sum(xs) / len(xs)\n    return sum(xs) / len(xs)\n    return sum(xs) / len(xs)\n",
            "python",
            BLOCK,
            False,
            "return sum(xs) / len(xs)",
            id="python-block-repeated-lines-cut",
        ),
        pytest.param(
            "def mean(xs):█\n",
            "\n    if not xs:\n        return 0.0\n    return sum(xs) / len(xs)\n```\n\nIt returns the mean",
            "python",
            BLOCK,
            False,
            "\n    if not xs:\n        return 0.0\n    return sum(xs) / len(xs)",
            id="python-block-fence-and-prose-cut",
        ),
        pytest.param(
            "def mean(xs):\n    █\n",
            "```python\nreturn sum(xs) / len(xs)\n```\n",
            "python",
            BLOCK,
            False,
            "return sum(xs) / len(xs)",
            id="python-block-leading-fence-dropped",
        ),
        pytest.param(
            "def mean(xs):\n    █\n",
            "return sum(xs) / len(xs)<|fim_pad|><|fim_pad|>",
            "python",
            BLOCK,
            False,
            "return sum(xs) / len(xs)",
            id="python-block-special-token-ends-the-middle",
        ),
        pytest.param(
            "def mean(xs):\n    █\n",
            "return sum(xs) / len(xs\n",
            "python",
            BLOCK,
            True,
            None,
            id="python-block-eot-but-adds-a-syntax-error-dropped",
        ),
        pytest.param(
            "def greet(name):\n    █return msg\n",
            "msg = f'Hallo, {name}! Schön dich zu sehen'\n",
            "python",
            BLOCK,
            True,
            "msg = f'Hallo, {name}! Schön dich zu sehen'\n    ",
            id="python-block-before-code-keeps-the-indentation-non-ascii",
        ),
        pytest.param(
            "def f(xs):\n█        return xs\n",
            "    if xs:",
            "python",
            BLOCK,
            True,
            "    if xs:\n",
            id="python-block-whole-line-insert-gets-a-newline",
        ),
        pytest.param(
            "def has_close(xs, t):\n    █                return True\n    return False\n",
            "for i in range(len(xs)):\n        for j in range(i):\n            if abs(xs[i] - xs[j]) < t:\n"
            "                return True\n    return False\n",
            "python",
            BLOCK,
            False,
            "for i in range(len(xs)):\n        for j in range(i):\n"
            "            if abs(xs[i] - xs[j]) < t:\n    ",
            id="python-block-suffix-becomes-the-body-unexpected-indent-avoided",
        ),
        # --- Python, single lines ---
        pytest.param(
            "    for i in range(n):\n█        total += i\n",
            "        i = i * 2",
            "python",
            LINE,
            True,
            "        i = i * 2\n",
            id="python-line-at-line-start-gets-newline",
        ),
        pytest.param(
            "    if n > 1:█\n    return n\n",
            "\n        n -= 1\n        n -= 2\n",
            "python",
            LINE,
            False,
            "\n        n -= 1",
            id="python-line-next-line-after-eol",
        ),
        pytest.param(
            "    n = 2 * n█\n    return n\n",
            " \n    n += 1\n    return n\n",
            "python",
            LINE,
            False,
            "\n    n += 1",
            id="python-line-no-trailing-spaces-before-the-next-line",
        ),
        pytest.param(
            "    if n > 1:█    return n\n",
            "\n        n -= 1\n",
            "python",
            LINE,
            True,
            "\n        n -= 1\n",
            id="python-line-next-line-before-joined-text-gets-newline",
        ),
        pytest.param(
            "print(█)\n",
            '"done")\n',
            "python",
            LINE,
            True,
            '"done"',
            id="python-line-closer-the-suffix-has-trimmed",
        ),
        pytest.param(
            "values = [len(█)]\n",
            "word)]",
            "python",
            LINE,
            True,
            "word",
            id="python-line-all-closers-the-suffix-has-trimmed",
        ),
        pytest.param(
            "    for i in range(█, n):\n",
            "0, n):\n        total += i",
            "python",
            LINE,
            False,
            "0",
            id="python-line-model-rewrote-the-rest-of-the-line",
        ),
        pytest.param(
            "total = sum(█\n",
            "price * qty for price, qty in ite",
            "python",
            LINE,
            False,
            None,
            id="python-line-never-ended-dropped",
        ),
        pytest.param(
            "total = sum(█\n",
            "price * qty for price, qty in items)",
            "python",
            LINE,
            True,
            "price * qty for price, qty in items)",
            id="python-line-ended-by-eot-kept",
        ),
        pytest.param(
            "    for i in range(█) if i % 2]\n",
            "len(xs)):\n        if xs[i] > 0:\n            yield i",
            "python",
            LINE,
            True,
            "len(xs)):",
            id="python-line-eot-multiline-that-breaks-the-file-keeps-first-line",
        ),
        pytest.param("x = fo█o\n", "bar", "python", NONE, True, None, id="none-shape-shows-nothing"),
        # --- TypeScript ---
        pytest.param(
            TS_ADD,
            "return a + b;\n}\n\nexport function sub(a: number, b: number): number {\n  return a - b;\n}\n",
            "typescript",
            BLOCK,
            False,
            "return a + b;",
            id="ts-block-closing-brace-the-suffix-has-removed",
        ),
        pytest.param(
            "const names = users.map((u) => █);\n",
            "u.name);\n",
            "typescript",
            LINE,
            True,
            "u.name",
            id="ts-line-closers-trimmed",
        ),
        # --- Go ---
        pytest.param(
            GO_DOUBLE_EOF,
            "return x * 2\n}\n\nfunc main() {\n\tfmt.Println(double(2))\n}\n",
            "go",
            BLOCK,
            False,
            "return x * 2\n}\n",
            id="go-block-closing-brace-kept-when-the-suffix-lacks-it",
        ),
        pytest.param(
            "package main\n\nfunc main() {\n\tif ok {█\n\t}\n}\n",
            '\n\t\tfmt.Println("ok")\n\t}\n\tfmt.Println("done")\n',
            "go",
            BLOCK,
            False,
            '\n\t\tfmt.Println("ok")',
            id="go-block-stops-at-the-end-of-its-block",
        ),
        # --- Rust ---
        pytest.param(
            "fn main() {\n    let total = 3;\n    println!(█);\n}\n",
            '"{}", total);\n}\n',
            "rust",
            LINE,
            False,
            '"{}", total',
            id="rust-line-closers-trimmed",
        ),
        pytest.param(
            "fn area(w: u32, h: u32) -> u32 {\n    █\n}\n",
            "let a = w * h;\n    a\n}\n\nfn main() {}\n",
            "rust",
            BLOCK,
            False,
            "let a = w * h;\n    a",
            id="rust-block-lifetimes-do-not-confuse-brackets",
        ),
        # --- Java ---
        pytest.param(
            JAVA_SQUARE,
            "return x * x;\n    }\n}\n```\n\nThis method squares its argument.",
            "java",
            BLOCK,
            False,
            "return x * x;",
            id="java-block-fence-prose-and-closers-cut",
        ),
        pytest.param(
            "class Primes {\n    static boolean isPrime(int n) {\n        return n > 1;█}\n",
            "\n    }\n}\n",
            "java",
            LINE,
            True,
            "\n    }\n",
            id="java-line-spanning-the-hole-without-the-suffix-closing-brace-again",
        ),
        pytest.param(
            "class Primes {\n    static boolean isPrime(int n) {\n        return n > 1;\n█}\n",
            "    }\n}\n",
            "java",
            BLOCK,
            True,
            "    }\n",
            id="java-block-mending-the-file-beats-a-longer-cut-with-another-error",
        ),
        # --- C ---
        pytest.param(
            C_MAX,
            "return a > b ? a : b;\n}\n<|file_sep|>main.c\nint main(void)",
            "c",
            BLOCK,
            False,
            "return a > b ? a : b;",
            id="c-block-file-separator-ends-the-middle",
        ),
        pytest.param(
            C_MAX,
            "if (a > b) {\n        return a;\n    }\n    return b;\n}\n",
            "c",
            BLOCK,
            True,
            "if (a > b) {\n        return a;\n    }\n    return b;",
            id="c-block-inner-braces-are-kept",
        ),
        # --- Ruby ---
        pytest.param(
            RUBY_EACH,
            "puts w.upcase\n  end\nend\n",
            "ruby",
            BLOCK,
            False,
            "puts w.upcase",
            id="ruby-block-end-the-suffix-has-removed",
        ),
        pytest.param(
            "def shout(words)\n  words.each do |w|\n    █",
            "puts w.upcase\n  end\nend\n\ndef whisper(words)\n",
            "ruby",
            BLOCK,
            False,
            "puts w.upcase\n  end\n",
            id="ruby-block-closing-end-kept-at-end-of-file-but-not-past-its-block",
        ),
        # --- a remark on the line just written is not what the user was about to type ---
        pytest.param(
            "def largest(xs):\n    best = max(xs)█\n    return best\n",
            "  # the largest value\n    xs.remove(best)\n",
            "python",
            BLOCK,
            True,
            "\n    xs.remove(best)",
            id="python-end-of-line-comment-before-the-next-line-dropped",
        ),
        pytest.param(
            "function largest(xs) {\n  const best = Math.max(...xs);█\n  return best;\n}\n",
            " // the largest\n  xs.splice(xs.indexOf(best), 1);\n",
            "javascript",
            BLOCK,
            True,
            "\n  xs.splice(xs.indexOf(best), 1);",
            id="javascript-end-of-line-comment-dropped",
        ),
        pytest.param(
            "def has_close(xs, threshold):\n    for x in xs:\n        if x < threshold:█    return False\n",
            "  # close enough\n            return True\n",
            "python",
            LINE,
            True,
            "\n            return True\n",
            id="python-line-before-code-comment-dropped-line-kept",
        ),
        pytest.param(
            "def largest(xs):\n    # the largest█\n    return max(xs)\n",
            " value of xs\n",
            "python",
            BLOCK,
            True,
            " value of xs",
            id="python-a-comment-being-written-goes-on",
        ),
        pytest.param(
            "class Sorts {\n    static void evens(List<Long> l, List<Long> even) {\n"
            "        Collections.sort(even);█\n        for (Long num : l) {\n            use(num);\n"
            "        }\n    }\n}\n",
            "\n        for (Long num : l) {\n            if (num % 2 == 0) {\n",
            "java",
            LINE,
            False,
            None,
            id="java-line-that-is-the-next-line-again-dropped",
        ),
        pytest.param(
            "def total(xs):\n    xs = sorted(xs)█\n    return sum(xs)\n",
            "\n    return sum(xs)\n",
            "python",
            LINE,
            True,
            None,
            id="python-line-that-is-the-next-line-again-dropped",
        ),
        pytest.param(
            "def total(xs):\n    xs = sorted(xs)█\n    return sum(xs)\n",
            "\n    xs = [x for x in xs if x]\n",
            "python",
            LINE,
            True,
            "\n    xs = [x for x in xs if x]",
            id="python-new-line-unlike-the-next-kept",
        ),
        # --- a line that opens a block the file does not fill comes with its body ---
        pytest.param(
            COUNT_TIMES,
            "0, len(text) - len(part) + 1):\n        if text[i:i + len(part)] == part:\n"
            "            times += 1\n\n    return times\n",
            "python",
            LINE,
            True,
            "0, len(text) - len(part) + 1):\n        if text[i:i + len(part)] == part:\n"
            "            times += 1",
            id="python-loop-header-with-its-body",
        ),
        pytest.param(
            COUNT_TIMES.replace("\n\n    return", "\n        times += 1\n    return"),
            "0, len(text)):\n        times += 1\n",
            "python",
            LINE,
            False,
            "0, len(text)):",
            id="python-loop-header-whose-body-follows-stays-a-line",
        ),
        pytest.param(
            "function abs(x) {\n    if (x < 0█\n    return x;\n}\n",
            ") {\n        x = -x;\n    }\n    return x;\n}\n",
            "javascript",
            LINE,
            True,
            ") {\n        x = -x;\n    }",
            id="javascript-if-with-its-body",
        ),
        pytest.param(
            COUNT_TIMES,
            "0, len(text)):\n        if text[i:i + len(part)] == part:\n            times += 1\n        el",
            "python",
            LINE,
            False,
            "0, len(text)):\n        if text[i:i + len(part)] == part:\n            times += 1",
            id="python-loop-body-cut-short-keeps-whole-lines",
        ),
        # --- a hole that ends inside a line ends where the model writes the code after it ---
        pytest.param(
            "def skip_marks(item):\n    for mark in it█tions = mark.args\n        else:\n"
            "            conditions = (mark.kwargs['condition'],)\n    return conditions\n",
            'em.iter_markers(name="skipif"):\n        if "condition" not in mark.kwargs:\n'
            "            conditions = mark.args\n        else:\n",
            "python",
            LINE,
            False,
            'em.iter_markers(name="skipif"):\n        if "condition" not in mark.kwargs:\n            condi',
            id="python-hole-ending-mid-word-on-a-later-line",
        ),
        pytest.param(
            "def f():\n    warn(\n        'old',\n        stackl█      )\n    return copy(x)\n",
            "evel=2,\n        )\n    return copy(x)\n",
            "python",
            LINE,
            False,
            "evel=2,\n  ",
            id="python-hole-ending-inside-the-next-lines-indentation",
        ),
        pytest.param(
            'func f() {\n\tzw, err := NewWriter(b, 6)\n\tif err █ter: %v", err)\n\t}\n\tuse(zw)\n}\n',
            '!= nil {\n\t\tt.Fatalf("NewWriter: %v", err)\n\t}\n\n',
            "go",
            LINE,
            False,
            '!= nil {\n\t\tt.Fatalf("NewWri',
            id="go-hole-ending-mid-word-found-by-the-rest-of-the-line",
        ),
        pytest.param(
            "def f():\n    warn(\n        'old',\n        stackl█      )\n    return copy(x)\n",
            "evel=2,\n  ",
            "python",
            LINE,
            True,
            "evel=2,\n  ",
            id="python-middle-ended-by-the-model-inside-the-next-lines-indentation-kept-as-written",
        ),
        pytest.param(
            "total = add(1, █)\n",
            "2\n",
            "python",
            LINE,
            True,
            "2",
            id="a-middle-the-model-ends-with-a-bare-line-break-mid-line-stays-one-line",
        ),
        pytest.param(
            "total = add(1, █)\n",
            "2)\n",
            "python",
            LINE,
            True,
            "2",
            id="closing-characters-the-line-already-has-trimmed",
        ),
        # --- no grammar ---
        pytest.param(
            "proc mean {xs} {\n    █\n}\n",
            "set n [llength $xs]\n    return n\n}\n",
            None,
            BLOCK,
            False,
            "set n [llength $xs]\n    return n",
            id="unknown-language-cuts-by-lines-and-braces",
        ),
    ],
)
def test_truncate_middle(marked, middle, language, shape, eot, expected):
    assert cut(marked, middle, language, shape, eot) == expected


@pytest.mark.parametrize(
    ("middle", "suffix", "before"),
    [
        pytest.param(
            '!= nil {\n\tt.Fatalf("NewWriter: %v", err)\n',
            'ter: %v", err)\n\t}\n',
            '!= nil {\n\tt.Fatalf("NewWri',
            id="rest-of-line",
        ),
        pytest.param(
            "a, b)\n    return x\n",
            ")\n    return x\n",
            "a, b",
            id="short-rest-of-line-reaches-into-the-next",
        ),
        pytest.param("2)\n", ")\n", None, id="too-little-code-to-tell"),
        pytest.param("a, c)\n    return y\n", ")\n    return x\n", None, id="not-written-out"),
    ],
)
def test_a_middle_ends_where_it_writes_out_the_start_of_the_suffix(middle, suffix, before):
    assert before_suffix(middle, suffix) == before


@pytest.mark.parametrize(
    ("language", "marked", "middle"),
    [
        pytest.param("python", PY_LOOP, "    for ch in word:\n        total += ch in 'aeiou'\n", id="python"),
        pytest.param("typescript", TS_ADD, "return a + b;\n}\n", id="typescript"),
        pytest.param("go", GO_DOUBLE_EOF, "return x * 2\n}\n", id="go"),
        pytest.param("java", JAVA_SQUARE, "return x * x;\n    }\n}\n", id="java"),
        pytest.param("c", C_MAX, "return a > b ? a : b;\n}\n", id="c"),
    ],
)
def test_truncated_block_leaves_the_file_parseable(language, marked, middle):
    prefix, suffix = marked.split(CURSOR)
    shown = truncate_middle(prefix, middle, suffix, language, BLOCK, reached_eot=True)
    assert shown
    tree = new_parser(language).parse((prefix + shown + suffix).encode())
    assert count_errors(tree.root_node) == 0


def test_errors_already_in_the_file_do_not_block_a_middle():
    """The user is mid-edit elsewhere (an unclosed call below): the middle is judged on what it adds."""
    marked = "def f(x):\n    █\n\n\ndef g(y):\n    return h(y\n"
    assert cut(marked, "return x + 1\n", "python", BLOCK, True) == "return x + 1"


# --- stopping early, and the pipeline end to end with a scripted model ---


@pytest.mark.parametrize(
    ("marked", "written", "language", "shape", "done"),
    [
        pytest.param(
            PY_LOOP,
            "    for ch in word:\n        total += 1\n",
            "python",
            BLOCK,
            False,
            id="block-still-going",
        ),
        pytest.param(
            PY_BODY_AT_END,
            "    return math.pi * r ** 2\n\n\ndef square(s):\n",
            "python",
            BLOCK,
            True,
            id="block-left-function",
        ),
        pytest.param(
            TS_ADD, "return a + b;\n}\n\nexport", "typescript", BLOCK, True, id="block-closed-its-block"
        ),
        pytest.param("def f():\n    █\n", "return 1\n```\n", "python", BLOCK, True, id="block-fence"),
        pytest.param(
            PY_LOOP,
            "    total = 1\n    return total\n",
            "python",
            BLOCK,
            False,
            id="block-one-suffix-line-is-not-proof-yet",
        ),
        pytest.param("x = compute(█\n", "a, b)\n", "python", LINE, True, id="line-ended-at-eol"),
        pytest.param("x = compute(█\n", "a, b", "python", LINE, False, id="line-not-ended"),
        pytest.param(
            "x = compute(█)\n", "a, b)\nmore", "python", LINE, False, id="line-mid-line-may-span-lines"
        ),
        pytest.param(
            "x = compute(█)\n",
            "a, b)\ny = 1\nz = 2\nw = 3\n",
            "python",
            LINE,
            True,
            id="line-mid-line-writing-on-past-a-hole",
        ),
        pytest.param(
            COUNT_TIMES, "0, len(text)):\n", "python", LINE, False, id="line-that-opened-a-block-goes-on"
        ),
        pytest.param(
            COUNT_TIMES,
            "0, len(text)):\n        times += 1\n\n\ndef other():\n",
            "python",
            LINE,
            True,
            id="line-that-opened-a-block-ends-with-the-block",
        ),
        pytest.param(
            "def f():\n    warn(\n        'old',\n        stackl█      )\n    return copy(x)\n",
            "evel=2,\n        )\n    return copy(",
            "python",
            LINE,
            True,
            id="line-mid-line-that-wrote-the-code-after-the-hole",
        ),
        pytest.param(
            "def f():\n    warn(\n        'old',\n        stackl█      )\n    return copy(x)\n",
            "evel=2,\n        )\n    return",
            "python",
            LINE,
            False,
            id="line-mid-line-not-yet-far-enough-into-the-code-after-the-hole",
        ),
        pytest.param("tot█al", "", "python", NONE, True, id="none-is-done"),
    ],
)
def test_middle_is_done(marked, written, language, shape, done):
    prefix, suffix = marked.split(CURSOR)
    assert middle_is_done(prefix, written, suffix, language, shape) is done


class ScriptedEngine(Engine):
    """Writes a fixed middle a few characters per 'token', honouring on_text, as the real engine does."""

    def __init__(self, middle: str, eot: bool) -> None:
        self.template = template_for_family("qwen2.5-coder")
        self.middle, self.eot = middle, eot
        self.written = ""

    def count_tokens(self, text: str) -> int:
        return (len(text) + 3) // 4

    def generate(self, request: GenerationRequest) -> Generation:
        text = ""
        for start in range(0, len(self.middle), 3):
            text = self.middle[: start + 3]
            if request.on_text is not None and request.on_text(text):
                self.written = text
                return Generation(text, "stop", generated_tokens=start // 3 + 1)
        self.written = text
        return Generation(text, "eot" if self.eot else "length", generated_tokens=len(self.middle) // 3)


def test_pipeline_cuts_a_model_that_does_not_stop():
    text = "import math\n\n\ndef area(r):\n    \n\n\ndef main():\n    print(area(2))\n"
    offset = text.index("    \n") + 4
    engine = ScriptedEngine(
        "return math.pi * r ** 2\n\n\ndef perimeter(r):\n    return 2 * math.pi * r\n" * 3, False
    )
    completion = complete(CompletionRequest(text, offset, "python", "shapes.py"), Settings(), engine)
    assert completion.shape is Shape.BLOCK
    assert completion.text == "return math.pi * r ** 2"
    assert completion.reason == "stop"
    assert len(engine.written) < 60  # generation stopped once the middle had left its function


class TimedEngine(ScriptedEngine):
    """A scripted engine that says how fast it is and how much of the prompt its cache lacks."""

    def __init__(self, middle: str, eot: bool, writing: float, uncached: int = 1000) -> None:
        super().__init__(middle, eot)
        self.writing, self.uncached = writing, uncached

    def prompt_rate(self) -> float | None:
        return 100.0

    def write_rate(self) -> float | None:
        return self.writing

    def uncached_tokens(self, prompt: FimPrompt) -> int | None:
        return self.uncached  # 1000: 10 s of the 15 s time budget


TWO_LINES = "total += x\n        count += 1\n"
AMID = "    for x in xs:\n        █\n        print(x)\n"
AT_THE_END = "    for x in xs:\n        █\n    return total\n"


@pytest.mark.parametrize(
    ("marked", "writing", "shape", "text"),
    [
        # Between lines of a block, a machine that cannot write a block in the 5 s left gets one line.
        pytest.param(AMID, 5.0, Shape.LINE, "total += x", id="slow"),
        pytest.param(AMID, 50.0, Shape.BLOCK, TWO_LINES.rstrip(), id="fast"),
        # At the end of the block what follows the cursor is the model's to write.
        pytest.param(AT_THE_END, 5.0, Shape.BLOCK, TWO_LINES.rstrip(), id="end"),
    ],
)
def test_pipeline_asks_for_a_line_where_a_block_would_come_late(marked, writing, shape, text):
    document = "def f(xs):\n    total = count = 0\n" + marked
    offset = document.index("█")
    engine = TimedEngine(TWO_LINES, True, writing)
    request = CompletionRequest(document.replace("█", ""), offset, "python", "t.py")
    completion = complete(request, Settings(), engine)
    assert completion.shape is shape
    assert completion.text == text


def test_where_the_user_types_a_block_must_come_as_soon_as_a_line():
    document = "def f(xs):\n    total = count = 0\n    for x in xs:\n        \n        print(x)\n"
    request = CompletionRequest(document, document.index("        \n") + 8, "python", "t.py")
    # The prompt evaluated already; 10 tokens a second write a block in the time budget, not in 2 s.
    engine = TimedEngine(TWO_LINES, True, writing=10.0, uncached=0)
    assert complete(request, Settings(), engine).shape is Shape.BLOCK
    typing = complete(replace(request, typing=True), Settings(), engine)
    assert (typing.shape, typing.text) == (Shape.LINE, "total += x")


def test_pipeline_single_line_mid_line():
    text = "const names = users.map((u) => );\n"
    offset = text.index(");")
    engine = ScriptedEngine("u.name);\n", True)
    completion = complete(CompletionRequest(text, offset, "typescript", "a.ts"), Settings(), engine)
    assert completion.shape is Shape.LINE
    assert completion.text == "u.name"


def test_inside_a_word_the_model_is_asked_and_may_say_the_word_is_whole():
    class Recording(ScriptedEngine):
        def generate(self, request: GenerationRequest) -> Generation:
            self.request = request
            return super().generate(request)

    whole = Recording("", True)
    completion = complete(CompletionRequest("total = 1\n", 2, "python"), Settings(), whole)
    assert completion.shape is Shape.LINE and completion.text is None
    # An end of text at once is the model saying the word is whole: not overridden there.
    assert not whole.request.write_something
    finished = Recording("a", True)
    text = "totl = 1\nprint(total)\n"
    assert complete(CompletionRequest(text, 3, "python"), Settings(), finished).text == "a"
    assert finished.request.write_something is False


def test_pipeline_types_the_indentation_the_code_above_fixes():
    """At column 0 under a docstring-only body, the prompt ends with the body's indentation and the
    shown middle starts with it."""

    class Recording(ScriptedEngine):
        def generate(self, request: GenerationRequest) -> Generation:
            self.prompt = self.template.render(request.prompt)
            return super().generate(request)

    text = 'def area(r):\n    """Area of a circle."""\n\n\ndef main():\n    print(area(2))\n'
    offset = text.index('"""\n') + 4
    engine = Recording("return 3.14159 * r * r\n\n\ndef perimeter(r):\n", False)
    completion = complete(CompletionRequest(text, offset, "python", "shapes.py"), Settings(), engine)
    # SPM: the prefix ends the prompt, its trailing spaces held back for the model to write.
    assert engine.prompt.endswith('"""Area of a circle."""\n')
    assert completion.text == "    return 3.14159 * r * r"


def test_pipeline_drops_a_second_indentation_the_model_adds():
    text = "def total(xs):\n    for x in xs:\n\n    return 0\n"
    offset = text.index("xs:\n") + 4
    engine = ScriptedEngine("    yield x\n", True)  # indented again after the typed "        "
    completion = complete(CompletionRequest(text, offset, "python", "t.py"), Settings(), engine)
    assert completion.text == "        yield x"


class PromptRecorder(ScriptedEngine):
    def __init__(self, middle: str, eot: bool, family: str = "qwen2.5-coder") -> None:
        super().__init__(middle, eot)
        self.template = template_for_family(family)

    def generate(self, request: GenerationRequest) -> Generation:
        self.prompt = self.template.render(request.prompt)
        return super().generate(request)


def workspace_of(*snippets: RepoFile, asked: list[int] | None = None) -> WorkspaceContext:
    def find(budget: int, count_tokens: Callable[[str], int]) -> list[RepoFile]:
        if asked is not None:
            asked.append(budget)
        return list(snippets)

    return WorkspaceContext(repo="shop", path="app/orders.py", snippets=find)


ORDERS = (
    "from app.money import cents\n\n\ndef order_total(order):\n    return █\n\n\n"
    "def refund(order):\n    return -order_total(order)\n"
)
MONEY = RepoFile("app/money.py", "def cents(amount):\n    return round(amount * 100)\n")


def test_workspace_snippets_come_first_in_the_repository_format():
    text, offset = ORDERS.replace(CURSOR, ""), ORDERS.index(CURSOR)
    engine = PromptRecorder("cents(order.amount)\n", True)
    asked: list[int] = []
    request = CompletionRequest(
        text, offset, "python", "orders.py", workspace=workspace_of(MONEY, asked=asked)
    )
    completion = complete(request, Settings(workspace_context=True), engine)
    assert engine.prompt.startswith(
        "<|repo_name|>shop\n<|file_sep|>app/money.py\ndef cents(amount):\n    return round(amount * 100)\n"
        "<|file_sep|>app/orders.py\n<|fim_prefix|><|fim_suffix|>"
    )
    assert engine.prompt.endswith(
        "<|fim_middle|>from app.money import cents\n\n\ndef order_total(order):\n    return"
    )
    assert asked == [int(Settings().budget_cap * Settings().workspace_context_share)]
    assert completion.text == "cents(order.amount)"


def test_workspace_snippets_become_comments_for_a_family_without_a_repository_format():
    text, offset = ORDERS.replace(CURSOR, ""), ORDERS.index(CURSOR)
    engine = PromptRecorder("cents(order.amount)\n", True, family="codellama")
    request = CompletionRequest(text, offset, "python", "orders.py", workspace=workspace_of(MONEY))
    complete(request, Settings(workspace_context=True), engine)
    assert (
        "# app/money.py\n# def cents(amount):\n#     return round(amount * 100)\n\nfrom app.money"
        in engine.prompt
    )


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(Settings(workspace_context=False), id="setting-off"),
        pytest.param(Settings(workspace_context_share=0.0), id="no-share"),
    ],
)
def test_without_workspace_context_the_prompt_is_the_files_alone(settings):
    text, offset = ORDERS.replace(CURSOR, ""), ORDERS.index(CURSOR)
    with_workspace, alone = PromptRecorder("x\n", True), PromptRecorder("x\n", True)
    complete(
        CompletionRequest(text, offset, "python", "o.py", workspace=workspace_of(MONEY)),
        settings,
        with_workspace,
    )
    complete(CompletionRequest(text, offset, "python", "o.py"), settings, alone)
    assert with_workspace.prompt == alone.prompt
    assert alone.prompt.startswith("<|fim_prefix|>")


def test_a_failing_workspace_costs_the_snippets_not_the_completion():
    def broken(budget: int, count_tokens: Callable[[str], int]) -> list[RepoFile]:
        raise OSError("index gone")

    text, offset = ORDERS.replace(CURSOR, ""), ORDERS.index(CURSOR)
    engine = PromptRecorder("cents(order.amount)\n", True)
    workspace = WorkspaceContext(repo="shop", path="app/orders.py", snippets=broken)
    completion = complete(
        CompletionRequest(text, offset, "python", "o.py", workspace=workspace), Settings(), engine
    )
    assert completion.text == "cents(order.amount)"
    assert engine.prompt.startswith("<|fim_prefix|>")


def test_the_prompt_is_split_for_tokenization_at_the_suffixs_second_line():
    class Splits(ScriptedEngine):
        def generate(self, request: GenerationRequest) -> Generation:
            self.pieces = self.template.pieces(request.prompt)
            return super().generate(request)

    text = "def area(r):\n    return 3.14 * r * r    \n\n\ndef main():\n    print(area(2))\n"
    offset = text.index("3.14")
    engine = Splits("3.14159\n", True)
    complete(CompletionRequest(text, offset, "python", "shapes.py"), Settings(), engine)
    # The spaces before the first line break tokenize with it, the blank lines after it are one run of
    # breaks; the next line with text starts afresh.
    first, rest = engine.pieces
    assert first.endswith("3.14 * r * r    \n\n\n")
    assert rest.startswith("def main():")


def test_with_nothing_after_the_cursor_the_prompt_is_psm():
    text = 'def total(xs):\n    """The sum of xs."""\n\n'
    engine = PromptRecorder("    return sum(xs)\n", True)
    complete(CompletionRequest(text, len(text), "python", "t.py"), Settings(), engine)
    assert engine.prompt.startswith("<|fim_prefix|>def total(xs):")
    assert engine.prompt.endswith("<|fim_suffix|><|fim_middle|>")


@pytest.mark.parametrize(
    ("marked", "written", "shown"),
    [
        pytest.param(
            "def f(x):\n    █\n\n\nprint(f(2))\n", "    return x * 2\n", "return x * 2", id="indentation"
        ),
        pytest.param("def f(x):\n    y = █\n    return y\n", " x * 2\n", "x * 2", id="space-after-equals"),
        pytest.param("def f(x):\n    y = █\n    return y\n", "x * 2\n", "x * 2", id="model-wrote-no-space"),
    ],
)
def test_spaces_ending_an_spm_prefix_are_held_back_and_written_by_the_model(marked, written, shown):
    text, offset = marked.replace(CURSOR, ""), marked.index(CURSOR)
    engine = PromptRecorder(written, True)
    completion = complete(CompletionRequest(text, offset, "python", "f.py"), Settings(), engine)
    assert not engine.prompt.endswith(" ")
    assert completion.text == shown


@pytest.mark.parametrize(
    ("marked", "heals"),
    [
        pytest.param("for op in o█:\n    pass\n", True, id="half-typed-word-spm"),
        pytest.param("settings = js█\nprint(settings)\n", True, id="word-at-end-of-line-spm"),
        pytest.param("x = max(a, █)\n", False, id="after-a-space-held-back"),
        pytest.param("x = max(█)\n", False, id="after-a-bracket"),
        pytest.param("values = [1, 2]\ntotal = val█", False, id="nothing-after-the-cursor-is-psm"),
    ],
)
def test_pipeline_asks_for_healing_only_right_after_a_word(marked, heals):
    class Heals(ScriptedEngine):
        def generate(self, request: GenerationRequest) -> Generation:
            self.heal_word_end = request.heal_word_end
            return super().generate(request)

    prefix, suffix = marked.split(CURSOR)
    engine = Heals("x\n", True)
    complete(CompletionRequest(prefix + suffix, len(prefix), "python", "t.py"), Settings(), engine)
    assert engine.heal_word_end is heals
