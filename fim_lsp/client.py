"""The editor's side of the protocol: `fim-lsp --stdio` in a subprocess, driven as an editor drives it.

One client for everything that talks to the server from outside: the demo, the benchmarks and the
end-to-end tests. It frames JSON-RPC itself (so tests can also send broken messages), and a reader thread
parses what the server writes: answers resolve their request's `Pending` (awaitable from asyncio, or
waited on with `result()` from plain code), notifications are kept in order, and requests from the
server (progress, registrations) are answered with null so it never waits on us.

The editor's copy of each open document is a `fim_lsp.documents.TextDocument`, and positions are
converted with the server's own rules (lines end at `\\n`, `\\r\\n` or `\\r`; columns count UTF-16 code
units), so callers may speak in code point offsets of the text.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import IO, Any

from fim_lsp.documents import Position, TextDocument, position_at

#: Seconds to wait for an answer the server owes us.
ANSWER_TIMEOUT = 300.0
#: JSON-RPC's "request cancelled" error code (LSP's RequestCancelled).
REQUEST_CANCELLED = -32800
STATUS_NOTIFICATION = "fimLsp/status"
STATS_COMMAND = "fim-lsp.stats"
DOCUMENT_STATE_COMMAND = "fim-lsp.documentState"
#: `InlineCompletionTriggerKind`: asked for by the user, or automatically after typing paused.
INVOKED, AUTOMATIC = 1, 2
#: How `fim-lsp --stdio` is started when no command is given: this Python, this fim-lsp.
SERVER_COMMAND = (sys.executable, "-m", "fim_lsp", "--stdio")


class ResponseError(Exception):
    """The server answered a request with an error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


class ServerGone(Exception):
    """The server's output ended before it answered."""


class Pending:
    """A request on the wire. `arrived` is stamped when its answer is read (before anyone awaits it), so
    latencies do not include the caller's own scheduling. Await it, or call `result()`."""

    def __init__(self, msg_id: Any) -> None:
        self.msg_id = msg_id
        self.sent = time.perf_counter()
        self.arrived: float | None = None
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def done(self) -> bool:
        return self.future.done()

    def result(self, timeout: float | None = ANSWER_TIMEOUT) -> Any:
        """The answer's result (waiting for it); ResponseError for an error answer."""
        return self.future.result(timeout)

    def awaitable(self) -> asyncio.Future[Any]:
        """The answer as a future of the running event loop (for `asyncio.wait_for`, `shield`...)."""
        return asyncio.wrap_future(self.future)

    def __await__(self) -> Generator[Any, None, Any]:
        return self.awaitable().__await__()


