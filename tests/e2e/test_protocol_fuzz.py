"""Protocol fuzzing: hypothesis writes documents and edits an editor could send (and some no editor
should), one `fim-lsp --stdio` with the real model takes them all, and after each example the server's
copy of the document equals the one kept here by a separate, deliberately simple model of LSP text sync.

The model here works on UTF-16 code units, as editors do, so it shares no code with `documents.py`
(which works on Python code points). Where LSP leaves a case open, the rule is fim-lsp's:

- a range whose line is past the end of the document means the end of the document;
- a column past the end of its line means the end of the line (LSP says so);
- a range given end first is applied as if it were given start first;
- a column between the two units of a surrogate pair means the position after the character: an edit
  never leaves half a character behind (clamp to the code point).
"""

from __future__ import annotations

import hashlib
import re
from array import array
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fim_lsp.client import EditorClient
from tests.e2e.conftest import FAST_MODEL, TEST_TIME_BUDGET_MS

pytestmark = [pytest.mark.model, pytest.mark.slow]

SETTINGS = {
    "model": FAST_MODEL,
    "timeBudgetMs": TEST_TIME_BUDGET_MS,
    "maxNewTokens": 16,
    "contextBudget": 256,
}
EXAMPLES = 250
UINTEGER_MAX = 2**31 - 1
REQUEST_CANCELLED = -32800

# --- the independent model of the client's document ------------------------------------------------

_HIGH = range(0xD800, 0xDC00)
_LOW = range(0xDC00, 0xE000)
_CR, _LF = 0x0D, 0x0A


