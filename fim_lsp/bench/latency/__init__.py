"""`fim-lsp bench latency`: a person typing real files, replayed against `fim-lsp --stdio`.

The benchmark takes source files, cuts a few holes in each (function bodies, line tails), and retypes
them in a seeded random order, character by character at an editor's pace, with the habits that decide
what a completion server sees: pauses at line ends and between words, typos corrected with a backspace,
suggestions accepted with Tab when they are right or typed out by hand. An editor asks for ghost text
only when typing pauses for the debounce delay, and sends `$/cancelRequest` for a request still in
flight when a key is pressed (as VS Code does). Everything goes over the real protocol to a real server
subprocess with the real model.

Then, in the same run, the naive baseline: a fresh server with `reuse: false` (a cold prompt for each
request, no completion cache, no typed-through) answers a sample of the same requests one at a time.

And a probe of supersession: a long generation is started, then a newer request for the same document
(or `$/cancelRequest` followed by one) is sent; the time until the server serves the newer request is
the time the superseded generation took to stop.

Reading the figures: latencies are of requests the server served (the model ran, or the cache or
typed-through answered), from sending the request to reading its answer. A request the typist outran is
cancelled and has no latency, so when most requests are cancelled the percentiles describe the quick
survivors: read them with the cancelled count. Tokens evaluated come from the server's `fim-lsp.stats`
counters, read after each answer.

The typing script, the debounce rule and the statistics are pure functions (tested without a server);
`run_model` drives the servers.
"""

from fim_lsp.bench.latency.cli import latency_command, options_from_args, register_cli
from fim_lsp.bench.latency.probes import ColdPositionProbe, cold_rows, probe_cold_position
from fim_lsp.bench.latency.records import RequestRecord, source_of
from fim_lsp.bench.latency.replay import BenchError, ReplayOptions, replay_file
from fim_lsp.bench.latency.report import format_report, percentile, ratio, sample_evenly, summarize
from fim_lsp.bench.latency.run import BenchOptions, run_model
from fim_lsp.bench.latency.script import (
    FileScript,
    Hole,
    HoleScript,
    Keystroke,
    TypingPace,
    asks_after,
    bundled_files,
    file_script,
    find_holes,
    planned_requests,
    text_without,
    typing_script,
)

__all__ = [
    "BenchError",
    "BenchOptions",
    "ColdPositionProbe",
    "FileScript",
    "Hole",
    "HoleScript",
    "Keystroke",
    "ReplayOptions",
    "RequestRecord",
    "TypingPace",
    "asks_after",
    "bundled_files",
    "cold_rows",
    "file_script",
    "find_holes",
    "format_report",
    "latency_command",
    "options_from_args",
    "percentile",
    "planned_requests",
    "probe_cold_position",
    "ratio",
    "register_cli",
    "replay_file",
    "run_model",
    "sample_evenly",
    "source_of",
    "summarize",
    "text_without",
    "typing_script",
]