def frame(message: Any) -> bytes:
    """A message as it goes on the wire: the Content-Length header, a blank line, the JSON body."""
    body = json.dumps(message).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def proc_status_kib(pid: int | None, field: str) -> int | None:
    """A memory figure of process `pid` from /proc (`VmRSS`, `VmHWM`), in KiB; None where unknown."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _key(msg_id: Any) -> Any:
    """A dictionary key for any id the server echoes, including ones no valid request carries."""
    return msg_id if isinstance(msg_id, (int, str, type(None))) else json.dumps(msg_id)


class EditorClient:
    """`fim-lsp --stdio` (or `command`) in a subprocess, and an editor's side of the protocol."""

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        stderr: IO[bytes] | int = subprocess.DEVNULL,
        env: dict[str, str] | None = None,
    ) -> None:
        self.process = subprocess.Popen(
            list(command or SERVER_COMMAND),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, **(env or {})},
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin = self.process.stdin
        self._stdout = self.process.stdout
        self._ids = itertools.count(1)
        self._lock = threading.Condition()
        self._write_lock = threading.Lock()
        self._pending: dict[Any, Pending] = {}
        self._last_stats: dict[str, int] = {}
        self._stats_lock = asyncio.Lock()
        self.answers: dict[Any, dict[str, Any]] = {}
        """Every answer message by id (result or error), as the server wrote it."""
        self.notifications: list[dict[str, Any]] = []
        self.garbage: list[bytes] = []
        """Whatever the server wrote that is not a well-framed JSON message (must stay empty)."""
        self.documents: dict[str, TextDocument] = {}
        """The editor's copy of each document it opened."""
        self._reader = threading.Thread(target=self._read, name="lsp-client-reader", daemon=True)
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
            pending, self._pending = list(self._pending.values()), {}
            self._lock.notify_all()
        for request in pending:
            if not request.future.done():
                request.future.set_exception(ServerGone("the server's output ended"))

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:  # a request from the server: say yes, say nothing
            self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            return
        with self._lock:
            request = None
            if "method" in message:
                self.notifications.append(message)
            else:
                key = _key(message.get("id"))
                self.answers[key] = message
                request = self._pending.pop(key, None)
            self._lock.notify_all()
        if request is not None:
            request.arrived = time.perf_counter()
            error = message.get("error")
            if error is not None:
                request.future.set_exception(ResponseError(error.get("code", 0), error.get("message", "")))
            else:
                request.future.set_result(message.get("result"))

    # -- sending ------------------------------------------------------------------------------------

    def send_bytes(self, data: bytes) -> None:
        with self._write_lock:
            self._stdin.write(data)
            self._stdin.flush()

    def send(self, message: Any) -> None:
        self.send_bytes(frame(message))

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def send_request(self, method: str, params: Any = None, *, msg_id: Any = None) -> Pending:
        """Send a request; its answer resolves the returned Pending."""
        pending = Pending(next(self._ids) if msg_id is None else msg_id)
        with self._lock:
            self._pending[_key(pending.msg_id)] = pending
        pending.sent = time.perf_counter()
        self.send({"jsonrpc": "2.0", "id": pending.msg_id, "method": method, "params": params})
        return pending

    def request_nowait(self, method: str, params: Any = None, *, msg_id: Any = None) -> Any:
        """Send a request and return its id without waiting for the answer."""
        return self.send_request(method, params, msg_id=msg_id).msg_id

    def request(self, method: str, params: Any = None, timeout: float = ANSWER_TIMEOUT) -> Any:
        """Send a request and return its result (ResponseError for an error answer)."""
        return self.send_request(method, params).result(timeout)

    def cancel(self, msg_id: Any) -> None:
        """`$/cancelRequest` for the request `msg_id`, as an editor sends when the next key comes."""
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
                    raise ServerGone(f"the server died (exit status {self.process.returncode})")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the server did not say what was awaited")
                self._lock.wait(min(remaining, 1.0))

    def answer(self, msg_id: Any, timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
        """The whole answer message (result or error) to request `msg_id`."""
        answer: dict[str, Any] = self.wait_for(lambda: self.answers.get(_key(msg_id)), timeout)
        return answer

    def _status_in(self, states: Sequence[str], after: int) -> dict[str, Any] | None:
        for note in self.notifications[after:]:
            if note["method"] == STATUS_NOTIFICATION and note["params"]["state"] in states:
                return dict(note["params"])
        return None

    def wait_status(self, *states: str, timeout: float = ANSWER_TIMEOUT, after: int = 0) -> dict[str, Any]:
        """The first `fimLsp/status` notification (from index `after` on) in one of `states`."""
        status: dict[str, Any] = self.wait_for(lambda: self._status_in(states, after), timeout)
        return status

    async def wait_status_async(self, *states: str, timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
        """`wait_status` for asyncio code: the event loop goes on meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                status = self._status_in(states, 0)
            if status is not None:
                return status
            if not self.alive:
                raise ServerGone(f"the server died (exit status {self.process.returncode})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not report {' or '.join(states)} in {timeout:.0f} s")
            await asyncio.sleep(0.02)

    def statuses(self) -> list[dict[str, Any]]:
        with self._lock:
            return [n["params"] for n in self.notifications if n["method"] == STATUS_NOTIFICATION]

    def messages(self, method: str) -> list[dict[str, Any]]:
        """Params of the notifications named `method` (`window/showMessage`, `window/logMessage`)."""
        with self._lock:
            return [n["params"] for n in self.notifications if n["method"] == method]

    # -- the session --------------------------------------------------------------------------------

    def initialize(
        self,
        settings: dict[str, Any] | None = None,
        *,
        root_uri: str | None = None,
        capabilities: dict[str, Any] | None = None,
        timeout: float = ANSWER_TIMEOUT,
    ) -> dict[str, Any]:
        """`initialize` with `settings` as initializationOptions, then `initialized`."""
        params = {
            "processId": os.getpid(),
            "rootUri": root_uri,
            "capabilities": capabilities or {},
            "initializationOptions": settings or {},
        }
        result: dict[str, Any] = self.request("initialize", params, timeout)
        self.notify("initialized", {})
        return result

    # -- documents ----------------------------------------------------------------------------------

    def open(self, uri: str, text: str, language_id: str = "python", version: int = 1) -> None:
        self.documents[uri] = TextDocument(uri, language_id, version, text)
        item = {"uri": uri, "languageId": language_id, "version": version, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": item})

    def change(self, uri: str, version: int, text: str, start: tuple[int, int], end: tuple[int, int]) -> None:
        """An incremental `didChange` replacing the range from `start` to `end` (line, UTF-16 column)."""
        document = self.documents.get(uri)
        if document is not None:
            document.apply_change(text, Position(*start), Position(*end))
            document.version = version
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

    def edit(self, uri: str, start: int, end: int, text: str) -> None:
        """Replace `start:end` (code point offsets) of an open document, as an incremental `didChange`."""
        document = self.documents[uri]
        first, last = position_at(document.text, start), position_at(document.text, end)
        self.change(
            uri, document.version + 1, text, (first.line, first.character), (last.line, last.character)
        )

    def replace_all(self, uri: str, text: str) -> None:
        """Send the whole document (a full-text `didChange`)."""
        document = self.documents[uri]
        document.apply_change(text)
        document.version += 1
        self.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": document.version}, "contentChanges": [{"text": text}]},
        )

    def close_document(self, uri: str) -> None:
        self.documents.pop(uri, None)
        self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})

    # -- completions --------------------------------------------------------------------------------

    def ask_inline(
        self, uri: str, line: int, character: int, *, trigger: int = AUTOMATIC, msg_id: Any = None
    ) -> Pending:
        """Send `textDocument/inlineCompletion` at a position (line, UTF-16 column)."""
        params = {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": trigger},
        }
        return self.send_request("textDocument/inlineCompletion", params, msg_id=msg_id)

    def ask_inline_at(
        self, uri: str, offset: int, *, trigger: int = AUTOMATIC, msg_id: Any = None
    ) -> Pending:
        """`ask_inline` at a code point offset of the editor's copy of the document."""
        position = position_at(self.documents[uri].text, offset)
        return self.ask_inline(uri, position.line, position.character, trigger=trigger, msg_id=msg_id)

    def inline_nowait(self, uri: str, line: int, character: int) -> Any:
        """Ask for an inline completion and return the request's id."""
        return self.ask_inline(uri, line, character).msg_id

    def inline(self, uri: str, line: int, character: int, timeout: float = ANSWER_TIMEOUT) -> list[str]:
        """The inserted texts of an inline completion at a position, waited for."""
        return insert_texts(self.ask_inline(uri, line, character).result(timeout))

    # -- commands -----------------------------------------------------------------------------------

    def command(self, name: str, *arguments: Any) -> Pending:
        """`workspace/executeCommand`: await the Pending, or call its `result()`."""
        return self.send_request("workspace/executeCommand", {"command": name, "arguments": list(arguments)})

    def document_state(self, uri: str) -> Any:
        """The server's view of a document: version, length, sha256."""
        return self.command(DOCUMENT_STATE_COMMAND, uri).result()

    async def stats(self) -> dict[str, int]:
        """The server's counters (requests, cache hits, tokens evaluated, ...)."""
        raw = await self.command(STATS_COMMAND)
        return {key: value for key, value in (raw or {}).items() if isinstance(value, int)}

    async def stats_delta(self) -> dict[str, int]:
        """How the server's counters moved since the previous call."""
        async with self._stats_lock:
            now = await self.stats()
            delta = {key: value - self._last_stats.get(key, 0) for key, value in now.items()}
            self._last_stats = now
            return delta

    async def in_sync(self, uri: str) -> bool:
        """Whether the server's copy of the document is the editor's."""
        state = await self.command(DOCUMENT_STATE_COMMAND, uri)
        local = hashlib.sha256(self.documents[uri].text.encode("utf-8", "surrogatepass")).hexdigest()
        return bool(state) and state.get("sha256") == local

    # -- the process --------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        """The server's resident memory now, in KiB (Linux)."""
        rss = proc_status_kib(self.process.pid, "VmRSS")
        if rss is None:
            raise RuntimeError(f"no VmRSS for process {self.process.pid}")
        return rss

    def peak_rss_mib(self) -> float | None:
        """The server's peak resident memory (VmHWM) in MiB, where /proc tells it."""
        peak = proc_status_kib(self.process.pid, "VmHWM")
        return None if peak is None else round(peak / 1024, 1)

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

    async def close_async(self, timeout: float = 30) -> int | None:
        """`close` for asyncio code, on a thread so the event loop goes on meanwhile."""
        return await asyncio.to_thread(self.close, timeout)

    def __enter__(self) -> EditorClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def insert_texts(result: Any) -> list[str]:
    """The inserted texts of an inline completion answer (a list, or a list object with `items`)."""
    items = result.get("items", []) if isinstance(result, dict) else result or []
    texts = [item.get("insertText") for item in items]
    return [text if isinstance(text, str) else (text or {}).get("value", "") for text in texts]
