"""tree-sitter layer: languages, offline grammars, incremental parsing, and the cursor's completion shape."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fim_lsp.postprocess.artifacts
import fim_lsp.postprocess.block
import fim_lsp.postprocess.checker
import fim_lsp.postprocess.cursor
import fim_lsp.postprocess.line
import fim_lsp.postprocess.truncate
import fim_lsp.syntax.cursor
import fim_lsp.syntax.indentation
import fim_lsp.syntax.lines
from fim_lsp.completion import Shape
from fim_lsp.postprocess import middle_is_done, truncate_middle
from fim_lsp.syntax import (
    LANGUAGES,
    LINE_WINDOW_CHARS,
    MAX_TREE_CHARS,
    DocumentSyntax,
    block_goes_on,
    byte_offset,
    classify,
    count_errors,
    follow_document,
    indentation_to_type,
    language_of,
    new_parser,
    utf8,
)

CURSOR = "█"


def split_cursor(marked: str) -> tuple[str, int]:
    """The text without the cursor mark, and the cursor's offset."""
    return marked.replace(CURSOR, ""), marked.index(CURSOR)


# --- languages ---


@pytest.mark.parametrize(
    ("language_id", "path", "expected"),
    [
        pytest.param("python", None, "python", id="python-id"),
        pytest.param("typescriptreact", "app.tsx", "tsx", id="tsx-id"),
        pytest.param("javascriptreact", None, "javascript", id="jsx-id-uses-javascript-grammar"),
        pytest.param("shellscript", None, "bash", id="shellscript-id"),
        pytest.param("csharp", None, "csharp", id="csharp-id"),
        pytest.param("Go", None, "go", id="id-case-insensitive"),
        pytest.param("plaintext", "file:///home/u/src/main.rs", "rust", id="unknown-id-falls-back-to-uri"),
        pytest.param(None, "/src/lib/util.HPP", "cpp", id="extension-case-insensitive"),
        pytest.param(None, "script.sh", "bash", id="shell-extension"),
        pytest.param(None, "notes.txt", None, id="unknown-extension"),
        pytest.param(None, None, None, id="nothing-known"),
        pytest.param("markdown", "README.md", None, id="unsupported-language"),
    ],
)
def test_language_of(language_id, path, expected):
    assert language_of(language_id, path) == expected


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_grammar_parses(language):
    tree = new_parser(language).parse(b"x")
    assert tree.root_node is not None


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) to cut the network")
def test_grammars_load_with_the_network_cut():
    """The bundled grammars load in a process whose only network interface is loopback."""
    program = (
        "import socket\n"
        "names = [name for _, name in socket.if_nameindex()]\n"
        "assert names == ['lo'], names\n"
        "from fim_lsp.syntax import LANGUAGES, new_parser\n"
        "for name in sorted(LANGUAGES):\n"
        "    assert new_parser(name).parse(b'x = 1').root_node is not None, name\n"
        "print('parsed', len(LANGUAGES))\n"
    )
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n is not permitted here: {probe.stderr.decode().strip()}")
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"parsed {len(LANGUAGES)}"


# --- incremental parsing ---


def sexp(syntax: DocumentSyntax) -> str:
    return str(syntax.tree.root_node)


@pytest.mark.parametrize(
    ("language", "old", "new"),
    [
        pytest.param(
            "python", "def f(x):\n    return x\n", "def f(x):\n    return x + 1\n", id="python-append"
        ),
        pytest.param(
            "python", "s = 'héllo wörld'\nn = 1\n", "s = 'héllo wörld'\nn = 12\n", id="python-after-non-ascii"
        ),
        pytest.param("python", "s = 'ab'\n", "s = 'aéb'\n", id="python-insert-two-byte-char"),
        pytest.param("python", "s = 'a😀b'\nx = 1\n", "s = 'ab'\nx = 1\n", id="python-delete-four-byte-char"),
        pytest.param(
            "typescript",
            "const a = 1;\nfunction f(): number {\n  return a;\n}\n",
            "const a = 1;\nfunction f(): number {\n  return a * 2;\n}\n",
            id="typescript-edit-in-body",
        ),
        pytest.param(
            "go",
            "package main\n\nfunc main() {\n}\n",
            "package main\n\nfunc main() {\n\tx := 1\n}\n",
            id="go-insert-line",
        ),
        pytest.param(
            "rust",
            'fn main() { let s = "ü"; }\n',
            'fn main() { let s = "üü"; }\n',
            id="rust-same-char-repeated",
        ),
        pytest.param("java", "class A {}\n", "", id="java-delete-all"),
        pytest.param("c", "", "int main(void) { return 0; }\n", id="c-from-empty"),
    ],
)
def test_update_matches_a_fresh_parse(language, old, new):
    syntax = DocumentSyntax(language, old)
    syntax.update(new)
    assert syntax.text == new
    assert syntax.data == new.encode()
    assert sexp(syntax) == sexp(DocumentSyntax(language, new))


