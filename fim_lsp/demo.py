"""`fim-lsp demo`: the main job of `make run`.

Starts `fim-lsp --stdio` as an editor would, opens sample source files over the real protocol, asks for
an inline completion at each marked position (█ in the samples), and prints what came back, how long it
took, and whether it is right. Greedy answers differ between CPUs and llama.cpp builds, so each answer is
judged by what it does, not by its text (see `data/demo/expected.toml`): a Python answer by running a
check on its file, a TypeScript or Go answer by its file parsing and a pattern of the expected answer.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fim_lsp.bench.scoring import run_program
from fim_lsp.client import INVOKED, EditorClient, ResponseError, ServerGone, insert_texts
from fim_lsp.documents import position_at
from fim_lsp.syntax import count_errors, language_of, new_parser, utf8

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


@dataclass(frozen=True)
class Expectation:
    """What one hole of a sample expects (see `data/demo/expected.toml`)."""

    expected: str
    check: str = ""
    """Python run after the file, which must not fail (Python samples)."""
    pattern: str = ""
    """A regular expression the answer, its spaces taken out, must match (other languages)."""


@dataclass(frozen=True)
class Verdict:
    right: bool
    why: str


def load_expectations() -> dict[str, list[Expectation]]:
    """Each sample's expectations, in the order of its holes."""
    raw = tomllib.loads(resources.files("fim_lsp").joinpath("data/demo/expected.toml").read_text("utf-8"))
    return {name: [Expectation(**hole) for hole in holes] for name, holes in raw.items()}


def fill(sample: Sample, middles: list[str]) -> str:
    """The sample's text with each hole filled with its middle."""
    text = sample.text
    for offset, middle in sorted(zip(sample.cursors, middles, strict=True), reverse=True):
        text = text[:offset] + middle + text[offset:]
    return text


def judge(sample: Sample, expectations: list[Expectation], hole: int, answer: str) -> Verdict:
    """Whether `answer` is right for hole `hole` of `sample`, the other holes holding their expected
    answers."""
    expectation = expectations[hole]
    text = fill(sample, [answer if i == hole else e.expected for i, e in enumerate(expectations)])
    if expectation.check:
        result = run_program(text + "\n" + expectation.check)
        if result.passed:
            return Verdict(True, "passes its check")
        lines = result.detail.strip().splitlines()
        return Verdict(False, f"fails its check ({lines[-1] if lines else result.outcome})")
    language = language_of(sample.language_id)
    if language is None or count_errors(new_parser(language).parse(utf8(text)).root_node):
        return Verdict(False, "the file does not parse with it")
    if re.search(expectation.pattern, re.sub(r"\s+", "", answer)):
        return Verdict(True, "parses, and does what the expected answer does")
    return Verdict(False, "parses, but is not the expected answer")


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


def complete_sample(client: EditorClient, sample: Sample, expectations: list[Expectation]) -> tuple[int, int]:
    """Ask for a completion at each of the sample's cursors, print it and whether it is right; returns
    how many came back and how many of those are right."""
    uri = f"file:///demo/{sample.name}"
    client.open(uri, sample.text, sample.language_id)
    answered = right = 0
    for hole, offset in enumerate(sample.cursors):
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
            verdict = judge(sample, expectations, hole, texts[0])
            right += verdict.right
            print(f"    {'right' if verdict.right else 'wrong'}: {verdict.why}", end="")
            print("" if verdict.right else f"; expected: {expectations[hole].expected.splitlines()[0]}")
        else:
            print("    (no completion)")
        print(f"    {elapsed * 1000:.0f} ms\n")
    return answered, right


def run_demo(settings: dict[str, Any], server_command: list[str], log_file: Path) -> int:
    started = time.monotonic()
    client = start_server(settings, server_command, log_file)
    if client is None:
        return 1
    samples, expectations = bundled_samples(), load_expectations()
    holes = sum(len(sample.cursors) for sample in samples)
    with client:
        results = [complete_sample(client, sample, expectations[sample.name]) for sample in samples]
    answered, right = (sum(counts) for counts in zip(*results, strict=True))
    print(
        f"{answered} of {holes} holes answered, {right} right, in {time.monotonic() - started:.1f} s; "
        f"server log: {log_file}"
    )
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
