"""Where the user types and a line takes long to write, the line as far as it is written by
`pipeline.TYPING_LATENCY_S` is the ghost text (`Reason.PARTIAL`), cut at the end of its last whole word;
the rest comes with the next request, or with accepting it."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from fim_lsp import pipeline
from fim_lsp.completion import CompletionRequest, Reason, Shape
from fim_lsp.config import Settings
from fim_lsp.engine.base import Engine, Generation, GenerationRequest
from fim_lsp.pipeline import complete
from fim_lsp.postprocess import shown_so_far
from fim_lsp.postprocess.cursor import CursorLine
from fim_lsp.postprocess.line import line_so_far
from fim_lsp.prompt import FimPrompt, template_for_family


@pytest.mark.parametrize(
    ("middle", "shown"),
    [
        # The last token may end inside a word: the word is left for later.
        pytest.param("print(total, fi", "print(total,", id="inside-a-word"),
        pytest.param("items.append(", "items.append(", id="after-punctuation"),
        pytest.param("return ", "return", id="a-word-ended-by-a-space"),
        pytest.param("value", None, id="one-word-may-go-on"),
        pytest.param("   ", None, id="spaces"),
        # At the end of a line of code the model begins the next: the answer is on that line.
        pytest.param("\n    return compute(a, b", "\n    return compute(a,", id="on-the-next-line"),
        pytest.param("\n    ", None, id="only-a-line-break"),
    ],
)
def test_line_so_far_ends_at_the_last_whole_word(middle, shown):
    assert line_so_far(middle, CursorLine.of("x = ", "\n")) == shown


@pytest.mark.parametrize(
    ("middle", "after", "shown"),
    [
        # The model wrote the line up to the code after the cursor: that code is the file's already.
        pytest.param("items.reduce(add, 0);", ";", "items.reduce(add, 0)", id="its-end"),
        pytest.param("compute(a, b)) + offs", ")", "compute(a, b)) +", id="not-at-its-end"),
        pytest.param("a, b), c", "), c", "a, b", id="the-whole-rest"),
    ],
)
def test_line_so_far_leaves_out_what_the_rest_of_the_line_has(middle, after, shown):
    assert line_so_far(middle, CursorLine.of("total = f(", after + "\n")) == shown


PYTHON_LOOP = ("def f(xs):\n    total = 0\n    for", "\n    return total\n")
GO_LOOP = ("func f(xs []int) int {\n\ttotal := 0\n\tfor", "\n\treturn total\n}\n")
# The user types a loop above the same loop: its body without a closing brace would take the next
# function into the block.
GO_LOOP_AGAIN = (
    "package tar\n\nfunc put(b []byte, x int64) {\n\tif fits(len(b), x) {\n\t\tfor",
    "\n\t\tfor i := len(b) - 1; i >= 0; i-- {\n\t\t\tb[i] = byte(x)\n\t\t}\n\t\treturn\n\t}\n\tb[0] = 0\n}\n"
    "\nfunc other() int {\n\treturn 1\n}\n",
)


@pytest.mark.parametrize(
    ("around", "language", "middle", "shown"),
    [
        # A whole line is cut as a whole answer is: the `;` after the cursor is the file's already.
        pytest.param(
            ("const total = ", ";\n"),
            "typescript",
            "items.reduce(add, 0);\n ",
            "items.reduce(add, 0)",
            id="a-whole-line",
        ),
        # A line that opens a block comes with as much of its body as is written in whole lines.
        pytest.param(
            PYTHON_LOOP,
            "python",
            " x in xs:\n        total += x\n        pri",
            " x in xs:\n        total += x",
            id="python-block",
        ),
        pytest.param(
            GO_LOOP,
            "go",
            " _, x := range xs {\n\t\ttotal += x\n\t\t",
            " _, x := range xs {\n\t\ttotal += x",
            id="go-block",
        ),
        # A block the rules keep none of while it is open: the line that opens it.
        pytest.param(
            GO_LOOP_AGAIN,
            "go",
            " i := len(b) - 1; i >= 0; i-- {\n\t\t\tb[i] = byte(x)\n",
            " i := len(b) - 1; i >= 0; i-- {",
            id="an-open-block",
        ),
        # Lines the rules drop otherwise stay dropped: the file's next line again.
        pytest.param(("x = 1", "\ny = 2\n"), "python", "\ny = 2\nz", None, id="the-next-line-again"),
        # Special tokens and fences end the middle as they end a whole one.
        pytest.param(
            ("x = ", "\n"), "python", "compute(a, b)<|file_sep|>y", "compute(a, b)", id="a-special-token"
        ),
        pytest.param(("x = ", "\n"), "python", "```pyth", None, id="a-fence"),
    ],
)
def test_shown_so_far_cuts_whole_lines_as_a_whole_answer_is_cut(around, language, middle, shown):
    prefix, suffix = around
    assert shown_so_far(prefix, middle, suffix, language=language, shape=Shape.LINE) == shown


class SlowEngine(Engine):
    """Writes a fixed middle three characters a 'token', `seconds` a token, honouring on_text as the
    real engine does."""

    def __init__(self, middle: str, seconds: float) -> None:
        self.template = template_for_family("qwen2.5-coder")
        self.middle, self.seconds = middle, seconds
        self.asked: list[GenerationRequest] = []

    def count_tokens(self, text: str) -> int:
        return (len(text) + 3) // 4

    def generate(self, request: GenerationRequest) -> Generation:
        self.asked.append(request)
        text = ""
        for start in range(0, len(self.middle), 3):
            time.sleep(self.seconds)
            text = self.middle[: start + 3]
            if request.on_text is not None and request.on_text(text):
                return Generation(text, "stop", generated_tokens=start // 3 + 1)
        return Generation(text, "eot", generated_tokens=len(self.middle) // 3)


ARGUMENTS = '"could not read %s: %s", path, error'
LINE = ARGUMENTS + ")\n"
DOCUMENT = (
    "def load(path):\n    try:\n        return read(path)\n    except OSError as error:\n        log()\n"
)
REQUEST = CompletionRequest(DOCUMENT, DOCUMENT.index("log(") + 4, "python", "load.py", typing=True)


@pytest.fixture
def quick_typing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The typing latency and the least writing scaled down to test time."""
    monkeypatch.setattr(pipeline, "TYPING_LATENCY_S", 0.05)
    monkeypatch.setattr(pipeline, "MIN_PARTIAL_WRITING_S", 0.05)


