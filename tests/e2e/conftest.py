"""End-to-end fixtures: start `fim-lsp --stdio` as an editor would and talk to it with pytest-lsp."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import LanguageClient

FAST_MODEL = "qwen2.5-coder-0.5b"
#: Tests check behaviour, not speed: a generous time budget keeps a busy CI machine from cutting answers.
TEST_TIME_BUDGET_MS = 300_000
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


class Editor:
    """A pytest-lsp client plus the fim-lsp specific things an editor watches: status and documents."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.statuses: list[dict[str, Any]] = []
        #: The acceptance counts each status carried, in order.
        self.acceptance: list[Any] = []
        self._changed = asyncio.Event()
        self.versions: dict[str, int] = {}
        self.server_capabilities: types.ServerCapabilities | None = None
        self._cancelled = 0

    def on_status(self, params: Any) -> None:
        self.statuses.append({"state": params.state, "message": params.message})
        self.acceptance.append(getattr(params, "acceptance", None))
        self._changed.set()

    async def wait_until(self, *states: str, timeout: float = 300) -> dict[str, Any]:
        """The first status in `states`, waiting for it to arrive."""

        async def arrived() -> dict[str, Any]:
            while True:
                for status in self.statuses:
                    if status["state"] in states:
                        return status
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(arrived(), timeout)

    def open(self, uri: str, text: str, language_id: str = "python") -> None:
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, language_id, 1, text))
        )

    def change(self, uri: str, text: str, start: tuple[int, int], end: tuple[int, int]) -> None:
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                [
                    types.TextDocumentContentChangePartial(
                        range=types.Range(types.Position(*start), types.Position(*end)), text=text
                    )
                ],
            )
        )

    async def inline(
        self, uri: str, line: int, character: int, *, invoked: bool = False
    ) -> list[types.InlineCompletionItem]:
        """Ask for ghost text as typing does (automatic), or as the user does on purpose (`invoked`: a
        key, or the next suggestion)."""
        kind = types.InlineCompletionTriggerKind
        result = await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri),
                position=types.Position(line, character),
                context=types.InlineCompletionContext(kind.Invoked if invoked else kind.Automatic),
            )
        )
        if result is None:
            return []
        return list(result.items if isinstance(result, types.InlineCompletionList) else result)

    async def cancelled_inline(self, uri: str, line: int, character: int, after_s: float) -> None:
        """Ask for a completion and cancel it with `$/cancelRequest` `after_s` later, as an editor does
        when the next key comes; the request must then fail as cancelled."""
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri),
            position=types.Position(line, character),
            context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Automatic),
        )
        self._cancelled += 1
        request_id = f"cancel-me-{self._cancelled}"
        pending = self.client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=request_id
        )
        await asyncio.sleep(after_s)
        self.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=request_id))
        with pytest.raises(Exception, match="cancel"):
            await asyncio.wrap_future(pending)

    async def document_state(self, uri: str) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="fim-lsp.documentState", arguments=[uri])
        )


StartEditor = Callable[..., Awaitable[Editor]]


@pytest.fixture
async def start_editor() -> AsyncIterator[StartEditor]:
    """Start fim-lsp with the given initializationOptions; shut every started server down afterwards."""
    editors: list[Editor] = []

    async def start(
        settings: dict[str, Any] | None = None,
        *,
        progress: bool = False,
        env: dict[str, str] | None = None,
        command: list[str] | None = None,
        root_uri: str | None = None,
    ) -> Editor:
        client = pytest_lsp.make_test_lsp_client()
        editor = Editor(client)
        client.feature("fimLsp/status")(lambda params: editor.on_status(params))
        command = command or [sys.executable, "-m", "fim_lsp"]
        await client.start_io(*command, "--stdio", env={**os.environ, **(env or {})})
        capabilities = types.ClientCapabilities(
            window=types.WindowClientCapabilities(work_done_progress=progress),
        )
        result = await client.initialize_session(
            types.InitializeParams(
                capabilities=capabilities,
                root_uri=root_uri,
                initialization_options={"timeBudgetMs": TEST_TIME_BUDGET_MS, **(settings or {})},
            )
        )
        editor.server_capabilities = result.capabilities
        editors.append(editor)
        return editor

    yield start
    for editor in editors:
        try:
            await asyncio.wait_for(editor.client.shutdown_session(), 30)
        finally:
            await editor.client.stop()
