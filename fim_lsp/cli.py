"""Command line: `fim-lsp --stdio` for editors, and commands for people.

In `--stdio` mode file descriptor 1 carries JSON-RPC and nothing else: we move the protocol onto a
private duplicate of it and point descriptor 1 at stderr, so a stray print or a C library writing to
stdout can never corrupt a message.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import BinaryIO

from fim_lsp import __version__

logger = logging.getLogger(__name__)


def setup_logging(verbose: int, log_file: str | None) -> None:
    """Log to stderr (never stdout), or to a file readable by its owner only."""
    level = logging.DEBUG if verbose else logging.INFO
    handler: logging.Handler
    if log_file:
        path = Path(log_file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.chmod(path, 0o600)  # an existing file keeps its mode on open: logs may name the user's files
        handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("fim_lsp").setLevel(level)


def protocol_streams() -> tuple[BinaryIO, BinaryIO]:
    """stdin, and a private duplicate of stdout for JSON-RPC; descriptor 1 then points at stderr."""
    rpc_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return sys.stdin.buffer, rpc_out


def serve(args: argparse.Namespace) -> int:
    from fim_lsp.server import create_server

    server = create_server()
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        stdin, stdout = protocol_streams()
        server.start_io(stdin, stdout)
    return 0


def parse_position(text: str) -> tuple[int, int]:
    """`LINE:COL`, both counted from 1 as compilers print them."""
    line, sep, column = text.partition(":")
    if not sep or not line.isdigit() or not column.isdigit() or int(line) < 1 or int(column) < 1:
        raise argparse.ArgumentTypeError(f"expected LINE:COL counted from 1, not {text!r}")
    return int(line), int(column)


def complete_command(args: argparse.Namespace) -> int:
    from fim_lsp.completion import CompletionRequest
    from fim_lsp.config import Settings, parse_settings
    from fim_lsp.service import CompletionService

    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"fim-lsp: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    line, column = args.position
    lines = text.split("\n")
    if line > len(lines):
        print(f"fim-lsp: {path} has {len(lines)} lines, not {line}", file=sys.stderr)
        return 2
    # Columns here count characters as a person sees them (not LSP's UTF-16 units); past the end of the
    # line means its end.
    offset = sum(len(previous) + 1 for previous in lines[: line - 1]) + min(column - 1, len(lines[line - 1]))
    settings, problems = parse_settings({"model": args.model} if args.model else {}, Settings())
    for problem in problems:
        print(f"fim-lsp: setting {problem}", file=sys.stderr)
    service = CompletionService(settings)
    service.start()
    status = service.wait_ready()
    if status.state != "ready":
        print(f"fim-lsp: {status.message}", file=sys.stderr)
        return 1
    completion = service.complete_sync(CompletionRequest(text, offset, None, str(path)))
    service.shutdown()
    if args.json:
        print(
            json.dumps(
                {
                    "text": completion.text,
                    "shape": completion.shape.value,
                    "reason": completion.why,
                    "timings_ms": completion.timings_ms,
                }
            )
        )
    elif completion.text is not None:
        print(completion.text)
    else:
        print(f"fim-lsp: no completion ({completion.why})", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fim-lsp", description="Offline fill-in-the-middle code completion as a language server."
    )
    parser.add_argument("--version", action="version", version=f"fim-lsp {__version__}")
    parser.add_argument("--stdio", action="store_true", help="serve LSP on stdin/stdout (the default)")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="serve LSP on a TCP socket instead")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log debug detail")
    parser.add_argument("--log-file", metavar="PATH", help="log to this file (mode 0600) instead of stderr")
    parser.set_defaults(handler=serve)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    complete = commands.add_parser("complete", help="print the completion at one position of a file")
    complete.add_argument("file")
    complete.add_argument("position", type=parse_position, metavar="LINE:COL", help="counted from 1")
    complete.add_argument("--model", help="model name or GGUF path (default: the default model)")
    complete.add_argument("--json", action="store_true", help="print the result as JSON")
    complete.set_defaults(handler=complete_command)

    from fim_lsp import doctor
    from fim_lsp.models import cli as models_cli

    doctor.register_cli(commands)
    models_cli.register_cli(commands)
    bench = commands.add_parser("bench", help="measure completion quality or latency")
    bench_commands = bench.add_subparsers(title="benchmarks", metavar="BENCHMARK", required=True)
    from fim_lsp.bench import latency, quality, workspace

    quality.register_cli(bench_commands)
    latency.register_cli(bench_commands)
    workspace.register_cli(bench_commands)
    from fim_lsp import dataset, demo

    dataset.register_cli(commands)
    demo.register_cli(commands)
    from fim_lsp.warmup import cli as warmup

    warmup.register_cli(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        setup_logging(args.verbose, args.log_file)
        started = time.monotonic()
        try:
            return args.handler(args)
        finally:
            logger.debug("%s finished in %.2f s", args.handler.__name__, time.monotonic() - started)
            # Written out here, where a reader that went away is still ours to handle.
            sys.stdout.flush()
    except BrokenPipeError:
        return reader_went_away()


def reader_went_away() -> int:
    """Stop quietly when whoever reads our output closed it (`fim-lsp models --json | head`): what is
    left to write goes nowhere, so that the interpreter's own flush at exit does not fail again."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 1


if __name__ == "__main__":
    sys.exit(main())
