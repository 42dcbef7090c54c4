"""The server reads its messages from whatever stdin it is given: a pipe (as editors connect) is read by
the event loop itself, a regular file or /dev/null, which the event loop cannot watch, through pygls's
thread-pool reader. Each answers every request in it and exits at the end of input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fim_lsp.client import frame

SERVER = str(Path(__file__).with_name("fake_engine_server.py"))
SESSION = b"".join(
    frame(message)
    for message in (
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": None},
        {"jsonrpc": "2.0", "method": "exit", "params": None},
    )
)


def answered_ids(stdout: bytes) -> list[object]:
    bodies = stdout.split(b"Content-Length: ")[1:]
    messages = [json.loads(body.split(b"\r\n\r\n", 1)[1]) for body in bodies]
    return [message["id"] for message in messages if "id" in message and "method" not in message]


@pytest.mark.parametrize("kind", ["pipe", "file"])
def test_a_session_on_stdin_is_answered_whatever_stdin_is(kind: str, tmp_path: Path) -> None:
    if kind == "pipe":
        done = subprocess.run([sys.executable, SERVER], input=SESSION, capture_output=True, timeout=60)
    else:
        session = tmp_path / "session.bin"
        session.write_bytes(SESSION)
        with session.open("rb") as stdin:
            done = subprocess.run([sys.executable, SERVER], stdin=stdin, capture_output=True, timeout=60)
    assert answered_ids(done.stdout) == [1, 2], done.stderr.decode()[-2000:]
    assert done.returncode == 0, done.stderr.decode()[-2000:]


def test_a_server_given_dev_null_exits_at_once() -> None:
    with open("/dev/null", "rb") as stdin:
        done = subprocess.run([sys.executable, SERVER], stdin=stdin, capture_output=True, timeout=60)
    assert done.stdout == b""
    assert b"Traceback" not in done.stderr, done.stderr.decode()[-2000:]
