"""The prompt's context: cut at block boundaries within the token budget, imports and headers kept."""

from __future__ import annotations

import itertools
import time

import pytest

from fim_lsp.context import WINDOW_START_GRID, cut_context
from fim_lsp.syntax import DocumentSyntax

CURSOR = "█"


def tokens(text: str) -> int:
    """A stand-in tokenizer: about four characters a token, as code averages."""
    return (len(text) + 3) // 4


def split_cursor(marked: str) -> tuple[str, int]:
    return marked.replace(CURSOR, ""), marked.index(CURSOR)


def python_module(cursor_method: int = 20, methods: int = 30) -> str:
    body = "".join(
        f"    def method_{n}(self, x):\n        y = x + {n}\n"
        + ("        █return y * 2\n" if n == cursor_method else "        return y * 2\n")
        + "\n"
        for n in range(methods)
    )
    return (
        'import os\nfrom typing import Any\n\n\nclass Big:\n    """A big class."""\n\n'
        + body
        + "\ndef tail():\n    return 1\n"
    )


GO_FILE = 'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\n' + "".join(
    f"func f{n}(x int) int {{\n\ty := x + {n}\n\treturn y\n}}\n\n" for n in range(20)
).replace("func f15(x int) int {\n\ty := x + 15\n", "func f15(x int) int {\n\ty := x + 15\n\t█")

TS_FILE = (
    'import { readFile } from "fs";\nimport * as path from "path";\n\n'
    "export class Store {\n"
    + "".join(f"  get{n}(key: string): number {{\n    return {n};\n  }}\n\n" for n in range(25)).replace(
        "  get18(key: string): number {\n    return 18;", "  get18(key: string): number {\n    █return 18;"
    )
    + "}\n"
)


@pytest.mark.parametrize(
    ("language", "marked", "pinned"),
    [
        pytest.param(
            "python", python_module(), "import os\nfrom typing import Any\nclass Big:\n", id="python"
        ),
        pytest.param("go", GO_FILE, 'package main\nimport (\n\t"fmt"\n\t"os"\n)\n', id="go"),
        pytest.param(
            "typescript",
            TS_FILE,
            'import { readFile } from "fs";\nimport * as path from "path";\nexport class Store {\n',
            id="typescript",
        ),
    ],
)
@pytest.mark.parametrize("with_tree", [True, False], ids=["tree", "no-tree"])
def test_imports_and_enclosing_headers_are_kept_above_the_window(language, marked, pinned, with_tree):
    text, offset = split_cursor(marked)
    syntax = DocumentSyntax(language, text) if with_tree else None
    context = cut_context(text, offset, budget=250, suffix_share=0.25, count_tokens=tokens, syntax=syntax)
    assert context.pinned == pinned
    assert context.prefix.startswith(pinned)
    # The rest is one contiguous piece of the document, starting and ending on whole lines.
    assert context.prefix[len(pinned) :] == text[context.prefix_start : offset]
    assert context.suffix == text[offset : context.suffix_end]
    assert context.prefix_start == 0 or text[context.prefix_start - 1] == "\n"
    assert context.suffix_end == len(text) or text[context.suffix_end - 1] == "\n"
    assert tokens(context.prefix) + tokens(context.suffix) <= 250 + 10  # per-line counts round up a little


@pytest.mark.parametrize(
    ("language", "marked", "first_line"),
    [
        pytest.param("python", python_module(), "    def method_", id="python-starts-at-a-method"),
        pytest.param("go", GO_FILE, "func f", id="go-starts-at-a-function"),
        pytest.param("typescript", TS_FILE, "  get", id="typescript-starts-at-a-method"),
    ],
)
def test_window_drops_whole_siblings(language, marked, first_line):
    text, offset = split_cursor(marked)
    context = cut_context(text, offset, budget=250, suffix_share=0.25, count_tokens=tokens)
    window = text[context.prefix_start : offset]
    assert window.startswith(first_line), window[:80]
    assert len(window) > 200  # the budget was used, not thrown away


@pytest.mark.parametrize(
    ("language", "marked"),
    [
        pytest.param("python", python_module(), id="python"),
        pytest.param("go", GO_FILE, id="go"),
        pytest.param("typescript", TS_FILE, id="typescript"),
    ],
)
def test_suffix_ends_after_a_whole_unit(language, marked):
    text, offset = split_cursor(marked)
    context = cut_context(text, offset, budget=250, suffix_share=0.25, count_tokens=tokens)
    last = context.suffix.rstrip("\n").rsplit("\n", 1)[-1]
    following = text[context.suffix_end :].lstrip("\n").split("\n", 1)[0]
    if language == "python":
        assert last.startswith("        return")  # a method's last line
    else:
        assert last.strip() == "}"  # its closing line is in
    assert not following.startswith((" " * 8, "\t\t")), following  # the next line is no body line


