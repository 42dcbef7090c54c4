"""The language server: LSP handlers only. Each unpacks params, calls the service, packs the result.

Serves `textDocument/inlineCompletion` (ghost text, LSP 3.18: one item per candidate, best first) and
`textDocument/completion` (the same candidates as items, for clients without inline completion), with
incremental document sync; hears what became of the suggestions (`fim_lsp.acceptance`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import selectors
import sys
import threading
import urllib.parse
import uuid
from dataclasses import asdict
from typing import Any, BinaryIO

from lsprotocol import types
from pygls import uris
from pygls.io_ import StdoutWriter, run_async
from pygls.lsp.server import LanguageServer

from fim_lsp import __version__
from fim_lsp.acceptance import ACCEPT_COMMAND, PARTLY_ACCEPTED_NOTIFICATION, SHOWN_NOTIFICATION, AcceptanceLog
from fim_lsp.completion import Completion, CompletionRequest, Reason
from fim_lsp.config import Settings, parse_settings
from fim_lsp.documents import DocumentStore, InvalidPositionError, Position, TextDocument
from fim_lsp.exclusions import Exclusions
from fim_lsp.protocol import MAX_HEADER_READ, FimProtocol, FramedInput, FramedPipe, is_parse_error
from fim_lsp.service import CompletionService, Status
from fim_lsp.syntax import language_of
from fim_lsp.workspace.session import WorkspaceSession

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
            "fim-lsp",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=FimProtocol,
        )
        self.documents = DocumentStore()
        self.service = CompletionService(
            settings or Settings(), on_status=self._status_changed, **service_options
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._progress_token: str | None = None
        self._reported_error: str | None = None
        self.last_latency_ms: float | None = None
        #: Folders the client opened (paths), and their index once workspace context is on.
        self.folders: list[str] = []
        self.repository: WorkspaceSession | None = None
        self.exclusions = Exclusions(self.service.settings.exclude)
        self.acceptance = AcceptanceLog()

    protocol: FimProtocol

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve on stdin/stdout, framed so that a broken header costs one message. A pipe, socket or
        terminal is read by the event loop itself (`FramedPipe`); anything else through pygls's
        thread-pool reader (`FramedInput`)."""
        stdin = stdin or sys.stdin.buffer
        if not _watchable(stdin):
            super().start_io(FramedInput(stdin), stdout)  # type: ignore[arg-type]
            return
        # What pygls's own start_io sets up, but for the reader.
        self._stop_event = stop = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            asyncio.run(self._serve_pipe(stdin, stop))
        except BrokenPipeError:
            logger.error("the client's end of the connection is closed; shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    async def _serve_pipe(self, stdin: BinaryIO, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_HEADER_READ, loop=loop)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), stdin)
        await run_async(
            stop_event=stop,
            reader=FramedPipe(reader),
            protocol=self.protocol,
            logger=logger,
            error_handler=self.report_server_error,
        )

    def report_server_error(self, error: Exception, source: Any) -> None:
        """pygls shows each error outside a request as a pop-up; a malformed message is not something
        the user can act on: it is answered as JSON-RPC says and logged."""
        if is_parse_error(error):
            self.protocol.answer_parse_error(error)
        else:
            logger.error("server error (%s): %s", getattr(source, "__name__", source), error)

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
            {
                "state": status.state,
                "message": status.message,
                "latencyMs": self.last_latency_ms,
                "acceptance": self.acceptance.counts.as_wire(),
            },
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
        self._progress_token = await self._begin_progress(
            "fim-lsp: loading model", self.service.settings.model
        )
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
        if settings.exclude != self.exclusions.patterns:
            self.exclusions = Exclusions(settings.exclude)
            self.stop_workspace()  # indexed again under the new rules, from the next lines on
        if self._loop is not None:  # after `initialized`: follow the workspace setting now
            if settings.workspace_context:
                self._loop.create_task(self.start_workspace())
            else:
                self.stop_workspace()

    # -- workspace ------------------------------------------------------------------------------------

    async def start_workspace(self) -> None:
        """Index the workspace folders in the background (with `$/progress` when the client takes it);
        completions go on meanwhile, with whatever is indexed so far."""
        if self.repository is not None or not self.folders or not self.service.settings.workspace_context:
            return
        session = self.repository = WorkspaceSession(exclusions=self.exclusions)
        token = await self._begin_progress("fim-lsp: indexing workspace", ", ".join(self.folders))

        def progress(done: int, total: int) -> None:
            if token is not None:
                report = types.WorkDoneProgressReport(
                    message=f"{done}/{total} files", percentage=100 * done // max(total, 1)
                )
                self.call_soon(self.work_done_progress.report, token, report)

        def finished() -> None:
            stats = session.index.stats()
            logger.info("workspace indexed: %d files, %d definitions", stats.files, stats.definitions)
            if token is not None:
                end = types.WorkDoneProgressEnd(message=f"{stats.files} files")
                self.call_soon(self.work_done_progress.end, token, end)

        session.start(self.folders, progress, finished)
        for document in list(self.documents):
            path = _path_of(document.uri)
            if path is not None:
                session.opened(path, document.text)

    def stop_workspace(self) -> None:
        session, self.repository = self.repository, None
        if session is not None:
            session.stop()

    def change_folders(self, added: list[str], removed: list[str]) -> None:
        self.folders = [f for f in self.folders if f not in removed] + [
            f for f in added if f not in self.folders
        ]
        if self.repository is not None:
            self.repository.remove_folders(removed)
            self.repository.start(added)
        elif self._loop is not None:
            self._loop.create_task(self.start_workspace())

    def buffer_event(self, uri: str, event: str, rows: list[int] | None = None) -> None:
        """Tell the workspace index about an open buffer (`opened`, `changed`, `saved`, `closed`)."""
        session, path = self.repository, _path_of(uri)
        if session is None or path is None:
            return
        document = self.documents.get(uri)
        if event == "opened" and document is not None:
            session.opened(path, document.text)
        elif event == "changed" and document is not None:
            session.changed(path, document.text, rows or ())
        elif event == "saved":
            session.saved(path)
        elif event == "closed":
            session.closed(path)

    async def _begin_progress(self, title: str, message: str) -> str | None:
        """A `$/progress` token, begun; None when the client does not take progress."""
        capabilities = self.client_capabilities.window
        if capabilities is None or not capabilities.work_done_progress:
            return None
        token = f"fim-lsp-{uuid.uuid4().hex[:8]}"
        try:
            await self.work_done_progress.create_async(token)
            self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, message=message))
        except Exception:  # a client that refuses progress still gets completions
            logger.debug("client refused work done progress", exc_info=True)
            return None
        return token

    # -- completions ----------------------------------------------------------------------------------

    def excluded(self, uri: str) -> bool:
        """Whether the document matches the `exclude` setting: no engine may see its text."""
        path = _path_of(uri) or urllib.parse.unquote(urllib.parse.urlsplit(uri).path)
        roots = [folder for folder in self.folders if path.startswith(os.path.join(folder, ""))]
        return self.exclusions.excludes(path, max(roots, key=len, default=None))

    def request_at(self, uri: str, offset: int) -> CompletionRequest | None:
        """A completion request for a place in an open document (None where completion is off, or the
        document is excluded: then neither a completion nor a prepared prompt sees its text)."""
        if self.excluded(uri):
            logger.debug("no completion in %s: it matches the exclude setting", uri.rsplit("/", 1)[-1])
            return None
        document = self.documents.get(uri)
        if document is None or not self.service.settings.enables(document.language_id):
            return None
        text = document.text_for_model()
        workspace = None
        path = _path_of(uri)
        if self.repository is not None and path is not None:
            language = language_of(document.language_id, uri)
            workspace = self.repository.context_for(path, text, offset, language)
        return CompletionRequest(text, offset, document.language_id, uri, document.syntax, workspace)

    def typed_at(self, uri: str, offset: int) -> None:
        """The user edited the document there: evaluate the prompt a completion there would need while
        the editor waits out its debounce before asking."""
        request = self.request_at(uri, offset)
        if request is not None:
            self.service.prepare(uri, request)

    async def complete_at(
        self, uri: str, position: types.Position, *, alternatives: bool = False
    ) -> Completion | None:
        """The completion for a cursor, or None when there is nothing to ask the model; with
        `alternatives`, other middles too."""
        document = self.documents.get(uri)
        if document is None:
            logger.info("completion asked for a document never opened: %s", uri)
            return None
        try:
            offset = document.offset_at(Position(position.line, position.character))
        except InvalidPositionError as exc:
            logger.info("completion at an invalid position: %s", exc)
            return None
        request = self.request_at(uri, offset)
        if request is None:
            return None
        completion = await self.service.complete(uri, request, alternatives=alternatives)
        total = completion.timings_ms.get("total")
        if total is not None:
            self.last_latency_ms = round(total, 1)
        logger.info(
            "completion %s:%d:%d shape=%s reason=%s chars=%s timings=%s",
            uri.rsplit("/", 1)[-1],
            position.line,
            position.character,
            completion.shape.value,
            completion.why,
            None if completion.text is None else len(completion.text),
            {k: round(v, 1) for k, v in completion.timings_ms.items()},
        )
        if completion.text is not None:
            self._publish_status(self.service.status)
        return completion

    def candidates_of(self, uri: str, completion: Completion | None) -> list[tuple[str, types.Command]]:
        """The candidates to answer, best first, each with the command the editor runs once it has
        inserted the whole of it; the answer is recorded as a suggestion (or as typing through one)."""
        if completion is None or completion.text is None:
            return []
        texts = (completion.text, *completion.alternatives)
        suggestion = self.acceptance.answered(uri, texts, continues=completion.reason == Reason.TYPED_THROUGH)
        return [(text, _accept_command(self.acceptance.tag(suggestion, text))) for text in texts]

    def suggestion_shown(self, params: Any) -> None:
        """The editor shows an item: counted once per suggestion, and typed-through answers and the
        prefetch follow the candidate on screen."""
        item = params.get("item") if isinstance(params, dict) else None
        suggestion = self.acceptance.shown(item)
        text = item.get("insertText") if isinstance(item, dict) else None
        if suggestion is None:
            return
        if isinstance(text, str):
            self.service.show(suggestion.key, text)
        self._publish_status(self.service.status)


