"""`fim-lsp demo`: the main job of `make run`.

Starts `fim-lsp --stdio` as an editor would, opens sample source files over the real protocol, asks for
an inline completion at each marked position (█ in the samples), and prints what came back and how long
it took.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lsprotocol import types

CURSOR_MARK = "█"
LANGUAGE_IDS = {".py": "python", ".ts": "typescript", ".go": "go"}


@dataclass(frozen=True)
class Sample:
    """A sample file with its cursor marks taken out."""

    name: str
    language_id: str
    text: str
    cursors: list[types.Position]


def load_sample(name: str, marked: str) -> Sample:
    """Take the █ marks out of `marked`, remembering where each was (as LSP positions)."""
    cursors = []
    lines = marked.split("\n")
    for number, line in enumerate(lines):
        while CURSOR_MARK in line:
            column = line.index(CURSOR_MARK)
            cursors.append(types.Position(number, len(line[:column].encode("utf-16-le")) // 2))
            line = line[:column] + line[column + 1 :]
        lines[number] = line
    return Sample(name, LANGUAGE_IDS[Path(name).suffix], "\n".join(lines), cursors)


def bundled_samples() -> list[Sample]:
    folder = resources.files("fim_lsp").joinpath("data/demo")
    return [
        load_sample(entry.name, entry.read_text("utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if Path(entry.name).suffix in LANGUAGE_IDS
    ]


def _show(text: str, indent: str = "    │ ") -> str:
    return "\n".join(indent + line for line in text.split("\n"))


async def run_demo(settings: dict[str, Any], server_command: list[str], log_file: Path) -> int:
    from pygls.lsp.client import LanguageClient

    client = LanguageClient("fim-lsp-demo", "1")
    ready = asyncio.Event()
    status: dict[str, Any] = {}

    @client.feature("fimLsp/status")
    def on_status(params: Any) -> None:
        state = params.state if hasattr(params, "state") else params["state"]
        message = params.message if hasattr(params, "message") else params["message"]
        status.update(state=state, message=message)
        if state in ("ready", "error"):
            ready.set()

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def on_message(params: types.ShowMessageParams) -> None:
        print(f"server says: {params.message}")

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def on_log(_params: types.LogMessageParams) -> None:
        """The server's log is in its log file; the demo's output stays the completions."""

    started = time.monotonic()
    await client.start_io(*server_command, "--stdio", "--log-file", str(log_file))
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            initialization_options=settings,
            process_id=None,
        )
    )
    client.initialized(types.InitializedParams())
    try:
        await asyncio.wait_for(ready.wait(), timeout=600)
    except TimeoutError:
        print("the server did not finish loading its model within 10 minutes", file=sys.stderr)
        return 1
    print(f"server {status['message']} after {time.monotonic() - started:.1f} s\n")
    if status["state"] != "ready":
        print(f"cannot complete: {status['message']}  (try: .venv/bin/fim-lsp doctor)", file=sys.stderr)
        return 1

    answered = 0
    for sample in bundled_samples():
        uri = f"file:///demo/{sample.name}"
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, sample.language_id, 1, sample.text))
        )
        for cursor in sample.cursors:
            asked = time.monotonic()
            result = await client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri),
                    position=cursor,
                    context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Invoked),
                )
            )
            elapsed = time.monotonic() - asked
            items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
            line_text = sample.text.split("\n")[cursor.line].strip() or "(empty line)"
            print(f"{sample.name}:{cursor.line + 1}:{cursor.character + 1}  {line_text}")
            if items:
                answered += 1
                text = items[0].insert_text
                print(_show(text if isinstance(text, str) else text.value))
            else:
                print("    (no completion)")
            print(f"    {elapsed * 1000:.0f} ms\n")
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    print(f"{answered} completions in {time.monotonic() - started:.1f} s; server log: {log_file}")
    return 0 if answered else 1


def demo_command(args: argparse.Namespace) -> int:
    settings = {"model": args.model} if args.model else {}
    log_dir = Path(tempfile.mkdtemp(prefix="fim-lsp-demo-"))
    server = [sys.executable, "-m", "fim_lsp"]
    return asyncio.run(run_demo(settings, server, log_dir / "server.log"))


def register_cli(commands: Any) -> None:
    parser = commands.add_parser("demo", help="complete sample files through the real LSP protocol")
    parser.add_argument("--model", help="model name or GGUF path (default: the default model)")
    parser.set_defaults(handler=demo_command)
