"""The JSON-RPC layer under the LSP handlers: what pygls 2.1 leaves to chance when a client misbehaves.

An editor's language client is not always well-behaved, and a language server that stops answering
takes completion away until the editor is restarted. pygls, left alone:

- answers a body that is not JSON, or a request whose params do not fit its method's types, with a
  pop-up and no answer at all, so the client waits for an answer that never comes. JSON-RPC 2.0 asks
  for error -32700 (parse error, id null) and -32602 (invalid params, the request's id); a message that
  is JSON but not a JSON-RPC object (an array, a number, no `"jsonrpc": "2.0"`, an id that is neither a
  number nor a string) gets -32600 (invalid request);
- fails a request without `params` to a method it does not know with an internal error (JSON-RPC lets
  `params` be left out), so the client never gets -32601 (method not found); and takes a notification's
  method sent with an id (a request) as the notification, leaving the request unanswered: -32601;
- after a header it cannot read (`Content-Length: abc`, a body shorter than its length said) reads every
  later body as header lines, and all later messages are lost: `FramedInput` finds the next
  `Content-Length` header and starts again from there;
- keeps the future of every notification it handles (and of each handler its built-in features call)
  for the life of the process: a leak of about 1 KB per keystroke, which the load storm test measures;
- keeps a second copy of every open document and applies each change to it by splitting the whole
  text into lines (O(file size) per keystroke, and its split breaks lines at form feeds and Unicode
  separators, which LSP does not): fim-lsp keeps its own copy (`documents.py`), so pygls's is not kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Generator
from functools import partial
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method

logger = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602

#: A Content-Length above this is refused as a broken header rather than read (and allocated: Python
#: allocates the whole length before reading). A 10 MB file with every character escaped is under 64 MB.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
#: Longest line read at once while looking for headers (a body read as header lines after a bad header).
MAX_HEADER_READ = 1024 * 1024

_CONTENT_LENGTH = re.compile(rb"(?i)content-length[ \t]*:[ \t]*(\d+)[ \t]*\r?\n")
_CONTENT_LENGTH_INSIDE = re.compile(rb"(?i)content-length[ \t]*:")


class _Refused:
    """What a message that has been answered (or ignored) while being read becomes: nothing to do."""


_REFUSED = _Refused()


class _Framing:
    """What the server's stdin readers share: pygls reads a message as header lines then a body, and
    after a header it could not use reads every later body as header lines. Each line read is passed
    through `_frame`: a header line is normalised to the one spelling pygls matches
    (`Content-Length: N\\r\\n`, whatever the case and spacing), a Content-Length over
    MAX_MESSAGE_BYTES is refused, and when a body is read as header lines the next `Content-Length` in
    it starts a line of its own, so the message after it is read as a message again."""

    def __init__(self) -> None:
        self._pending = b""

    def _take_pending(self) -> bytes:
        line, self._pending = self._pending, b""
        return line

    def _frame(self, line: bytes) -> bytes | None:
        """The header line pygls is to see for `line`, or None when none is to be seen yet (what is
        left of it is kept for the next read)."""
        inside = _CONTENT_LENGTH_INSIDE.search(line, 1)
        if inside is not None:
            # A body that ran into the next message's header: hand back the body's rest as one (ignored)
            # line and keep the header for the next call.
            head, self._pending = line[: inside.start()], line[inside.start() :]
            if head.strip():
                logger.warning("skipped %d bytes that were not a well-framed message", len(head))
                return head
            return None
        match = _CONTENT_LENGTH.fullmatch(line)
        if match is None:
            return line
        length = int(match.group(1))
        if length > MAX_MESSAGE_BYTES:
            logger.warning("refused a message of %d bytes (more than %d)", length, MAX_MESSAGE_BYTES)
            return b"X-Refused-Content-Length: %d\r\n" % length
        return b"Content-Length: %d\r\n" % length


class FramedInput(_Framing):
    """A blocking stream framed for pygls's thread-pool reader (`readline`, `read`)."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream

    def readline(self) -> bytes:
        while True:
            line = self._take_pending() or self._stream.readline(MAX_HEADER_READ)
            framed = self._frame(line)
            if framed is not None:
                return framed

    def read(self, size: int) -> bytes:
        return self._stream.read(size)