def _plain(value: Any) -> Any:
    """A notification's params as the JSON that was sent: pygls hands the params of a method outside
    the protocol over as nested named tuples."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {key: _plain(item) for key, item in value._asdict().items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _accept_command(argument: dict[str, int]) -> types.Command:
    """The command an item runs once its whole text is inserted: fim-lsp counts it as accepted."""
    return types.Command(title="fim-lsp: accepted", command=ACCEPT_COMMAND, arguments=[argument])


def _offset_after(document: TextDocument, start: Position, inserted: str) -> int | None:
    """Where the cursor is after `inserted` replaced a range from `start` (None for a range the document
    does not have, which a broken client can send)."""
    try:
        return document.offset_at(start, clamp_line=True) + len(inserted)
    except InvalidPositionError:
        return None


def _path_of(uri: str) -> str | None:
    """The file system path of a `file:` URI; None for other schemes (untitled buffers, remote files)."""
    if not uri.startswith("file:"):
        return None
    return uris.to_fs_path(uri)


def _folders_of(params: types.InitializeParams) -> list[str]:
    """The workspace folders' paths: `workspaceFolders`, else the older `rootUri` / `rootPath`."""
    if params.workspace_folders:
        paths = [_path_of(folder.uri) for folder in params.workspace_folders]
        return [path for path in paths if path]
    root = _path_of(params.root_uri) if params.root_uri else params.root_path
    return [root] if root else []


