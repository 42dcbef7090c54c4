"""`fim-lsp demo`: the main job of `make run`.

Starts `fim-lsp --stdio` as an editor would, opens sample source files over the real protocol, asks for
an inline completion at each marked position (█ in the samples), and prints what came back and how long
it took.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fim_lsp.client import INVOKED, EditorClient, ResponseError, ServerGone, insert_texts
from fim_lsp.documents import position_at

CURSOR_MARK = "█"
LANGUAGE_IDS = {".py": "python", ".ts": "typescript", ".go": "go"}
#: How long the model may take to load (a first run on a slow machine reads a 1 GB file).
LOAD_TIMEOUT_S = 600


@dataclass(frozen=True)
class Sample:
    """A sample file with its cursor marks taken out."""

    name: str
    language_id: str
    text: str
    cursors: list[int]
    """Where each mark was, as code point offsets of `text`."""


def load_sample(name: str, marked: str) -> Sample:
    """Take the █ marks out of `marked`, remembering where each was."""
    pieces = marked.split(CURSOR_MARK)
    cursors = [sum(len(piece) for piece in pieces[: index + 1]) for index in range(len(pieces) - 1)]
    return Sample(name, LANGUAGE_IDS[Path(name).suffix], "".join(pieces), cursors)


def bundled_samples() -> list[Sample]:
    folder = resources.files("fim_lsp").joinpath("data/demo")
    return [
        load_sample(entry.name, entry.read_text("utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if Path(entry.name).suffix in LANGUAGE_IDS
    ]


def _show(text: str, indent: str = "    │ ") -> str:
    return "\n".join(indent + line for line in text.split("\n"))


def start_server(settings: dict[str, Any], server_command: list[str], log_file: Path) -> EditorClient | None:
    """The server with its model loaded, or None (and why, on stderr)."""
    started = time.monotonic()
    client = EditorClient([*server_command, "--stdio", "--log-file", str(log_file)])
    try:
        client.initialize(settings)
        status = client.wait_status("ready", "error", timeout=LOAD_TIMEOUT_S)
    except TimeoutError:
        print("the server did not finish loading its model within 10 minutes", file=sys.stderr)
        client.close()
        return None
    for message in client.messages("window/showMessage"):
        print(f"server says: {message['message']}")
    print(f"server {status['message']} after {time.monotonic() - started:.1f} s\n")
    if status["state"] != "ready":
        print(f"cannot complete: {status['message']}  (try: .venv/bin/fim-lsp doctor)", file=sys.stderr)
        client.close()
        return None
    return client


def complete_sample(client: EditorClient, sample: Sample) -> int:
    """Ask for a completion at each of the sample's cursors and print it; returns how many came back."""
    uri = f"file:///demo/{sample.name}"
    client.open(uri, sample.text, sample.language_id)
    answered = 0
    for offset in sample.cursors:
        asked = time.monotonic()
        try:
            texts = insert_texts(client.ask_inline_at(uri, offset, trigger=INVOKED).result())
        except (ResponseError, ServerGone) as exc:
            print(f"    the server failed: {exc}")
            texts = []
        elapsed = time.monotonic() - asked
        position = position_at(sample.text, offset)
        line_text = sample.text.split("\n")[position.line].strip() or "(empty line)"
        print(f"{sample.name}:{position.line + 1}:{position.character + 1}  {line_text}")
        if texts:
            answered += 1
            print(_show(texts[0]))
        else:
            print("    (no completion)")
        print(f"    {elapsed * 1000:.0f} ms\n")
    return answered


def run_demo(settings: dict[str, Any], server_command: list[str], log_file: Path) -> int:
    started = time.monotonic()
    client = start_server(settings, server_command, log_file)
    if client is None:
        return 1
    with client:
        answered = sum(complete_sample(client, sample) for sample in bundled_samples())
    print(f"{answered} completions in {time.monotonic() - started:.1f} s; server log: {log_file}")
    return 0 if answered else 1


def demo_command(args: argparse.Namespace) -> int:
    settings = {"model": args.model} if args.model else {}
    log_dir = Path(tempfile.mkdtemp(prefix="fim-lsp-demo-"))
    server = [sys.executable, "-m", "fim_lsp"]
    return run_demo(settings, server, log_dir / "server.log")


def register_cli(commands: Any) -> None:
    parser = commands.add_parser("demo", help="complete sample files through the real LSP protocol")
    parser.add_argument("--model", help="model name or GGUF path (default: the default model)")
    parser.set_defaults(handler=demo_command)