_ALPHABET = st.sampled_from([*"abc xyz_()[]{}:=+\n\t'\"", "é", "ü", "😀", "中"])


@settings(max_examples=60, deadline=None)
@given(
    base=st.text(_ALPHABET, max_size=60),
    edits=st.lists(
        st.tuples(st.integers(0, 80), st.integers(0, 5), st.text(_ALPHABET, max_size=6)),
        min_size=1,
        max_size=4,
    ),
)
def test_random_edits_keep_the_tree_equal_to_a_fresh_parse(base, edits):
    syntax = DocumentSyntax("python", base)
    text = base
    for position, removed, inserted in edits:
        position = min(position, len(text))
        text = text[:position] + inserted + text[position + removed :]
        syntax.update(text)
        assert sexp(syntax) == sexp(DocumentSyntax("python", text))


def test_update_of_a_large_document_is_incremental_and_fast():
    """Keystrokes in a ~3 MB document are absorbed well under the time of a full parse."""
    function = "def f{n}(x):\n    y = x * {n}\n    return y + 1\n\n\n"
    text = "".join(function.format(n=n) for n in range(60_000))
    started = time.perf_counter()
    syntax = DocumentSyntax("python", text)
    full_parse = time.perf_counter() - started
    middle = text.index("def f30000(")
    syntax.update(text[:middle] + "#\n" + text[middle:])
    edited = text[:middle] + "# é\n" + text[middle:]  # a second keystroke, with a two-byte character
    started = time.perf_counter()
    syntax.update(edited)
    update = time.perf_counter() - started
    assert syntax.error_count() == 0
    assert syntax.tree.root_node.named_child_count == 60_001
    comment = syntax.tree.root_node.named_children[30_000]
    assert comment.type == "comment" and comment.text == "# é".encode()
    assert update < full_parse / 2, (update, full_parse)


def test_follow_document_reparses_the_same_tree_incrementally():
    tree = follow_document(None, "python", "def f(x):\n    return x\n")
    assert tree is not None
    followed = follow_document(tree, "python", "def f(x):\n    return x + 1\n")
    assert followed is tree
    assert followed.text.endswith("x + 1\n") and followed.error_count() == 0


def test_follow_document_starts_over_when_the_language_changes():
    tree = follow_document(None, "python", "x = 1\n")
    followed = follow_document(tree, "javascript", "let x = 1;\n")
    assert followed is not tree and followed is not None and followed.language == "javascript"