def create_server(settings: Settings | None = None, **service_options: Any) -> FimLanguageServer:
    """A server with every handler registered."""
    ls = FimLanguageServer(settings, **service_options)
    _register_session(ls)
    _register_documents(ls)
    _register_completions(ls)
    _register_commands(ls)
    return ls


def _register_session(ls: FimLanguageServer) -> None:
    """Initialization, settings, workspace folders and shutdown."""

    @ls.feature(types.INITIALIZE)
    def initialize(ls: FimLanguageServer, params: types.InitializeParams) -> None:
        if params.initialization_options is not None:
            ls.apply_settings(params.initialization_options)
        ls.folders = _folders_of(params)

    @ls.feature(types.INITIALIZED)
    async def initialized(ls: FimLanguageServer, _params: types.InitializedParams) -> None:
        await ls.begin_loading()
        await ls.start_workspace()

    @ls.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def did_change_folders(ls: FimLanguageServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
        added = [_path_of(folder.uri) for folder in params.event.added]
        removed = [_path_of(folder.uri) for folder in params.event.removed]
        ls.change_folders([p for p in added if p], [p for p in removed if p])

    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: FimLanguageServer, params: types.DidChangeConfigurationParams) -> None:
        raw = params.settings
        if isinstance(raw, dict) and CONFIGURATION_SECTION in raw:
            raw = raw[CONFIGURATION_SECTION]
        if raw is not None:
            ls.apply_settings(raw)

    @ls.feature(types.SHUTDOWN)
    def shutdown(ls: FimLanguageServer, _params: Any) -> None:
        ls.stop_workspace()
        ls.service.shutdown()


