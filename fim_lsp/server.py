"""The language server: LSP handlers only. Each unpacks params, calls the service, packs the result.

Serves `textDocument/inlineCompletion` (ghost text, LSP 3.18) and `textDocument/completion` (one item
with the same text, for clients without inline completion), with incremental document sync.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import uuid
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from fim_lsp import __version__
from fim_lsp.config import Settings, parse_settings
from fim_lsp.documents import DocumentStore, InvalidPositionError, Position, offset_at
from fim_lsp.pipeline import Completion, CompletionRequest
from fim_lsp.service import CompletionService, Status
from fim_lsp.syntax import DocumentSyntax, follow_document, language_of

logger = logging.getLogger(__name__)

STATUS_NOTIFICATION = "fimLsp/status"
CONFIGURATION_SECTION = "fimLsp"
#: Command returning the server's view of a document (version, length, sha256), for debugging sync
#: problems from an editor and for tests that check the server's copy equals the client's.
DOCUMENT_STATE_COMMAND = "fim-lsp.documentState"
#: Command returning the service's counters (requests, cache hits, tokens evaluated), for benchmarks.
STATS_COMMAND = "fim-lsp.stats"

_MESSAGE_TYPES = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
    logging.INFO: types.MessageType.Info,
}


class ClientLogHandler(logging.Handler):
    """Forwards fim-lsp's log records to the client's log (`window/logMessage`), from any thread."""

    def __init__(self, server: FimLanguageServer) -> None:
        super().__init__(logging.INFO)
        self.server = server

    def emit(self, record: logging.LogRecord) -> None:
        kind = _MESSAGE_TYPES.get(record.levelno, types.MessageType.Log)
        if record.levelno >= logging.ERROR:
            kind = types.MessageType.Error
        try:
            message = self.format(record)
        except Exception:  # a record that cannot be formatted is not worth a crash
            return
        self.server.call_soon(self.server.window_log_message, types.LogMessageParams(kind, message))


class FimLanguageServer(LanguageServer):
    """pygls server holding the open documents and the completion service."""

    def __init__(self, settings: Settings | None = None, **service_options: Any) -> None:
        super().__init__(
            "fim-lsp", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental
        )
        self.documents = DocumentStore()
        #: Each open document's syntax tree, re-parsed incrementally on every change.
        self.syntax: dict[str, DocumentSyntax] = {}
        self.service = CompletionService(
            settings or Settings(), on_status=self._status_changed, **service_options
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._progress_token: str | None = None
        self._reported_error: str | None = None
        self.last_latency_ms: float | None = None

    # -- status, progress and messages, safe to call from the worker thread ---------------------------

    def call_soon(self, callback: Any, *args: Any) -> None:
        """Run `callback` on the server's event loop (the protocol is not thread-safe)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback, *args)

    def _status_changed(self, status: Status) -> None:
        self.call_soon(self._publish_status, status)

    def _publish_status(self, status: Status) -> None:
        if status.state != "loading" and self._progress_token is not None:
            self.work_done_progress.end(
                self._progress_token, types.WorkDoneProgressEnd(message=status.message)
            )
            self._progress_token = None
        self.protocol.notify(
            STATUS_NOTIFICATION,
            {"state": status.state, "message": status.message, "latencyMs": self.last_latency_ms},
        )
        actionable = status.error is not None and status.error.user_actionable
        # Shown once per distinct problem: a missing model must not pop up on every keystroke.
        if status.state == "error" and actionable and status.message != self._reported_error:
            self._reported_error = status.message
            self.window_show_message(
                types.ShowMessageParams(types.MessageType.Error, f"fim-lsp: {status.message}")
            )

    def _log_to_client(self) -> None:
        """From now on fim-lsp's log goes to the client's log, and no longer also to stderr, which
        editors show in the same place (a file given with --log-file keeps its copy)."""
        logging.getLogger("fim_lsp").addHandler(ClientLogHandler(self))
        root = logging.getLogger()
        for handler in list(root.handlers):
            if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stderr:
                root.removeHandler(handler)

    async def begin_loading(self) -> None:
        """Start loading the engine, with `$/progress` when the client supports it."""
        self._loop = asyncio.get_running_loop()
        self._log_to_client()
        capabilities = self.client_capabilities.window
        if capabilities is not None and capabilities.work_done_progress:
            token = f"fim-lsp-load-{uuid.uuid4().hex[:8]}"
            try:
                await self.work_done_progress.create_async(token)
                self.work_done_progress.begin(
                    token,
                    types.WorkDoneProgressBegin(
                        title="fim-lsp: loading model", message=self.service.settings.model
                    ),
                )
                self._progress_token = token
            except Exception:  # a client that refuses progress still gets completions
                logger.debug("client refused work done progress", exc_info=True)
        self.service.start()

    def apply_settings(self, raw: Any) -> None:
        """Take settings from the client; report values we cannot use, and keep their defaults."""
        settings, problems = parse_settings(raw, self.service.settings)
        for problem in problems:
            logger.warning("setting %s", problem)
        if problems:
            self.window_show_message(
                types.ShowMessageParams(types.MessageType.Warning, "fim-lsp settings: " + "; ".join(problems))
            )
        logging.getLogger("fim_lsp").setLevel(settings.log_level.upper().replace("TRACE", "DEBUG"))
        self.service.update_settings(settings)

    # -- documents ------------------------------------------------------------------------------------

    def document_changed(self, uri: str) -> None:
        """Bring the document's syntax tree up to date with its text."""
        document = self.documents.get(uri)
        if document is None:
            self.syntax.pop(uri, None)
            return
        language = language_of(document.language_id, uri)
        tree = follow_document(self.syntax.get(uri), language, document.text)
        if tree is None:
            self.syntax.pop(uri, None)
        else:
            self.syntax[uri] = tree

    # -- completions ----------------------------------------------------------------------------------

    async def complete_at(self, uri: str, position: types.Position) -> Completion | None:
        """The completion for a cursor, or None when there is nothing to ask the model."""
        document = self.documents.get(uri)
        if document is None:
            logger.info("completion asked for a document never opened: %s", uri)
            return None
        if not self.service.settings.enables(document.language_id):
            return None
        try:
            offset = offset_at(document.text, Position(position.line, position.character))
        except InvalidPositionError as exc:
            logger.info("completion at an invalid position: %s", exc)
            return None
        completion = await self.service.complete(
            uri, CompletionRequest(document.text, offset, document.language_id, uri, self.syntax.get(uri))
        )
        total = completion.timings_ms.get("total")
        if total is not None:
            self.last_latency_ms = round(total, 1)
        logger.info(
            "completion %s:%d:%d shape=%s reason=%s chars=%s timings=%s",
            uri.rsplit("/", 1)[-1],
            position.line,
            position.character,
            completion.shape.value,
            completion.reason,
            None if completion.text is None else len(completion.text),
            {k: round(v, 1) for k, v in completion.timings_ms.items()},
        )
        if completion.text is not None:
            self._publish_status(self.service.status)
        return completion