@pytest.mark.parametrize(
    ("language", "text"),
    [
        pytest.param(None, "plain text", id="no-grammar"),
        pytest.param("python", "x = 1\n" * (MAX_TREE_CHARS // 6 + 1), id="too-long-to-keep-whole"),
    ],
)
def test_follow_document_keeps_no_tree(language, text):
    assert follow_document(None, language, text) is None


def test_a_lone_surrogate_is_parsed_not_raised():
    # JSON may carry "\\ud800"; the server's copy then holds a lone surrogate.
    tree = DocumentSyntax("python", "s = '\ud800'\n")
    tree.update("s = '\ud800x'\n")
    assert tree.node_at(6).type in {"string_content", "string", "ERROR"}
    assert byte_offset("\ud800x", 1) == 3


def test_node_at_uses_string_indices_on_non_ascii_lines():
    text = "name = 'Zoë'; total = 1\n"
    syntax = DocumentSyntax("python", text)
    node = syntax.node_at(text.index("total") + 1)
    assert node.type == "identifier"
    assert node.text == b"total"
    assert byte_offset(text, text.index("total")) == text.index("total") + 1  # ë is two bytes


@pytest.mark.parametrize(
    ("language", "text", "errors"),
    [
        pytest.param("python", "def f(x):\n    return x\n", 0, id="python-clean"),
        pytest.param("python", "def f(x):\n    return (x + 1\n", 1, id="python-unclosed-paren"),
        pytest.param("java", "class A { void f() { int x = 1 } }", 1, id="java-missing-semicolon"),
        pytest.param("go", "package main\nfunc main() {\n", 1, id="go-missing-brace"),
    ],
)
def test_count_errors(language, text, errors):
    assert count_errors(new_parser(language).parse(text.encode()).root_node) == errors


# --- the cursor's completion shape ---


@pytest.mark.parametrize(
    ("language", "marked", "shape"),
    [
        # one line inside a word: the model finishes it, or says it is whole
        pytest.param("python", "tot█al = compute(items)\n", Shape.LINE, id="python-inside-identifier"),
        pytest.param("go", "func main() {\n\tfmt.Pri█ntln(x)\n}\n", Shape.LINE, id="go-inside-call-name"),
        pytest.param(
            "c",
            'int main(void) {\n  puts("hel█lo");\n}\n',
            Shape.LINE,
            id="c-inside-word-in-string",
        ),
        # one line
        pytest.param("python", "result = compute(a, █)\n", Shape.LINE, id="python-inside-argument-list"),
        pytest.param("python", "result = compute(a,█\n", Shape.LINE, id="python-open-paren-at-eol"),
        pytest.param("python", "total = price *█\n", Shape.LINE, id="python-trailing-operator"),
        pytest.param("python", "    return █\n", Shape.LINE, id="python-after-return"),
        pytest.param("python", "x = 1  # the count of█\n", Shape.LINE, id="python-comment-at-eol"),
        pytest.param("python", 'doc = """\nsome notes █\n"""\n', Shape.LINE, id="python-inside-string"),
        pytest.param("typescript", "const total = items.reduce(█);\n", Shape.LINE, id="ts-inside-call"),
        pytest.param("go", "func main() {\n\tfmt.Println(█)\n}\n", Shape.LINE, id="go-inside-call"),
        pytest.param(
            "java",
            "class A {\n  int f(int x) {\n    // square it█\n  }\n}\n",
            Shape.LINE,
            id="java-line-comment",
        ),
        pytest.param("rust", "fn main() {\n    let v: Vec<i32> = █;\n}\n", Shape.LINE, id="rust-let-value"),
        # a block
        pytest.param("python", "def area(r):█\n", Shape.BLOCK, id="python-def-header-eol"),
        pytest.param("python", "def area(r):\n    █\n", Shape.BLOCK, id="python-empty-line-in-body"),
        pytest.param(
            "python",
            "def f(xs):\n█    return xs\n",
            Shape.BLOCK,
            id="python-line-start-with-code-after",
        ),
        pytest.param("python", "    total = 0█\n", Shape.BLOCK, id="python-finished-statement-eol"),
        pytest.param("python", "d = {'a':█\n", Shape.LINE, id="python-dict-colon-is-not-a-block"),
        pytest.param(
            "typescript",
            "function add(a: number, b: number): number {█\n}\n",
            Shape.BLOCK,
            id="ts-function-brace",
        ),
        pytest.param("go", "func main() {\n\t█\n}\n", Shape.BLOCK, id="go-empty-line-in-body"),
        pytest.param("rust", "fn main() {\n    for x in 0..3 {█\n}\n", Shape.BLOCK, id="rust-for-brace"),
        pytest.param("java", "switch (k) {\n  case 1:█\n}\n", Shape.BLOCK, id="java-case-label"),
        pytest.param("c", "int main(void) {\n  if (x > 0) {█\n}\n", Shape.BLOCK, id="c-if-brace"),
        pytest.param("ruby", "[1, 2].each do |x|█\nend\n", Shape.BLOCK, id="ruby-do-block"),
        pytest.param("lua", "for i = 1, 3 do█\nend\n", Shape.BLOCK, id="lua-for-do"),
        pytest.param("bash", "if [ -f x ]; then█\nfi\n", Shape.BLOCK, id="bash-then"),
        pytest.param("python", "█", Shape.BLOCK, id="empty-document"),
    ],
)
def test_classify(language, marked, shape):
    text, offset = split_cursor(marked)
    assert classify(DocumentSyntax(language, text), text, offset) is shape


@pytest.mark.parametrize(
    ("marked", "shape"),
    [
        pytest.param("tot█al = 1\n", Shape.LINE, id="inside-word"),
        pytest.param("f(a, █)\n", Shape.LINE, id="text-after"),
        pytest.param("x = 1  # why█\n", Shape.LINE, id="comment-at-eol"),
        pytest.param("if x {█\n", Shape.BLOCK, id="brace-at-eol"),
        pytest.param("def f():█\n", Shape.BLOCK, id="colon-at-eol"),
        pytest.param("f(a, b=lambda x:█\n", Shape.LINE, id="colon-inside-brackets"),
        pytest.param("\n█\n", Shape.BLOCK, id="empty-line"),
    ],
)
def test_classify_without_a_tree(marked, shape):
    text, offset = split_cursor(marked)
    assert classify(None, text, offset) is shape


def test_classify_ignores_a_tree_of_another_text():
    syntax = DocumentSyntax("python", "x = 'a string'\n")
    text, offset = split_cursor("x = 'a str█\n")
    # The stale tree says "inside a string"; the text alone says a finished statement at the line end.
    assert classify(syntax, text, offset) is Shape.BLOCK


def test_classify_clamps_the_offset():
    assert classify(None, "x = 1\n", 99) is Shape.BLOCK


@pytest.mark.parametrize(
    ("language", "marked", "typed", "goes_on"),
    [
        pytest.param(
            "python", "def f():\n    x = 1\n    █\n    return x\n", "", True, id="blank-line-mid-body"
        ),
        pytest.param(
            "python", "def f():\n    x = 1\n    █\n\n\ndef g():\n", "", False, id="blank-line-body-end"
        ),
        pytest.param("python", "def f():\n    █\n\nx = 1\n", "", False, id="empty-body"),
        pytest.param("python", "def f():\n    x = 1█\n    return x\n", "", True, id="statement-mid-body"),
        pytest.param("python", "def f():\n    return 1█\n\nx = 1\n", "", False, id="last-statement"),
        pytest.param("python", "def f():█\n    return 1\n", "", True, id="header-of-a-body"),
        pytest.param("python", "def f():█\n\nx = 1\n", "", False, id="header-of-no-body"),
        pytest.param("python", "def f():\n█\n    return 1\n", "    ", True, id="typed-indentation"),
        pytest.param("python", "if x:\n    if y:\n█\n    z()\n", "        ", False, id="typed-deeper"),
        pytest.param("go", "func f() {\n\tx := 1\n\t█\n}\n", "", False, id="go-before-brace"),
        pytest.param("go", "func f() {\n\t█\n\n\treturn\n}\n", "", True, id="go-mid-body"),
        pytest.param("python", "x = 1\n█", "", False, id="end-of-text"),
    ],
)
def test_block_goes_on(language, marked, typed, goes_on):
    text, offset = split_cursor(marked)
    assert block_goes_on(text, offset, language, typed) is goes_on


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("x = 1\n" * 3, id="ascii"),
        pytest.param("é = 'ü'\n😀 = 1\n", id="non-ascii"),
        pytest.param("a\ud800b\n", id="lone-surrogate"),
    ],
)
def test_byte_offset_counts_utf8_bytes(text):
    for offset in range(len(text) + 1):
        assert byte_offset(text, offset) == len(utf8(text[:offset]))


