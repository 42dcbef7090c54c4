"""The editor-side client against a stand-in server that records what it is sent: code point offsets
become LSP positions by the protocol's rules (`\\r\\n`, `\\r` and `\\n` end lines; columns count UTF-16
units), and the editor's copy of the document follows its edits."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fim_lsp.client import EditorClient, insert_texts

#: Reads framed messages, writes each to a JSON-lines file, answers requests with a fixed result.
RECORDER = """
import json, sys
log = open(sys.argv[1], "w")
stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
while True:
    length = None
    while True:
        line = stdin.readline()
        if not line:
            sys.exit(0)
        if line == b"\\r\\n":
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    message = json.loads(stdin.read(length))
    log.write(json.dumps(message) + "\\n")
    log.flush()
    if "id" in message:
        result = {"items": [{"insertText": "ok"}]}
        body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
        stdout.write(b"Content-Length: %d\\r\\n\\r\\n" % len(body) + body)
        stdout.flush()
"""

TEXT = "a😀b\r\ncd\rx\ny"


@pytest.fixture
def recorded(tmp_path: Path):
    log = tmp_path / "messages.jsonl"
    client = EditorClient([sys.executable, "-c", RECORDER, str(log)])

    def messages() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()]

    yield client, messages
    client.close(timeout=10)


@pytest.mark.parametrize(
    ("offset", "position"),
    [
        pytest.param(0, (0, 0), id="start"),
        pytest.param(2, (0, 3), id="after-a-surrogate-pair"),
        pytest.param(3, (0, 4), id="before-crlf"),
        pytest.param(5, (1, 0), id="after-crlf"),
        pytest.param(8, (2, 0), id="after-a-lone-cr"),
        pytest.param(11, (3, 1), id="end"),
    ],
)
def test_an_offset_is_sent_as_the_protocols_position(recorded, offset, position):
    client, messages = recorded
    client.open("file:///w/a.py", TEXT)
    texts = insert_texts(client.ask_inline_at("file:///w/a.py", offset).result(30))
    assert texts == ["ok"]
    request = messages()[-1]
    assert request["method"] == "textDocument/inlineCompletion"
    assert (request["params"]["position"]["line"], request["params"]["position"]["character"]) == position


def test_edits_keep_the_editors_copy_and_send_ranges(recorded):
    client, messages = recorded
    client.open("file:///w/a.py", TEXT)
    client.edit("file:///w/a.py", 5, 7, "CD")  # "cd" on the line after the CRLF
    client.edit("file:///w/a.py", 1, 2, "")  # the surrogate pair
    client.close(timeout=10)
    changes = [m["params"] for m in messages() if m.get("method") == "textDocument/didChange"]
    assert [c["textDocument"]["version"] for c in changes] == [2, 3]
    first, second = (c["contentChanges"][0]["range"] for c in changes)
    assert (first["start"], first["end"]) == ({"line": 1, "character": 0}, {"line": 1, "character": 2})
    assert (second["start"], second["end"]) == ({"line": 0, "character": 1}, {"line": 0, "character": 3})
    assert client.documents["file:///w/a.py"].text == "ab\r\nCD\rx\ny"