def _register_documents(ls: FimLanguageServer) -> None:
    """Document sync: the store, each document's tree, and the workspace index's buffers."""

    @ls.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: FimLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        ls.documents.open(doc.uri, doc.language_id, doc.version, doc.text)
        ls.buffer_event(doc.uri, "opened")

    @ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: FimLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        document = ls.documents.get(params.text_document.uri)
        if document is None:
            logger.warning("change to a document never opened: %s", params.text_document.uri)
            return
        edited_at: int | None = None
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start, end = change.range.start, change.range.end
                where = Position(start.line, start.character)
                document.apply_change(change.text, where, Position(end.line, end.character))
                edited_at = _offset_after(document, where, change.text)
            else:
                document.apply_change(change.text)
                edited_at = None
        document.version = params.text_document.version
        document.sync_syntax()
        rows = [
            c.range.start.line
            for c in params.content_changes
            if isinstance(c, types.TextDocumentContentChangePartial)
        ]
        ls.buffer_event(document.uri, "changed", rows)
        if edited_at is not None:
            ls.typed_at(document.uri, edited_at)

    @ls.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: FimLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.buffer_event(params.text_document.uri, "saved")

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: FimLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.service.forget(params.text_document.uri)
        ls.documents.close(params.text_document.uri)
        ls.buffer_event(params.text_document.uri, "closed")
        ls.acceptance.forget(params.text_document.uri)


def _register_completions(ls: FimLanguageServer) -> None:
    """Inline completion (ghost text: one item per candidate), the same candidates as completion items for
    older clients, and what the editor says became of them (`fim_lsp.acceptance`)."""

    @ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: FimLanguageServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList | None:
        # Asked for on purpose (a key, or the next suggestion): alternatives come with the first. Typing
        # asks automatically: one middle, as soon as it is whole.
        invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        completion = await ls.complete_at(params.text_document.uri, params.position, alternatives=invoked)
        here = types.Range(params.position, params.position)
        return types.InlineCompletionList(
            items=[
                types.InlineCompletionItem(insert_text=text, range=here, command=command)
                for text, command in ls.candidates_of(params.text_document.uri, completion)
            ]
        )

    @ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[]))
    async def completion(ls: FimLanguageServer, params: types.CompletionParams) -> types.CompletionList:
        result = await ls.complete_at(params.text_document.uri, params.position)
        here = types.Range(params.position, params.position)
        items = [
            types.CompletionItem(
                label=text.strip().splitlines()[0][:60],
                kind=types.CompletionItemKind.Snippet,
                detail="fim-lsp",
                sort_text=f"{rank:02d}",
                filter_text=text,
                text_edit=types.TextEdit(range=here, new_text=text),
                insert_text_format=types.InsertTextFormat.PlainText,
                command=command,
            )
            for rank, (text, command) in enumerate(ls.candidates_of(params.text_document.uri, result))
        ]
        # Incomplete: the next keystroke asks again, since the middle depends on every character typed.
        return types.CompletionList(is_incomplete=True, items=items)

    @ls.feature(SHOWN_NOTIFICATION)
    def did_show(ls: FimLanguageServer, params: Any) -> None:
        ls.suggestion_shown(_plain(params))

    @ls.feature(PARTLY_ACCEPTED_NOTIFICATION)
    def did_partially_accept(ls: FimLanguageServer, params: Any) -> None:
        params = _plain(params)
        if not isinstance(params, dict):
            return
        if ls.acceptance.partly_accepted(params.get("item"), params.get("acceptedLength")):
            ls._publish_status(ls.service.status)

    @ls.command(ACCEPT_COMMAND)
    def did_accept(ls: FimLanguageServer, *arguments: Any) -> None:
        if arguments and ls.acceptance.accepted(_plain(arguments[0])):
            ls._publish_status(ls.service.status)


def _register_commands(ls: FimLanguageServer) -> None:
    """Commands for debugging and benchmarks: a document's state as the server sees it, the counters."""

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
        engine = ls.service.engine
        usage = engine.cache_usage() if engine is not None else {}
        return {
            **ls.service.stats,
            **usage,
            **asdict(ls.acceptance.counts),
            "cache_entries": len(ls.service.cache),
            "state": ls.service.status.state,
        }


def _watchable(stream: BinaryIO) -> bool:
    """Whether the event loop can watch `stream` for input: a pipe, socket or terminal can be, a regular
    file or /dev/null cannot (epoll refuses them). Not on Windows, whose event loop reads pipes
    otherwise."""
    if sys.platform == "win32":
        return False
    try:
        descriptor = stream.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(descriptor, selectors.EVENT_READ)
    except (AttributeError, OSError, ValueError):  # no descriptor (an in-memory stream), or refused
        return False
    return True
