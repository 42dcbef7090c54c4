"""A language server with scripted answers, for testing the editor plugins' own logic.

It answers `textDocument/inlineCompletion` with the suggestions given on the command line, less what
the text before the cursor already holds of them (so a test knows exactly what ghost text to expect
when it checks partial accepts, cycling and dismissal), sends
`fimLsp/status` like fim-lsp does, and can misbehave on purpose:

    scripted_server.py --suggest 'text' [--suggest 'other'] [--exit-at-start CODE] [--crash-on-request]

The real server with the real model is what the end-to-end editor tests use; this one only pins
down behaviour that does not depend on what a model writes.
"""

from __future__ import annotations

import argparse
import os
import sys

from lsprotocol import types
from pygls.lsp.server import LanguageServer


def overlap(before: str, suggestion: str) -> int:
    """Length of the longest end of `before` that starts `suggestion`: what the user typed of it already.

    Like a model continuing the text, the server then suggests only the rest.
    """
    for size in range(min(len(before), len(suggestion)), 0, -1):
        if before.endswith(suggestion[:size]):
            return size
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--suggest", action="append", default=[], help="one suggestion (repeatable)")
    parser.add_argument("--exit-at-start", type=int, default=None, help="exit at once with this code")
    parser.add_argument("--crash-on-request", action="store_true", help="die on the first completion request")
    parser.add_argument("--stdio", action="store_true", help="accepted for fim-lsp compatibility")
    args = parser.parse_args()
    if args.exit_at_start is not None:
        print("scripted server: exiting at start on purpose", file=sys.stderr)
        sys.exit(args.exit_at_start)

    sync = types.TextDocumentSyncKind.Incremental
    server = LanguageServer("scripted-fim-lsp", "0", text_document_sync_kind=sync)
    requests: list[int] = []

    @server.feature(types.INITIALIZED)
    def initialized(ls: LanguageServer, _params: types.InitializedParams) -> None:
        ls.protocol.notify("fimLsp/status", {"state": "ready", "message": "scripted", "latencyMs": None})

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    def inline_completion(
        ls: LanguageServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        if args.crash_on_request:
            os._exit(7)
        requests.append(params.context.trigger_kind)
        document = ls.workspace.get_text_document(params.text_document.uri)
        lines = document.source.split("\n")
        row, col = params.position.line, params.position.character
        before = "\n".join([*lines[:row], lines[row][:col]])
        here = types.Range(params.position, params.position)
        ls.protocol.notify("fimLsp/status", {"state": "ready", "message": "", "latencyMs": 42.0})
        items = []
        for text in args.suggest:
            rest = text[overlap(before, text) :]
            if rest:
                items.append(types.InlineCompletionItem(insert_text=rest, range=here))
        return types.InlineCompletionList(items=items)

    server.start_io()


if __name__ == "__main__":
    main()