def create_server(settings: Settings | None = None, **service_options: Any) -> FimLanguageServer:
    """A server with every handler registered."""
    ls = FimLanguageServer(settings, **service_options)

    @ls.feature(types.INITIALIZE)
    def initialize(ls: FimLanguageServer, params: types.InitializeParams) -> None:
        if params.initialization_options is not None:
            ls.apply_settings(params.initialization_options)

    @ls.feature(types.INITIALIZED)
    async def initialized(ls: FimLanguageServer, _params: types.InitializedParams) -> None:
        await ls.begin_loading()

    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: FimLanguageServer, params: types.DidChangeConfigurationParams) -> None:
        raw = params.settings
        if isinstance(raw, dict) and CONFIGURATION_SECTION in raw:
            raw = raw[CONFIGURATION_SECTION]
        if raw is not None:
            ls.apply_settings(raw)

    @ls.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: FimLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        ls.documents.open(doc.uri, doc.language_id, doc.version, doc.text)
        ls.document_changed(doc.uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: FimLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        document = ls.documents.get(params.text_document.uri)
        if document is None:
            logger.warning("change to a document never opened: %s", params.text_document.uri)
            return
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start, end = change.range.start, change.range.end
                document.apply_change(
                    change.text, Position(start.line, start.character), Position(end.line, end.character)
                )
            else:
                document.apply_change(change.text)
        document.version = params.text_document.version
        ls.document_changed(document.uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: FimLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.service.forget(params.text_document.uri)
        ls.documents.close(params.text_document.uri)
        ls.syntax.pop(params.text_document.uri, None)

    @ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: FimLanguageServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        completion = await ls.complete_at(params.text_document.uri, params.position)
        if completion is None or completion.text is None:
            return types.InlineCompletionList(items=[])
        here = types.Range(params.position, params.position)
        return types.InlineCompletionList(
            items=[types.InlineCompletionItem(insert_text=completion.text, range=here)]
        )

    @ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[]))
    async def completion(ls: FimLanguageServer, params: types.CompletionParams) -> types.CompletionList:
        result = await ls.complete_at(params.text_document.uri, params.position)
        if result is None or result.text is None:
            return types.CompletionList(is_incomplete=True, items=[])
        here = types.Range(params.position, params.position)
        first_line = result.text.strip().splitlines()[0]
        item = types.CompletionItem(
            label=first_line[:60],
            kind=types.CompletionItemKind.Snippet,
            detail="fim-lsp",
            filter_text=result.text,
            text_edit=types.TextEdit(range=here, new_text=result.text),
            insert_text_format=types.InsertTextFormat.PlainText,
        )
        # Incomplete: the next keystroke asks again, since the middle depends on every character typed.
        return types.CompletionList(is_incomplete=True, items=[item])

    @ls.command(DOCUMENT_STATE_COMMAND)
    def document_state(ls: FimLanguageServer, uri: str) -> dict[str, Any] | None:
        document = ls.documents.get(uri)
        if document is None:
            return None
        return {
            "version": document.version,
            "length": len(document.text),
            "sha256": hashlib.sha256(document.text.encode("utf-8", "surrogatepass")).hexdigest(),
        }

    @ls.command(STATS_COMMAND)
    def stats(ls: FimLanguageServer) -> dict[str, Any]:
        return {**ls.service.stats, "cache_entries": len(ls.service.cache), "state": ls.service.status.state}

    @ls.feature(types.SHUTDOWN)
    def shutdown(ls: FimLanguageServer, _params: Any) -> None:
        ls.service.shutdown()

    return ls