# --- a very long line: only a window around the cursor is read ---

#: A minified bundle's one line.
LONG_LINE_CHARS = 10_000_000


def long_line(unit: str, tail: str, size: int = LONG_LINE_CHARS) -> str:
    """`unit` repeated to about `size` characters, then `tail`: one line, no newline."""
    return unit * (size // len(unit)) + tail


class ScanRecorder:
    """A compiled pattern that records the length of each text it scans."""

    SCANS = frozenset({"search", "finditer", "findall", "sub", "subn", "split"})

    def __init__(self, pattern: re.Pattern[str], lengths: list[int]) -> None:
        self._pattern = pattern
        self._lengths = lengths

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._pattern, name)
        if name not in self.SCANS:
            return method

        def scan(string: str, *args: Any, **kwargs: Any) -> Any:
            self._lengths.append(len(string))
            return method(string, *args, **kwargs)

        return scan


#: The modules whose regexes read the cursor's line and the middle.
SCANNING_MODULES = [
    fim_lsp.syntax.lines,
    fim_lsp.syntax.cursor,
    fim_lsp.syntax.indentation,
    fim_lsp.postprocess.artifacts,
    fim_lsp.postprocess.cursor,
    fim_lsp.postprocess.checker,
    fim_lsp.postprocess.line,
    fim_lsp.postprocess.block,
    fim_lsp.postprocess.truncate,
]