class FramedPipe(_Framing):
    """A pipe the event loop watches itself (`asyncio.StreamReader`), framed for pygls's asynchronous
    message loop (`readline`, `readexactly`). pygls reads stdin through a thread pool, one hand-over to
    a thread and back per header line and per body: on two busy cores each hand-over waits for a core,
    which showed as a tail of several milliseconds on answers computed in well under one."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        super().__init__()
        self._reader = reader

    async def readline(self) -> bytes:
        # A handler pygls started for the last message (a request: a task) takes its first step before
        # the next message is handled, as it does with pygls's reader: the request reads its document
        # there, and a change read after it must not be seen by it. Buffered input is read without
        # giving the loop a turn, so the turn is given here.
        await asyncio.sleep(0)
        while True:
            line = self._take_pending() or await self._read_line()
            framed = self._frame(line)
            if framed is not None:
                return framed

    async def readexactly(self, size: int) -> bytes:
        try:
            return await self._reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:  # the end of input: what there was, as read() gives
            return exc.partial

    async def _read_line(self) -> bytes:
        """A line, or its first part when it is longer than the reader's limit (MAX_HEADER_READ)."""
        try:
            return await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError:
            return await self._reader.read(MAX_HEADER_READ)


def _valid_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


class FimProtocol(LanguageServerProtocol):
    """pygls's LSP protocol with JSON-RPC's error answers where pygls gives none, and without pygls's
    copy of the open documents."""

    def send_error(self, msg_id: Any, code: int, message: str) -> None:
        """An error answer; `msg_id` None when the request's id could not be read (JSON-RPC's `null`)."""
        self._send_data({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}})

    def structure_message(self, data: dict[str, Any]) -> Any:
        if "jsonrpc" in data and "method" in data and "params" not in data:
            data = {**data, "params": None}  # JSON-RPC lets params be left out
        try:
            message = super().structure_message(data)
        except JsonRpcException:
            # pygls has logged the details; say once, briefly, what became of the message.
            method = data.get("method")
            if method is not None and _valid_id(data.get("id")):
                logger.warning("request %s: params do not fit the method; answered invalid params", method)
                self.send_error(data["id"], INVALID_PARAMS, f"Invalid params for {method}")
            else:
                logger.warning("ignored a message that does not fit its method: %s", method)
            return _REFUSED
        if "jsonrpc" in data and "method" in data and "id" in data and not hasattr(message, "id"):
            # A notification's method sent as a request: no request has that name, and a request must
            # be answered (a client waiting for it would wait forever).
            if _valid_id(data["id"]):
                self.send_error(data["id"], METHOD_NOT_FOUND, f"{data['method']} is a notification")
            return _REFUSED
        return message

    def handle_message(self, message: Any) -> None:
        if message is _REFUSED:
            return
        raw_id = message.get("id") if isinstance(message, dict) else getattr(message, "id", None)
        if not hasattr(message, "jsonrpc") or message.jsonrpc != self.VERSION:
            logger.warning("answered a message that is not JSON-RPC 2.0 as an invalid request")
            self.send_error(raw_id if _valid_id(raw_id) else None, INVALID_REQUEST, "Invalid request")
            return
        if hasattr(message, "id") and not _valid_id(message.id):
            logger.warning("answered a message with an id of type %s as an invalid request", type(raw_id))
            self.send_error(None, INVALID_REQUEST, "Invalid request: an id is a number or a string")
            return
        super().handle_message(message)

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        # pygls files the future of every handler it runs under its message id, and forgets it only when
        # it sends a request's answer: the futures of notifications (each keystroke's didChange) and of
        # the handlers its built-in features call were kept for ever, about 1 KB each.
        answers = isinstance(callback, partial) and callback.func == self._send_handler_result
        future = None if answers else self._request_futures.get(msg_id)
        if future is not None:
            future.add_done_callback(lambda _done: self._request_futures.pop(msg_id, None))

    def answer_parse_error(self, error: Exception) -> None:
        """A body that is not JSON (or not UTF-8) was read: JSON-RPC's parse error, with id null."""
        logger.warning("answered a message that is not JSON: %s", error)
        self.send_error(None, PARSE_ERROR, "Parse error")

    # pygls's copies of the open documents: fim-lsp keeps its own, so only the handlers run.

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> Generator[Any]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Generator[Any]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> Generator[Any]:
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None


def is_parse_error(error: Exception) -> bool:
    """Whether pygls's reader failed because a body was not JSON (or not UTF-8)."""
    return isinstance(error, (json.JSONDecodeError, UnicodeDecodeError))
