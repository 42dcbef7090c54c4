"""The embedded engine works with no network and opens no network socket; the server does not linger."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import FAST_MODEL

pytestmark = pytest.mark.model

GUARD = str(Path(__file__).with_name("guarded_server.py"))


def network_namespace_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


async def test_completions_open_no_network_socket(start_editor, tmp_path):
    socket_log = tmp_path / "sockets.log"
    socket_log.touch()
    editor = await start_editor(
        {"model": FAST_MODEL},
        command=[sys.executable, GUARD],
        env={"FIM_LSP_SOCKET_LOG": str(socket_log)},
    )
    await editor.wait_until("ready")
    uri = "file:///work/offline.py"
    editor.open(uri, "def is_even(n):\n    return \n")
    assert await editor.inline(uri, 1, 11)
    assert socket_log.read_text() == ""


def test_the_guard_catches_a_socket(tmp_path):
    """The audit hook above is real: a process that opens a TCP socket under it is caught."""
    socket_log = tmp_path / "sockets.log"
    probe = "import guarded_server, socket; guarded_server.install(); socket.socket()"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        cwd=Path(GUARD).parent,
        env={"FIM_LSP_SOCKET_LOG": str(socket_log), "PATH": ""},
    )
    assert result.returncode != 0
    assert "socket.__new__" in socket_log.read_text()


@pytest.mark.skipif(not network_namespace_available(), reason="unshare -n needs root or user namespaces")
async def test_completes_inside_a_network_namespace_without_interfaces(start_editor):
    editor = await start_editor(
        {"model": FAST_MODEL}, command=["unshare", "-n", sys.executable, "-m", "fim_lsp"]
    )
    await editor.wait_until("ready")
    uri = "file:///work/cut.py"
    editor.open(uri, "def square(x):\n    return \n")
    items = await editor.inline(uri, 1, 11)
    assert items and items[0].insert_text.strip()


def test_the_server_exits_when_its_client_dies_without_exit():
    server = subprocess.Popen(
        [sys.executable, "-m", "fim_lsp", "--stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    for message in (
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"capabilities": {}, "initializationOptions": {"model": FAST_MODEL}},
        },
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
    ):
        body = json.dumps(message).encode()
        server.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    server.stdin.flush()
    assert server.stdout.readline().startswith(b"Content-Length")  # it answered initialize
    server.stdin.close()  # the editor is gone: no shutdown, no exit
    try:
        assert server.wait(timeout=60) == 0
    finally:
        server.kill()