def test_cut_is_stable_while_the_user_types_on_the_line():
    """The default budget; the line grows by a dozen tokens, broken code in between."""
    text, offset = split_cursor(python_module(cursor_method=60, methods=100))
    seen = set()
    for typed in ["", "r", "re", "result = (", "result = (1,", "result = (1, 2) + compute(y, z"]:
        edited = text[:offset] + typed + text[offset:]
        syntax = DocumentSyntax("python", edited)
        context = cut_context(edited, offset + len(typed), 1536, 0.25, tokens, syntax=syntax)
        assert context.prefix_start > 0
        seen.add((context.pinned, context.prefix_start, context.suffix_end - len(typed)))
    assert len(seen) == 1


def test_small_file_is_kept_whole_without_pinning():
    marked = "import os\n\n\ndef f():\n    █return os.sep\n"
    text, offset = split_cursor(marked)
    context = cut_context(text, offset, 1000, 0.25, tokens, syntax=DocumentSyntax("python", text))
    assert context.pinned == ""
    assert context.prefix + context.suffix == text


HELPER_THEN_TASK = '''

def is_palindrome(text: str) -> bool:
    """ Test if the given text is a palindrome """
    return text == text[::-1]


def make_palindrome(text: str) -> str:
    """ The shortest palindrome that begins with the given text.
    Find the longest postfix of the text that is a palindrome, and append to the end of
    the text the reverse of the prefix that comes before it.
    >>> make_palindrome('')
    ''
    >>> make_palindrome('cat')
    'catac'
    >>> make_palindrome('cata')
    'catac'
    """
    if not text:
        return ''
    beginning_of_suffix = 0
    while not is_palindrome(text[beginning_of_suffix:]):
        beginning_of_suffix += 1
    █return text + text[:beginning_of_suffix][::-1]
'''


@pytest.mark.parametrize("with_tree", [True, False], ids=["tree", "no-tree"])
def test_a_file_that_fits_is_whole_though_it_starts_with_blank_lines(with_tree):
    # The HumanEval prompts start so: a window that reaches the first line of code must not be moved down
    # the grid of window starts, which would drop the helper the cursor's code calls (or cut a docstring in
    # two, leaving the rest of the file inside a string).
    text, offset = split_cursor(HELPER_THEN_TASK)
    syntax = DocumentSyntax("python", text) if with_tree else None
    context = cut_context(text, offset, 1000, 0.25, tokens, syntax=syntax)
    assert context.prefix == text[:offset].lstrip("\n")
    assert context.suffix == text[offset:]


def documented_module() -> str:
    helpers = "".join(f"def helper_{n}(x):\n    y = x * {n}\n    return y + {n}\n\n\n" for n in range(12))
    notes = "".join(f"    line {n} of what the parser reads, and what it returns.\n" for n in range(24))
    return (
        "import re\n\n\n"
        + helpers
        + 'def parse(text):\n    """Parse `text` into records.\n\n'
        + notes
        + '    """\n    records = []\n    for line in text.splitlines():\n        █records.append(line)\n'
        + "    return records\n"
    )


def test_a_window_starting_inside_a_docstring_keeps_its_opening_line():
    text, offset = split_cursor(documented_module())
    syntax = DocumentSyntax("python", text)
    opening_row, closing_row = (text[: text.index(mark)].count("\n") for mark in ('"""Parse', '    """\n'))
    opening_line = text.splitlines(keepends=True)[opening_row]
    started_inside = 0
    for budget in range(120, 600, 8):
        context = cut_context(text, offset, budget, 0.25, tokens, syntax=syntax)
        if opening_row < text[: context.prefix_start].count("\n") <= closing_row:
            started_inside += 1
            assert opening_line in context.pinned, budget
        # Every docstring the model sees is closed before the cursor, as in the file.
        assert context.prefix.count('"""') % 2 == 0, budget
    # Indentation alone cannot tell the docstring's lines from code: windows do start inside it.
    assert started_inside > 0


def test_without_a_tree_a_window_may_start_inside_a_docstring():
    text, offset = split_cursor(documented_module())
    counts = {
        cut_context(text, offset, budget, 0.25, tokens).prefix.count('"""') % 2
        for budget in range(120, 600, 8)
    }
    assert counts == {0, 1}  # the case the tree is for


def test_a_cursor_inside_a_docstring_sees_the_docstring_open():
    marked = documented_module().replace("█", "").replace("    line 20 of", "    █line 20 of")
    text, offset = split_cursor(marked)
    context = cut_context(text, offset, 200, 0.25, tokens, syntax=DocumentSyntax("python", text))
    assert "line 12 of" in context.prefix  # the docstring's lines above the cursor are its context
    assert context.prefix.count('"""') % 2 == 1  # and the cursor is inside it, as in the file


def test_unused_prefix_budget_goes_to_the_suffix_also_after_blank_lines_at_the_top():
    body = "".join(f"def g{n}():\n    return {n}\n\n" for n in range(40))
    text = "\n\n\ndef first():\n    return 0\n\n" + body
    offset = text.index("return 0")
    context = cut_context(text, offset, budget=400, suffix_share=0.1, count_tokens=tokens)
    assert context.prefix == "def first():\n    "
    assert tokens(context.suffix) > 0.5 * 400


