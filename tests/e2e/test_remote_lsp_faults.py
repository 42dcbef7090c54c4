"""`fim-lsp --stdio` with a remote engine whose server is down, then comes back (a fault-injecting fake on
loopback): the editor gets empty answers and one clear status, never an error per keystroke, and the
first request after the server returns is answered."""

from __future__ import annotations

from tests.fakes.fault_server import MODEL, FaultServer, Stream
from tests.fakes.http import free_port

FUNCTION = 'def add(a, b):\n    """Return the sum of a and b."""\n    \n\nprint(add(2, 3))\n'
URI = "file:///work/adder.py"


async def test_a_remote_server_down_then_back(start_editor):
    port = free_port()
    editor = await start_editor(
        {"engine": {"kind": "openai", "url": f"http://127.0.0.1:{port}/v1", "model": MODEL}}
    )
    await editor.wait_until("ready", timeout=60)  # a remote engine loads without reaching its server
    editor.open(URI, FUNCTION)

    for _ in range(3):  # keystrokes while the server is down
        assert await editor.inline(URI, 2, 4) == []
    errors = [s for s in editor.statuses if s["state"] == "error"]
    assert len(errors) == 1, editor.statuses
    assert "cannot connect to the OpenAI-compatible server" in errors[0]["message"]
    shown = [m.message for m in editor.client.messages if "cannot connect" in m.message]
    assert len(shown) <= 1

    with FaultServer(port) as server:
        server.then(Stream(("return a + b",)))
        (item,) = await editor.inline(URI, 2, 4)
    assert item.insert_text == "return a + b"
    assert editor.statuses[-1]["state"] == "ready"
