"""`fim-lsp bench latency`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from fim_lsp.bench import json_object_arg
from fim_lsp.bench.latency.replay import (
    BenchError,
    ReplayOptions,
)
from fim_lsp.bench.latency.report import (
    format_report,
    machine_facts,
)
from fim_lsp.bench.latency.run import BenchOptions, load_scripts, run_model
from fim_lsp.bench.latency.script import (
    TypingPace,
    planned_requests,
)


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    settings = dict(args.settings_json or {})
    if args.engine_json:
        settings["engine"] = args.engine_json[0]
    return BenchOptions(
        files=tuple(Path(f) for f in args.files or ()),
        holes=args.holes,
        pace=replace(TypingPace(), chars_per_second=args.chars_per_second),
        replay=ReplayOptions(
            debounce_s=args.debounce_ms / 1000,
            cancel_on_type=not args.no_cancel,
            warm_up=not args.no_warm_up,
            limit_requests=args.limit_requests,
            seed=args.seed,
        ),
        baseline_requests=args.baseline_requests,
        probes_per_file=args.probes,
        typed_through_chars=args.typed_chars,
        accept_after_s=args.accept_after if args.accept_after >= 0 else None,
        cold_positions=args.cold_positions,
        settings=settings,
        log_dir=Path(args.log_dir) if args.log_dir else None,
    )


def _dry_run(options: BenchOptions) -> int:
    for script in load_scripts(options):
        planned = planned_requests(script, options.replay.debounce_s)
        seconds = sum(k.gap_s for h in script.holes for k in h.keystrokes) + sum(
            h.leave_s for h in script.holes
        )
        print(
            f"{script.name}: {len(script.holes)} holes, {len(planned)} requests planned, "
            f"about {seconds:.0f} s of typing"
        )
        for index in script.order:
            hole = script.holes[index].hole
            line = script.text.count("\n", 0, hole.start) + 1
            print(f"  line {line:4} {hole.kind:9} {hole.text[:60]!r}")
    return 0


def latency_command(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    if args.dry_run:
        return _dry_run(options)
    say = (lambda message: print(message, file=sys.stderr)) if args.json else print
    scripts = load_scripts(options)
    report: dict[str, Any] = {
        "machine": machine_facts(),
        "options": {
            "files": [s.name for s in scripts],
            "seed": options.replay.seed,
            "chars_per_second": options.pace.chars_per_second,
            "debounce_ms": args.debounce_ms,
            "cancel_on_type": options.replay.cancel_on_type,
            "limit_requests": options.replay.limit_requests,
            "holes": options.holes,
            "baseline_requests": options.baseline_requests,
            "settings": options.settings,
        },
        "runs": [],
    }
    status = 0
    engines = args.engine_json or [None]
    for model, engine in [(m, e) for m in args.model or [None] for e in engines]:
        run_options = options
        if engine is not None:
            run_options = replace(options, settings={**options.settings, "engine": engine})
        try:
            report["runs"].append(asyncio.run(run_model(model, run_options, say)))
        except BenchError as exc:
            report["runs"].append({"model": model or "default model", "error": str(exc)})
            status = 1
    with contextlib.suppress(OSError):
        report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return status


def register_cli(bench_commands: Any) -> None:
    """Add `latency` to the `fim-lsp bench` subcommands."""
    parser = bench_commands.add_parser(
        "latency", help="replay typing real files against fim-lsp --stdio; compare with a cold baseline"
    )
    parser.add_argument("--model", action="append", help="model name or GGUF path; repeat to compare models")
    parser.add_argument(
        "--files", nargs="+", metavar="FILE", help="source files to replay (default: bundled)"
    )
    parser.add_argument("--limit-requests", type=int, default=15, metavar="N", help="requests per file (15)")
    parser.add_argument("--holes", type=int, default=4, help="holes cut in each file and typed again (4)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the typing script (1)")
    parser.add_argument("--chars-per-second", type=float, default=10.0, help="typing speed (10)")
    parser.add_argument("--debounce-ms", type=float, default=180.0, help="editor's debounce delay (180)")
    parser.add_argument("--no-cancel", action="store_true", help="do not send $/cancelRequest on typing")
    parser.add_argument(
        "--no-warm-up",
        action="store_true",
        help="start typing in each file at once (by default one completion is waited for first)",
    )
    parser.add_argument("--baseline-requests", type=int, default=8, metavar="N", help="baseline sample (8)")
    parser.add_argument("--probes", type=int, default=2, metavar="N", help="supersession probes per file (2)")
    parser.add_argument(
        "--typed-chars",
        type=int,
        default=12,
        metavar="N",
        help="characters of a shown suggestion typed per file for the typed-through figures (12; 0: none)",
    )
    parser.add_argument(
        "--accept-after",
        type=float,
        default=1.5,
        metavar="S",
        help="seconds a suggestion is read before it is accepted whole, once per file (1.5; -1: never)",
    )
    parser.add_argument(
        "--cold-positions",
        type=int,
        default=4,
        metavar="N",
        help="places never asked about per file where a new line is opened and typed on, for the "
        "first-ghost-text figures (4; 0: none)",
    )
    _add_server_arguments(parser)
    parser.set_defaults(handler=latency_command)


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The servers the replay runs against, and how the report is written."""
    parser.add_argument(
        "--engine-json",
        type=json_object_arg,
        action="append",
        metavar="JSON",
        help="the `engine` settings object for both servers; repeat to compare engines in one run",
    )
    parser.add_argument(
        "--settings-json", type=json_object_arg, metavar="JSON", help="more settings for both servers"
    )
    parser.add_argument(
        "--log-dir", metavar="DIR", help="where the servers' logs go (default: a temporary folder)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON (progress goes to stderr)"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the typing script; start no server")
