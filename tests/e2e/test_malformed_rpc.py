"""Broken JSON-RPC written straight to `fim-lsp --stdio`: each gets the answer JSON-RPC 2.0 asks for (or,
for a notification, none), the server stays up and in step with the stream, and a well-formed session
still works after it all: initialize, a real completion, shutdown and exit."""

from __future__ import annotations

import hashlib
import json

import pytest

from fim_lsp.client import EditorClient, frame
from tests.e2e.conftest import FAST_MODEL, TEST_TIME_BUDGET_MS

pytestmark = pytest.mark.model

SETTINGS = {
    "model": FAST_MODEL,
    "timeBudgetMs": TEST_TIME_BUDGET_MS,
    "maxNewTokens": 16,
    "contextBudget": 256,
}
URI = "file:///work/wire.py"
TEXT = "def double(x):\n    return \n"

INLINE_PARAMS = {
    "textDocument": {"uri": URI},
    "position": {"line": 1, "character": 11},
    "context": {"triggerKind": 1},
}


def request(msg_id: object, method: str, params: object = None) -> dict:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


def body(data: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(data), data)


# (what is sent, the id of the answer expected, its error code; None: no answer at all)
CASES = [
    pytest.param(body(b'{"jsonrpc": "2.0", "id": 1, "method":'), None, -32700, id="json-cut-short"),
    pytest.param(body(b"{bad json}"), None, -32700, id="not-json"),
    pytest.param(body(b'\xff\xfe{"jsonrpc": "2.0"}'), None, -32700, id="not-utf8"),
    pytest.param(frame([request(2, "shutdown")]), None, -32600, id="batch-array"),
    pytest.param(frame(42), None, -32600, id="a-number"),
    pytest.param(frame({"id": 3, "method": "shutdown"}), 3, -32600, id="no-jsonrpc-member"),
    pytest.param(frame({"jsonrpc": "1.0", "id": 4, "method": "shutdown"}), 4, -32600, id="jsonrpc-1.0"),
    pytest.param(frame(request({"nested": 1}, "shutdown")), None, -32600, id="id-an-object"),
    pytest.param(frame(request(5, "fimLsp/noSuchMethod", {})), 5, -32601, id="unknown-request"),
    pytest.param(
        frame({"jsonrpc": "2.0", "id": 6, "method": "fimLsp/noSuchMethod"}), 6, -32601, id="unknown-no-params"
    ),
    pytest.param(
        frame(request(7, "textDocument/didClose", {"textDocument": {"uri": URI}})),
        7,
        -32601,
        id="notification-sent-as-request",
    ),
    pytest.param(
        frame(request(8, "textDocument/inlineCompletion", {"textDocument": "nope", "position": 5})),
        8,
        -32602,
        id="params-of-wrong-types",
    ),
    pytest.param(frame(request(9, "textDocument/inlineCompletion", "text")), 9, -32602, id="params-a-string"),
    pytest.param(
        frame(request(10, "textDocument/completion", {"position": {"line": 0, "character": 0}})),
        10,
        -32602,
        id="params-missing-a-member",
    ),
    pytest.param(
        frame(
            request(11, "workspace/executeCommand", {"command": "fim-lsp.documentState", "arguments": [1, 2]})
        ),
        11,
        -32602,
        id="command-arguments-wrong",
    ),
    pytest.param(
        frame({"jsonrpc": "2.0", "method": "fimLsp/noSuchNotification"}),
        None,
        None,
        id="unknown-notification",
    ),
    pytest.param(
        frame({"jsonrpc": "2.0", "method": "textDocument/inlineCompletion", "params": INLINE_PARAMS}),
        None,
        None,
        id="request-without-id",
    ),
    pytest.param(
        frame(
            {
                "jsonrpc": "2.0",
                "method": "textDocument/didChange",
                "params": {"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"range": 3}]},
            }
        ),
        None,
        None,
        id="notification-params-wrong",
    ),
    pytest.param(
        frame({"jsonrpc": "2.0", "id": 12, "result": {"unasked": True}}), None, None, id="unasked-answer"
    ),
    pytest.param(
        frame({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 999}}),
        None,
        None,
        id="cancel-unknown-id",
    ),
]


def in_step(server: EditorClient) -> None:
    """The server is alive and reads the stream where the client writes it: a request right after gets its
    own answer, and the document is as the client left it."""
    assert server.alive
    state = server.document_state(URI)
    assert state["sha256"] == hashlib.sha256(TEXT.encode()).hexdigest()