@pytest.mark.usefixtures("quick_typing")
def test_where_the_user_types_a_slow_line_is_shown_as_far_as_written():
    completion = complete(REQUEST, Settings(), SlowEngine(LINE, seconds=0.02))
    assert completion.shape is Shape.LINE
    assert completion.reason is Reason.PARTIAL
    assert completion.text is not None and completion.text.strip()
    assert ARGUMENTS.startswith(completion.text) and len(completion.text) < len(ARGUMENTS)
    assert completion.text[-1:] not in ("", " ")


@pytest.mark.usefixtures("quick_typing")
def test_a_slow_line_that_opens_a_block_is_shown_with_the_lines_of_it_written():
    document = "def f(xs):\n    total = 0\n    for \n    return total\n"
    request = CompletionRequest(document, document.index("for ") + 4, "python", "f.py", typing=True)
    body = "x in xs:\n        total += x\n        print(total, x, sep=', ', end='')\n"

    class Measured(SlowEngine):
        """Says it writes 5 tokens a second with the prompt evaluated: a block would come late."""

        def prompt_rate(self) -> float | None:
            return 100.0

        def write_rate(self) -> float | None:
            return 5.0

        def uncached_tokens(self, prompt: FimPrompt) -> int | None:
            return 0

    completion = complete(request, Settings(), Measured(body, seconds=0.02))
    assert (completion.shape, completion.reason) == (Shape.LINE, Reason.PARTIAL)
    assert completion.text in ("x in xs:", "x in xs:\n        total += x")


@pytest.mark.usefixtures("quick_typing")
def test_away_from_typing_and_when_asked_the_line_comes_whole():
    whole = ARGUMENTS
    assert complete(replace(REQUEST, typing=False), Settings(), SlowEngine(LINE, 0.02)).text == whole
    invoked = complete(REQUEST, Settings(), SlowEngine(LINE, 0.02), alternatives=2)
    assert invoked.text == whole and invoked.reason is not Reason.PARTIAL


def test_a_line_written_in_time_comes_whole_where_the_user_types():
    completion = complete(REQUEST, Settings(), SlowEngine(LINE, seconds=0.0))
    assert completion.text == ARGUMENTS and completion.reason is not Reason.PARTIAL


class LineEngine(SlowEngine):
    """Writes the rest of `LINE` after as much of it as the prompt's prefix ends with."""

    def generate(self, request: GenerationRequest) -> Generation:
        prefix = request.prompt.prefix
        written = next((k for k in range(len(LINE), 0, -1) if prefix.endswith(LINE[:k])), 0)
        self.middle = LINE[written:]
        return super().generate(request)


@pytest.mark.usefixtures("quick_typing")
async def test_a_line_shown_in_part_is_not_kept_and_its_rest_is_written_for_accepting_it():
    from fim_lsp.service import CompletionService

    engine = LineEngine(LINE, seconds=0.02)
    service = CompletionService(Settings(workspace_context=False), engine_factory=lambda _settings: engine)
    service.start()
    try:
        assert service.wait_ready(timeout=30).state == "ready"
        first = await service.complete("doc", REQUEST)
        assert first.reason is Reason.PARTIAL and first.text
        await service.prefetches_done()
        # The rest of the line was written, away from typing, for the document with the part accepted.
        offset = REQUEST.offset + len(first.text)
        accepted = replace(REQUEST, text=DOCUMENT[: REQUEST.offset] + first.text + DOCUMENT[REQUEST.offset :])
        rest = await service.complete("doc", replace(accepted, offset=offset))
        assert rest.reason is Reason.CACHED
        assert first.text + (rest.text or "") == ARGUMENTS
        # The part is not kept: asked there again (from another editor), the model writes again.
        again = await service.complete("other", REQUEST)
        assert again.reason is Reason.PARTIAL and len(engine.asked) == 3
    finally:
        service.shutdown()