class Utf16Document:
    """The text as an editor holds it: UTF-16 code units, lines split at CRLF, CR and LF."""

    def __init__(self, text: str) -> None:
        self.units = array("H", text.encode("utf-16-le", "surrogatepass"))
        self.splits = 0
        """Positions met that fell inside a surrogate pair."""

    @property
    def text(self) -> str:
        return self.units.tobytes().decode("utf-16-le", "surrogatepass")

    def _line_starts(self) -> list[int]:
        starts = [0]
        units, i = self.units, 0
        while i < len(units):
            if units[i] == _CR and i + 1 < len(units) and units[i + 1] == _LF:
                i += 2
                starts.append(i)
            elif units[i] in (_CR, _LF):
                i += 1
                starts.append(i)
            else:
                i += 1
        return starts

    def offset(self, line: int, character: int) -> int:
        starts = self._line_starts()
        if line >= len(starts):
            return len(self.units)
        start = starts[line]
        end = starts[line + 1] if line + 1 < len(starts) else len(self.units)
        while end > start and self.units[end - 1] in (_CR, _LF):  # the line's break is not on the line
            end -= 1
        offset = min(start + character, end)
        if 0 < offset < len(self.units) and self.units[offset - 1] in _HIGH and self.units[offset] in _LOW:
            self.splits += 1
            offset += 1  # inside a surrogate pair: after the character
        return offset

    def landmarks(self) -> list[tuple[int, int]]:
        """Positions where the rules above matter: each line's start and end, one past its end, and the
        middle of each surrogate pair."""
        starts = self._line_starts()
        found = []
        for line, start in enumerate(starts):
            end = starts[line + 1] if line + 1 < len(starts) else len(self.units)
            found += [(line, 0), (line, end - start), (line, end - start + 1)]
            found += [(line, i - start + 1) for i in range(start, end - 1) if self.units[i] in _HIGH]
        found.append((len(starts), 0))
        return found

    def replace(self, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
        begin, finish = sorted((self.offset(*start), self.offset(*end)))
        self.units[begin:finish] = array("H", text.encode("utf-16-le", "surrogatepass"))


# --- what hypothesis draws ---------------------------------------------------------------------------

# Whole pieces an editor's text is made of, weighted towards the awkward ones; no lone surrogates (a
# well-formed client's JSON cannot carry one; tests/e2e/test_malformed_rpc.py sends them anyway).
_PIECES = st.one_of(
    st.characters(blacklist_categories=("Cs",)),
    st.sampled_from(["\r\n", "\r", "\n", "\x00", "😀", "𝄞", "é", "\t", "    ", "def f():", "\u2028", "\x0c"]),
)
texts = st.lists(_PIECES, max_size=40).map("".join)
long_lines = st.builds(
    lambda piece, n: piece * n, st.sampled_from(["x", "😀", "é ", "a\x00"]), st.integers(2_000, 30_000)
)
documents = st.one_of(texts, texts, texts, st.builds(lambda a, b, c: a + b + c, texts, long_lines, texts))
lines = st.one_of(st.integers(0, 6), st.integers(0, 6), st.sampled_from([40, 10_000, UINTEGER_MAX]))
characters = st.one_of(
    st.integers(0, 12), st.integers(0, 12), st.sampled_from([1, 3, 100, 40_000, UINTEGER_MAX])
)
positions = st.tuples(lines, characters)


def draw_position(data: st.DataObject, model: Utf16Document) -> tuple[int, int]:
    """Anywhere (mostly near the start), or one of the places where the document's rules matter."""
    landmarks = model.landmarks()
    return data.draw(st.one_of(positions, st.sampled_from(landmarks)))


language_ids = st.sampled_from(["python", "python", "javascript", "go", "plaintext"])
COMPLETION_METHODS = ["textDocument/inlineCompletion", "textDocument/completion"]


def _position(position: tuple[int, int]) -> dict[str, int]:
    return {"line": position[0], "character": position[1]}


def _completion_params(uri: str, method: str, position: tuple[int, int]) -> dict[str, Any]:
    params: dict[str, Any] = {"textDocument": {"uri": uri}, "position": _position(position)}
    if method == "textDocument/inlineCompletion":
        params["context"] = {"triggerKind": 2}
    return params


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def test_utf16_model_clamps_a_split_pair_to_after_the_character():
    """The test's own model, on the cases the rules above name."""
    document = Utf16Document("a😀b\r\ncd")
    assert document.offset(0, 2) == 3  # inside the pair: after it
    assert document.offset(0, 99) == 4  # past the end of the line: before its CRLF
    assert document.offset(9, 0) == len(document.units)
    document.replace((1, 1), (0, 2), "-")  # end first, and a split pair
    assert document.text == "a😀-d"


def test_fuzzed_documents_and_edits_keep_both_copies_equal():
    counts = {"examples": 0, "edits": 0, "splits": 0, "completions": 0, "cancels": 0, "answered": 0}
    with EditorClient() as server:
        server.initialize(SETTINGS)
        assert server.wait_status("ready", "error")["state"] == "ready"

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
            ],
        )
        @given(text=documents, language_id=language_ids, data=st.data())
        def example(text: str, language_id: str, data: st.DataObject) -> None:
            counts["examples"] += 1
            uri = f"file:///fuzz/{counts['examples']}.txt"
            model = Utf16Document(text)
            version = 1
            server.open(uri, text, language_id, version)
            pending: list[Any] = []
            try:
                for _ in range(data.draw(st.integers(1, 12), label="operations")):
                    kind = data.draw(
                        st.sampled_from(["edits", "edits", "edits", "whole", "complete", "cancel"])
                    )
                    if kind in ("edits", "whole"):
                        version += 1
                        content: list[dict[str, Any]] = []
                        if kind == "whole":
                            whole = data.draw(documents)
                            model = Utf16Document(whole)
                            content.append({"text": whole})
                        for _ in range(data.draw(st.integers(1, 3)) if kind == "edits" else 0):
                            start, end = draw_position(data, model), draw_position(data, model)
                            inserted = data.draw(texts)
                            splits = model.splits
                            model.replace(start, end, inserted)
                            counts["splits"] += model.splits - splits
                            content.append(
                                {
                                    "range": {"start": _position(start), "end": _position(end)},
                                    "text": inserted,
                                }
                            )
                        counts["edits"] += len(content)
                        server.notify(
                            "textDocument/didChange",
                            {"textDocument": {"uri": uri, "version": version}, "contentChanges": content},
                        )
                    elif kind == "complete":
                        method = data.draw(st.sampled_from(COMPLETION_METHODS))
                        position = draw_position(data, model)
                        msg_id = server.request_nowait(method, _completion_params(uri, method, position))
                        pending.append(msg_id)
                        counts["completions"] += 1
                        if data.draw(st.booleans(), label="cancel it"):
                            server.cancel(msg_id)
                            counts["cancels"] += 1
                    else:
                        server.cancel(f"never-sent-{counts['examples']}")

                state = server.document_state(uri)
                expected = model.text
                assert state == {"version": version, "length": len(expected), "sha256": _sha(expected)}
            finally:
                # Also when hypothesis stops an example half-way: closing stops the document's generation.
                server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            for msg_id in pending:
                answer = server.answer(msg_id)
                assert "error" not in answer or answer["error"]["code"] == REQUEST_CANCELLED, answer
                counts["answered"] += 1
            assert server.alive

        example()

        # No handler failed on the way (their failures are logged as errors, which reach the client).
        errors = [m["message"] for m in server.messages("window/logMessage") if m["type"] == 1]
        assert errors == []
        assert server.messages("window/showMessage") == []
        # And a plain request still gets a real completion.
        uri = "file:///fuzz/after.py"
        server.open(uri, "def double(x):\n    return \n")
        (middle,) = server.inline(uri, 1, 11)
        assert middle.strip()
        assert server.garbage == []
    print(f"\nprotocol fuzz: {counts}")
    assert counts["splits"] > 0  # the rule for a split pair was exercised


def test_line_breaks_are_split_the_lsp_way():
    """The model's line split agrees with LSP's three line breaks (and nothing else)."""
    text = "a\r\nb\rc\nd\u2028e\x0cf"
    starts = Utf16Document(text)._line_starts()
    assert starts == [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