@pytest.fixture
def scanned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every text the syntax and truncation modules' regexes scan while the test runs
    (search, finditer, sub...: the lexer among them). `match` is not counted: it reads from the text's
    start only as far as it matches (an indentation, a keyword)."""
    lengths: list[int] = []
    token_pattern = fim_lsp.syntax.lines.token_pattern
    for module in SCANNING_MODULES:
        for name, value in list(vars(module).items()):
            if isinstance(value, re.Pattern):
                monkeypatch.setattr(module, name, ScanRecorder(value, lengths))
            elif value is token_pattern:
                monkeypatch.setattr(
                    module, name, lambda language: ScanRecorder(token_pattern(language), lengths)
                )
    return lengths


# Cursor at the end of a minified line (or before `after`), and what its last statement alone calls for.
LONG_LINE_CASES = [
    pytest.param('a=[1,"x"];', "if(a){", "", Shape.BLOCK, id="opens-a-block"),
    pytest.param('a=[1,"x"];', "x=f(a,", "", Shape.LINE, id="unfinished-call"),
    pytest.param('a=[1,"x"];', "x=1;", "", Shape.BLOCK, id="finished-statement"),
    pytest.param('a=[1,"x"];', "x=1; // why", "", Shape.LINE, id="ends-in-a-comment"),
    pytest.param('a=[1,"x"];', "f(a, ", "b);", Shape.LINE, id="text-after-the-cursor"),
    pytest.param('a=[1,"x"];', "x=tot", "al;", Shape.LINE, id="inside-a-word"),
    pytest.param("f(a)(b)", "if(a){", "", Shape.BLOCK, id="window-cut-between-brackets"),
    pytest.param("a = {'k': [1, 2]}; ", "if x:", "", Shape.BLOCK, id="colon-ends-the-line"),
]


def on_long_line(unit: str, tail: str, after: str, size: int = LONG_LINE_CHARS) -> tuple[str, int]:
    """A document whose second line is the long line, with the cursor between `tail` and `after`."""
    line = long_line(unit, tail, size)
    text = "first();\n" + line + after + "\nnext();\n"
    return text, len("first();\n") + len(line)


@pytest.mark.parametrize(("unit", "tail", "after", "shape"), LONG_LINE_CASES)
def test_a_long_line_is_judged_on_its_window(unit, tail, after, shape):
    text, offset = on_long_line(unit, tail, after)
    window = text[offset - LINE_WINDOW_CHARS : offset + LINE_WINDOW_CHARS]
    assert classify(None, text, offset) is classify(None, window, LINE_WINDOW_CHARS) is shape
    # As its last statement alone would be.
    assert classify(None, *on_long_line(unit, tail, after, size=len(unit))) is shape


@pytest.mark.parametrize(("unit", "tail", "after", "shape"), LONG_LINE_CASES)
def test_classify_scans_only_the_window_of_a_long_line(scanned, unit, tail, after, shape):
    text, offset = on_long_line(unit, tail, after)
    classify(None, text, offset)
    assert max(scanned, default=0) <= LINE_WINDOW_CHARS


def test_classify_with_a_tree_scans_only_the_window_of_a_long_line(scanned):
    # Short enough to keep a tree (see MAX_TREE_CHARS); not ASCII, so string and byte offsets differ.
    line = long_line("é = [1]; ", 's = """doc', size=200_000)
    text = line + '\nmore"""\n'
    syntax = DocumentSyntax("python", text)
    # Inside a string, says the tree; the line alone looks like a finished statement.
    assert classify(syntax, text, len(line)) is Shape.LINE
    assert classify(None, text, len(line)) is Shape.BLOCK
    assert scanned and max(scanned) <= LINE_WINDOW_CHARS