def test_unused_prefix_budget_goes_to_the_suffix():
    body = "".join(f"def g{n}():\n    return {n}\n\n" for n in range(40))
    text = "def first():\n    return 0\n\n" + body
    offset = text.index("return 0")
    context = cut_context(text, offset, budget=400, suffix_share=0.1, count_tokens=tokens)
    assert context.prefix_start == 0
    assert tokens(context.suffix) > 0.5 * 400


def test_a_statement_bigger_than_the_budget_falls_back_to_whole_lines():
    lines = "".join(f"        total += values[{n}]\n" for n in range(200))
    text = "def f(values):\n    total = 0\n    if values:\n" + lines + "        █return total\n"
    text, offset = split_cursor(text)
    context = cut_context(text, offset, budget=100, suffix_share=0.25, count_tokens=tokens)
    window = text[context.prefix_start : offset]
    assert window.startswith("        total += values[")
    assert 50 < tokens(window) <= 100
    assert context.pinned == "def f(values):\n    if values:\n"


def test_without_code_structure_it_is_whole_lines():
    text = "".join(f"line_{n} = {n}\n" for n in range(100))
    offset = text.index("line_50")
    context = cut_context(text, offset, budget=200, suffix_share=0.25, count_tokens=len)
    assert text[context.prefix_start : context.suffix_end] == context.prefix + context.suffix
    assert len(context.prefix) + len(context.suffix) <= 200


def test_a_stale_tree_is_ignored():
    text, offset = split_cursor(python_module())
    stale = DocumentSyntax("python", "import sys\n")
    context = cut_context(text, offset, 250, 0.25, tokens, syntax=stale)
    assert "import sys" not in context.prefix


def test_long_document_is_cut_quickly():
    text = "".join(f"def f{n}(x):\n    y = x + {n}\n    return y\n\n" for n in range(100_000))  # 4.7 MB
    offset = text.index("    return y", len(text) // 2)
    started = time.perf_counter()
    context = cut_context(text, offset, 1536, 0.25, tokens)
    assert time.perf_counter() - started < 0.5
    assert 1000 < tokens(context.prefix) + tokens(context.suffix) <= 1536 + 20


def test_prompt_ends_stay_put_while_new_lines_are_typed():
    # A long flat script: every line may start the window, so without anchoring the window's first row
    # would move down with each line typed, and with it the start of the prompt.
    lines = [f"total_{n} = compute({n}, factor={n % 7})\n" for n in range(400)]
    row = 300
    starts, suffixes = [], set()
    text = "".join(lines)
    for typed in range(WINDOW_START_GRID):
        offset = sum(len(line) for line in lines[:row])
        context = cut_context(text, offset, 512, 0.25, tokens)
        starts.append(text[context.prefix_start : context.prefix_start + 20])
        suffixes.add(context.suffix)
        # Type one more line at the cursor, as a person writing code does.
        line = f"typed_{typed} = compute({typed})\n"
        lines.insert(row, line)
        text = "".join(lines)
        row += 1
    # The start moves at most once every WINDOW_START_GRID lines typed.
    assert len(set(starts)) <= 2
    changes = sum(1 for a, b in itertools.pairwise(starts) if a != b)
    assert changes <= 1
    # The text after the cursor does not change as lines are typed, and neither does its cut: in SPM
    # order the suffix starts the prompt.
    assert len(suffixes) == 1


def test_a_line_far_over_the_budget_is_never_tokenized():
    """A 10 MB line above the cursor cannot fit any budget: it is left out without being counted (the
    real tokenizer took 6 s on it), and the lines around it are still used."""
    seen: list[int] = []

    def counting(text: str) -> int:
        seen.append(len(text))
        return tokens(text)

    blob = "DATA = [" + "1, " * 3_000_000 + "]\n"
    text, offset = split_cursor("import os\n" + blob + "\n\ndef double(x):\n    return █\n")
    context = cut_context(text, offset, 256, 0.25, counting)
    assert max(seen) <= 256 * 32
    assert context.prefix.endswith("def double(x):\n    return ") and "DATA" not in context.prefix


@pytest.mark.parametrize("share", [0.0, 0.25, 1.0])
def test_a_cursor_on_a_line_far_over_the_budget_gets_the_line_around_it(share):
    """Minified code: the cursor's line is cut around the cursor by characters, about three per budgeted
    token, and nothing of it is tokenized whole."""
    seen: list[int] = []

    def counting(text: str) -> int:
        seen.append(len(text))
        return tokens(text)

    line = "".join(f"function f{n}(a){{return a+{n}}};" for n in range(200_000))
    middle = len(line) // 2
    text = "// minified\n" + line[:middle] + line[middle:] + "\n"
    offset = len("// minified\n") + middle
    context = cut_context(text, offset, 512, share, counting)
    assert seen == []
    assert len(context.prefix) + len(context.suffix) == 512 * 3
    assert text[context.prefix_start : context.suffix_end] == context.prefix + context.suffix
    assert context.prefix_start <= offset <= context.suffix_end
