"""A JSON-RPC client that writes bytes to `fim-lsp --stdio` itself, for the robustness tests.

pytest-lsp only sends well-formed messages; these tests also send broken ones (bad JSON, bad headers,
wrong parameter types) and very many of them, so they frame the messages themselves. A reader thread
parses what the server writes: answers are kept by id, notifications in order, and requests from the
server (progress, registrations) are answered with null so it never waits on us.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

#: Seconds to wait for an answer the server owes us before the test fails.
ANSWER_TIMEOUT = 300.0


def frame(message: Any) -> bytes:
    """A message as it goes on the wire: the Content-Length header, a blank line, the JSON body."""
    body = json.dumps(message).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def rss_kib(pid: int) -> int:
    """Resident memory of process `pid` in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def _key(msg_id: Any) -> Any:
    """A dictionary key for any id the server echoes, including ones no valid request carries."""
    return msg_id if isinstance(msg_id, (int, str, type(None))) else json.dumps(msg_id)


class WireServer:
    """`fim-lsp --stdio` (or `command`) in a subprocess, spoken to with raw bytes."""

    def __init__(
        self, command: list[str] | None = None, *, stderr: IO[bytes] | int = subprocess.DEVNULL
    ) -> None:
        argv = command or [sys.executable, "-m", "fim_lsp", "--stdio"]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=dict(os.environ)
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin = self.process.stdin
        self._stdout = self.process.stdout
        self._ids = itertools.count(1)
        self._lock = threading.Condition()
        self._write_lock = threading.Lock()
        self.answers: dict[Any, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.garbage: list[bytes] = []
        """Whatever the server wrote that is not a well-framed JSON message (must stay empty)."""
        self._reader = threading.Thread(target=self._read, name="wire-reader", daemon=True)
        self._reader.start()

    # -- the reader ---------------------------------------------------------------------------------

    def _read(self) -> None:
        stream = self._stdout
        while True:
            length = None
            while True:
                header = stream.readline()
                if not header:
                    self._closed()
                    return
                if header == b"\r\n":
                    break
                name, _, value = header.decode("ascii", "replace").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
                elif name.strip().lower() != "content-type":
                    self.garbage.append(header)
            if length is None:
                self.garbage.append(b"<no Content-Length>")
                continue
            body = stream.read(length)
            try:
                message = json.loads(body)
            except ValueError:
                self.garbage.append(body)
                continue
            self._dispatch(message)

    def _closed(self) -> None:
        with self._lock:
            self._lock.notify_all()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:  # a request from the server: say yes, say nothing
            self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            return
        with self._lock:
            if "method" in message:
                self.notifications.append(message)
            else:
                self.answers[_key(message.get("id"))] = message
            self._lock.notify_all()

    # -- sending ------------------------------------------------------------------------------------

    def send_bytes(self, data: bytes) -> None:
        with self._write_lock:
            self._stdin.write(data)
            self._stdin.flush()

    def send(self, message: Any) -> None:
        self.send_bytes(frame(message))

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def request_nowait(self, method: str, params: Any = None, *, msg_id: Any = None) -> Any:
        """Send a request and return its id without waiting for the answer."""
        msg_id = next(self._ids) if msg_id is None else msg_id
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    def cancel(self, msg_id: Any) -> None:
        self.notify("$/cancelRequest", {"id": msg_id})

    # -- waiting ------------------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], Any], timeout: float = ANSWER_TIMEOUT) -> Any:
        """The first true value of `predicate` (checked whenever the server says something)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                value = predicate()
                if value:
                    return value
                if not self.alive:
                    raise AssertionError(f"the server died (exit status {self.process.returncode})")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the server did not say what was awaited")
                self._lock.wait(min(remaining, 1.0))

    def answer(self, msg_id: Any, timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
        """The whole answer message (result or error) to request `msg_id`."""
        answer: dict[str, Any] = self.wait_for(lambda: self.answers.get(_key(msg_id)), timeout)
        return answer

    def request(self, method: str, params: Any = None, timeout: float = ANSWER_TIMEOUT) -> Any:
        """Send a request and return its result; an error answer fails the test."""
        answer = self.answer(self.request_nowait(method, params), timeout)
        assert "error" not in answer, answer
        return answer.get("result")

    def wait_status(self, *states: str, timeout: float = ANSWER_TIMEOUT, after: int = 0) -> dict[str, Any]:
        """The first `fimLsp/status` notification (from index `after` on) in one of `states`."""

        def arrived() -> dict[str, Any] | None:
            for note in self.notifications[after:]:
                if note["method"] == "fimLsp/status" and note["params"]["state"] in states:
                    return dict(note["params"])
            return None

        status: dict[str, Any] = self.wait_for(arrived, timeout)
        return status

    def statuses(self) -> list[dict[str, Any]]:
        with self._lock:
            return [n["params"] for n in self.notifications if n["method"] == "fimLsp/status"]

    def messages(self, method: str) -> list[dict[str, Any]]:
        """Params of the notifications named `method` (`window/showMessage`, `window/logMessage`)."""
        with self._lock:
            return [n["params"] for n in self.notifications if n["method"] == method]

    # -- LSP conveniences ---------------------------------------------------------------------------

    def initialize(self, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "initialize",
            {"processId": os.getpid(), "capabilities": {}, "initializationOptions": settings or {}},
        )
        self.notify("initialized", {})
        return result

    def open(self, uri: str, text: str, language_id: str = "python", version: int = 1) -> None:
        item = {"uri": uri, "languageId": language_id, "version": version, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": item})

    def change(self, uri: str, version: int, text: str, start: tuple[int, int], end: tuple[int, int]) -> None:
        change = {
            "range": {
                "start": {"line": start[0], "character": start[1]},
                "end": {"line": end[0], "character": end[1]},
            },
            "text": text,
        }
        self.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]},
        )

    def inline_nowait(self, uri: str, line: int, character: int) -> Any:
        return self.request_nowait(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": 2},
            },
        )

    def inline(self, uri: str, line: int, character: int, timeout: float = ANSWER_TIMEOUT) -> list[str]:
        """The inserted texts of an inline completion request."""
        answer = self.answer(self.inline_nowait(uri, line, character), timeout)
        assert "error" not in answer, answer
        return [item["insertText"] for item in (answer["result"] or {"items": []})["items"]]

    def document_state(self, uri: str) -> Any:
        return self.request(
            "workspace/executeCommand", {"command": "fim-lsp.documentState", "arguments": [uri]}
        )

    # -- the process --------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.process.pid)

    def close(self, timeout: float = 30) -> int | None:
        """Shut down politely when the server is still up; kill it when it does not leave in time."""
        try:
            if self.alive:
                with contextlib.suppress(Exception):
                    self.request("shutdown", None, timeout=timeout)
                    self.notify("exit")
                self._stdin.close()
                self.process.wait(timeout)
        except (subprocess.TimeoutExpired, OSError):
            pass
        finally:
            if self.alive:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> WireServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