@pytest.mark.parametrize(
    ("language", "unit", "tail", "typed"),
    [
        pytest.param("javascript", "a=1;", "if(a){", "    ", id="javascript-block-opened"),
        pytest.param("python", "a = [1]; ", "if a:", "    ", id="python-block-opened"),
        pytest.param("python", "a = [1]; ", "b = 2", "", id="python-statement"),
    ],
)
def test_indentation_after_a_long_line_reads_its_end(scanned, language, unit, tail, typed):
    prefix = long_line(unit, tail) + "\n"
    assert indentation_to_type(prefix, "", language) == typed
    assert max(scanned, default=0) <= LINE_WINDOW_CHARS
    assert indentation_to_type(unit + tail + "\n", "", language) == typed


@pytest.mark.parametrize(
    ("language", "unit", "tail", "middle", "suffix", "shape"),
    [
        pytest.param(
            "python",
            "a = [1]; ",
            "if a:",
            "\n        b()\n    c()\n",
            "\n",
            Shape.BLOCK,
            id="python-block-after-a-long-opener",
        ),
        pytest.param(
            "javascript",
            "a=1;",
            "if(a){",
            "\n  b();\n}\nc();\n",
            "\n",
            Shape.BLOCK,
            id="javascript-block-after-a-long-opener",
        ),
        pytest.param(None, "a=1;", "x = f(", "a, b);\n", ");\n", Shape.LINE, id="line-before-text"),
    ],
)
def test_cutting_a_middle_at_the_end_of_a_long_line_reads_its_end(
    scanned, language, unit, tail, middle, suffix, shape
):
    prefix = long_line(unit, tail)
    done = middle_is_done(prefix, middle, suffix, language, shape)
    # No language: no syntax check, which parses the whole prefix (the pipeline's prompt is bounded).
    shown = truncate_middle(prefix, middle, suffix, None, shape, True)
    assert max(scanned, default=0) <= LINE_WINDOW_CHARS
    short = unit + tail
    assert done == middle_is_done(short, middle, suffix, language, shape)
    assert shown == truncate_middle(short, middle, suffix, None, shape, True)


def test_snapshot_is_left_alone_by_later_updates():
    syntax = DocumentSyntax("python", "x = 1\n")
    view = syntax.snapshot()
    tree_before = str(view.tree.root_node)
    syntax.update("x = 1\ny = (\n")
    assert view.text == "x = 1\n"
    assert str(view.tree.root_node) == tree_before
    assert view.error_count() == 0
    assert syntax.error_count() > 0


@pytest.mark.parametrize(
    ("language", "marked", "typed"),
    [
        pytest.param(
            "python", 'def area(r):\n    """Area of a circle."""\n█', "    ", id="python-docstring-only-body"
        ),
        pytest.param(
            "python",
            'def area(\n    r: float,\n) -> float:\n    """Area.\n\n    Of it.\n    """\n█    return 0\n',
            "    ",
            id="python-multiline-header-and-docstring-before-code",
        ),
        pytest.param(
            "python", "def f(xs):\n  for x in xs:\n█", "    ", id="python-after-block-opener-file-unit"
        ),
        pytest.param("python", "class A:\n\tdef f(self):\n█", "\t\t", id="python-tabs"),
        pytest.param(
            "python",
            "def is_happy(s):\n    if len(s) < 3:\n      return False\n\n    for i in range(len(s) - 2):\n█",
            "      ",
            id="python-step-of-the-nearest-block-not-the-narrowest-indentation",
        ),
        pytest.param(
            "javascript",
            "function f(xs) {\n  for (const x of xs) {\n      use(x);\n  }\n  if (xs.length) {\n█",
            "      ",
            id="javascript-step-of-the-nearest-block",
        ),
        pytest.param("python", "def f(x):\n    y = x\n█", "", id="python-after-a-statement-model-chooses"),
        pytest.param("python", "def f(x):\n    █", "", id="python-indentation-already-typed"),
        pytest.param("go", "func main() {\n█\n}\n", "    ", id="go-after-brace"),
        pytest.param("typescript", "x = 1;\n█", "", id="typescript-after-statement"),
    ],
)
def test_indentation_to_type(language, marked, typed):
    text, offset = split_cursor(marked)
    assert indentation_to_type(text[:offset], text[offset:], language) == typed