async def test_malformed_messages_get_their_json_rpc_errors():
    with EditorClient() as server:
        # Garbage before initialize is answered too, and initialize still works after it.
        server.send_bytes(body(b"not json at all"))
        assert server.answer(None)["error"]["code"] == -32700
        server.answers.clear()
        server.initialize(SETTINGS)
        server.open(URI, TEXT)
        for case in CASES:
            data, answer_id, code = case.values
            before = len(server.answers)
            server.send_bytes(data)
            in_step(server)  # by then any answer owed to `data` has been written
            if code is None:
                assert len(server.answers) == before + 1, (case.id, server.answers)  # documentState's only
            else:
                answer = server.answer(answer_id, timeout=5)
                assert answer["error"]["code"] == code, (case.id, answer)
                assert "traceback" not in json.dumps(answer)
                del server.answers[answer_id]
        # None of it was shown to the user as a pop-up: a broken client is nothing they can act on.
        assert server.messages("window/showMessage") == []
        assert server.garbage == []

        assert server.wait_status("ready", "error")["state"] == "ready"
        (middle,) = server.inline(URI, 1, 11)
        assert middle.strip()
        assert server.request("shutdown") is None
        server.notify("exit")
        assert server.process.wait(30) == 0


BROKEN_FRAMES = [
    pytest.param(b"Content-Length: abc\r\n\r\n{}", 0, id="length-not-a-number"),
    pytest.param(b"Content-Length: 2\r\n\r\n{}}}}}}", 0, id="length-shorter-than-body"),
    # The declared length swallows what follows until it is filled: our next two requests (~130 bytes each).
    pytest.param(b"Content-Length: 200\r\n\r\n{}", 2, id="length-longer-than-body"),
    pytest.param(b"Content-Length: 99999999999999\r\n\r\n{}", 0, id="length-absurd"),
    pytest.param(b"Content-Len", 0, id="header-cut-short"),
    pytest.param(b"\r\n\r\n\r\n", 0, id="blank-lines"),
    pytest.param(b"{}", 0, id="body-without-header"),
    pytest.param(b"Content-Type: application/json\r\n\r\n{}", 0, id="no-length-header"),
]


def lost_before_an_answer(server: EditorClient, most: int) -> int:
    """Send requests until one is answered; how many were lost before it."""
    for lost in range(most + 1):
        msg_id = server.request_nowait("workspace/executeCommand", {"command": "fim-lsp.stats"})
        try:
            server.answer(msg_id, timeout=3)
            return lost
        except TimeoutError:
            continue
    raise AssertionError(f"no answer after {most + 1} requests")


async def test_broken_framing_loses_no_more_than_the_broken_frame_holds():
    """After a frame that cannot be read the server finds the next header again, so what is lost is the
    broken frame (and, when its length said more than it held, the messages that fill that length)."""
    with EditorClient() as server:
        server.initialize({"engine": {"kind": "openai", "url": "http://127.0.0.1:9/v1", "model": "m"}})
        server.open(URI, TEXT)
        for case in BROKEN_FRAMES:
            data, may_lose = case.values
            server.send_bytes(data)
            assert lost_before_an_answer(server, 5) <= may_lose, case.id
            in_step(server)
        # Header names are read whatever their case and spacing.
        data = json.dumps(request(77, "workspace/executeCommand", {"command": "fim-lsp.stats"})).encode()
        server.send_bytes(b"content-length:%d\r\n\r\n%s" % (len(data), data))
        assert "error" not in server.answer(77, timeout=10)
        assert server.garbage == []
        assert server.request("shutdown") is None


async def test_lone_surrogates_sent_as_json_escapes_do_not_break_completion():
    """JSON can carry a lone UTF-16 surrogate (`"\\ud800"`), which no UTF-8 text holds: the server keeps
    the text as sent, and the model is asked with the surrogate replaced."""
    with EditorClient() as server:
        server.initialize(SETTINGS)
        assert server.wait_status("ready", "error")["state"] == "ready"
        text = 'label = "\ud83d"  # a broken emoji\ndef double(x):\n    return \n'
        server.open(URI, text)
        server.change(URI, 2, "\udc00", (0, 9), (0, 9))
        expected = 'label = "\udc00\ud83d"  # a broken emoji\ndef double(x):\n    return \n'
        state = server.document_state(URI)
        assert state["sha256"] == hashlib.sha256(expected.encode("utf-8", "surrogatepass")).hexdigest()
        (middle,) = server.inline(URI, 2, 11)
        assert middle.strip()
        assert server.alive
