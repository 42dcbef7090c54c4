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

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from itertools import zip_longest
from pathlib import Path
from typing import Any, Literal

from fim_lsp.bench import json_object_arg
from fim_lsp.client import REQUEST_CANCELLED, EditorClient, Pending, ResponseError, ServerGone, insert_texts
from fim_lsp.documents import position_at

logger = logging.getLogger(__name__)

#: Language ids by file suffix, for the files replayed.
LANGUAGE_IDS = {
    ".py": "python",
    ".ts": "typescript",
    ".tsx": "typescriptreact",
    ".js": "javascript",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".rb": "ruby",
    ".lua": "lua",
}
#: The issue's target for warm p50 over baseline p50.
TARGET_RATIO = 0.25
#: A model run is warm when the KV cache held all but this share of its prompt: a keystroke where the
#: last request was, not the first request after the cursor moved to another place.
WARM_EVALUATED_SHARE = 0.1

Outcome = Literal["pending", "answered", "empty", "cancelled", "timeout", "error"]
Source = Literal["model", "cache", "typed-through", "none"]


# -- the typing script ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypingPace:
    """How the simulated person types. Gaps are drawn from a seeded RNG, so a script is reproducible."""

    chars_per_second: float = 10.0
    """Average typing speed between pauses."""
    jitter: float = 0.35
    """Sigma of the log-normal factor on each gap between keys: some gaps are twice the average."""
    line_pause_probability: float = 0.5
    """Chance of a thinking pause after a new line."""
    word_pause_probability: float = 0.12
    """Chance of a pause after a space or punctuation."""
    pause_s: tuple[float, float] = (0.4, 1.6)
    """Range of a thinking pause (uniform)."""
    arrival_pause_s: tuple[float, float] = (1.0, 2.5)
    """Pause after the cursor lands on a hole, before the first key."""
    typo_probability: float = 0.02
    """Chance that a letter is first mistyped, then erased with a backspace."""
    type_along_probability: float = 0.3
    """Chance that a correct suggestion is typed out by hand instead of accepted with Tab."""

    def gap(self, rng: random.Random) -> float:
        """An ordinary gap between two keys."""
        return rng.lognormvariate(0.0, self.jitter) / self.chars_per_second

    def pause(self, rng: random.Random) -> float:
        return rng.uniform(*self.pause_s)


@dataclass(frozen=True)
class Hole:
    """A piece of the file taken out, to be typed again where it was."""

    start: int
    """Offset of the piece in the whole file."""
    text: str
    kind: Literal["block", "line-tail"]

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class Keystroke:
    """One key (or one editor action that inserts several characters, like Enter with auto-indent)."""

    gap_s: float
    """Time since the previous key (or since the cursor arrived)."""
    insert: str = ""
    backspace: bool = False
    before: int = 0
    """Characters of the hole typed correctly before this key."""
    after: int = 0
    """... and after it: equal to `before` for a typo and for the backspace that erases it."""

    @property
    def advances(self) -> bool:
        return self.after > self.before


@dataclass(frozen=True)
class HoleScript:
    """How one hole is typed: its keys, and the pause after the last one before the cursor moves on."""

    hole: Hole
    keystrokes: tuple[Keystroke, ...]
    leave_s: float

    def resume_at(self, typed: int) -> int:
        """Index of the key to continue with once `typed` characters are on screen (after a Tab)."""
        for index, key in enumerate(self.keystrokes):
            if key.before == typed and key.advances:
                return index
        return len(self.keystrokes)


@dataclass(frozen=True)
class FileScript:
    """A file, the holes cut in it (by position), and the order they are typed again in."""

    name: str
    language_id: str
    text: str
    holes: tuple[HoleScript, ...]
    order: tuple[int, ...]

    @property
    def initial_text(self) -> str:
        """The file with every hole taken out: what the editor opens."""
        return text_without(self.text, [h.hole for h in self.holes])

    def offset_of(self, index: int, filled: set[int]) -> int:
        """Where hole `index` begins in the document once the holes in `filled` are typed again."""
        hole = self.holes[index].hole
        missing = sum(
            len(h.hole.text)
            for i, h in enumerate(self.holes)
            if h.hole.start < hole.start and i not in filled
        )
        return hole.start - missing


def script_uri(script: FileScript) -> str:
    """The document URI a replayed file is opened under."""
    return f"file:///bench/{script.name}"


def text_without(text: str, holes: Sequence[Hole]) -> str:
    """`text` with the holes' pieces taken out."""
    pieces, position = [], 0
    for hole in sorted(holes, key=lambda h: h.start):
        pieces.append(text[position : hole.start])
        position = hole.end
    pieces.append(text[position:])
    return "".join(pieces)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


_BLOCK_OPENERS = (":", "{", "(", "[")
_TAIL_MARKERS = (" = ", " := ", "return ", " => ", " += ", " -= ", "(")


def find_holes(text: str, rng: random.Random, count: int, max_block_lines: int = 4) -> list[Hole]:
    """Up to `count` non-overlapping holes, about half block bodies and half line tails, sorted.

    A block hole starts at the first character of the first line of an indented body and runs to the end
    of one to `max_block_lines` lines of it; the cursor then waits on an indented empty line, as when a
    person starts a body. A line tail runs from after `=`, `return`, `(`... to the end of its line.
    """
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    blocks: list[tuple[int, int]] = []  # (first line, last line)
    for number in range(1, len(lines)):
        line, above = lines[number], lines[number - 1].rstrip()
        if line.strip() and above.endswith(_BLOCK_OPENERS) and _indent(line) > _indent(above):
            last = number
            while (
                last + 1 < len(lines)
                and last + 1 - number < max_block_lines
                and lines[last + 1].strip()
                and _indent(lines[last + 1]) >= _indent(line)
            ):
                last += 1
            blocks.append((number, number + rng.randint(0, last - number)))
    tails: list[tuple[int, int]] = []  # (line, column where the tail starts)
    for number, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith(("#", "//", '"""', "*", "/*")):
            continue
        for marker in _TAIL_MARKERS:
            column = line.find(marker)
            if column > _indent(line) or (column >= 0 and marker == "return "):
                column += len(marker)
                if len(line[column:].strip()) >= 4:
                    tails.append((number, column))
                break
    block_holes = [
        (
            first,
            last,
            Hole(starts[first] + _indent(lines[first]), _span(text, starts, lines, first, last), "block"),
        )
        for first, last in blocks
    ]
    tail_holes = [
        (number, number, Hole(starts[number] + column, lines[number][column:], "line-tail"))
        for number, column in tails
    ]
    rng.shuffle(block_holes)
    rng.shuffle(tail_holes)
    # Alternate the kinds, so a few holes still mix bodies and line tails.
    candidates = [c for pair in zip_longest(block_holes, tail_holes) for c in pair if c is not None]
    chosen: list[tuple[int, int, Hole]] = []
    for first, last, hole in candidates:
        if len(chosen) == count:
            break
        # Keep a line of untouched text between holes, so each hole has real code on both sides.
        if all(last < c_first - 1 or first > c_last + 1 for c_first, c_last, _ in chosen):
            chosen.append((first, last, hole))
    return sorted((hole for _, _, hole in chosen), key=lambda h: h.start)


def _span(text: str, starts: list[int], lines: list[str], first: int, last: int) -> str:
    return text[starts[first] + _indent(lines[first]) : starts[last] + len(lines[last])]


def typing_script(text: str, rng: random.Random, pace: TypingPace) -> tuple[Keystroke, ...]:
    """The keys that type `text`: one per character, Enter with the next line's indentation as one (the
    editor indents), now and then a typo erased with a backspace, and pauses where people pause."""
    keys: list[Keystroke] = []
    gap = rng.uniform(*pace.arrival_pause_s)
    position = 0
    while position < len(text):
        char = text[position]
        if char == "\n":
            end = position + 1
            while end < len(text) and text[end] in " \t":
                end += 1
            chunk = text[position:end]
        else:
            chunk = char
        if char.isalpha() and rng.random() < pace.typo_probability:
            wrong = rng.choice([c for c in "asdfghjklqwertyuiopzxcvbnm" if c != char.lower()])
            keys.append(Keystroke(gap, wrong, False, position, position))
            # Noticing the typo sometimes takes a moment (long enough for the editor to ask).
            notice = pace.pause(rng) if rng.random() < 0.5 else pace.gap(rng) * 2
            keys.append(Keystroke(notice, "", True, position, position))
            # ... and so does going on after it: the editor asks again where it asked before the typo.
            gap = pace.pause(rng) if rng.random() < 0.5 else pace.gap(rng)
        keys.append(Keystroke(gap, chunk, False, position, position + len(chunk)))
        position += len(chunk)
        gap = pace.gap(rng)
        if chunk.startswith("\n"):
            chance = pace.line_pause_probability
        else:
            chance = pace.word_pause_probability if chunk in " ,.;:()[]{}" else 0.0
        if rng.random() < chance:
            gap += pace.pause(rng)
    return tuple(keys)


def file_script(
    name: str, text: str, seed: int, pace: TypingPace, holes: int = 4, language_id: str | None = None
) -> FileScript:
    """The whole replay of one file, reproducible from `seed`."""
    # A seed per file (not one stream for all files), so adding a file does not change the others.
    rng = random.Random(f"{seed}:{name}")
    found = find_holes(text, rng, holes)
    scripts = tuple(HoleScript(h, typing_script(h.text, rng, pace), pace.pause(rng)) for h in found)
    order = list(range(len(scripts)))
    rng.shuffle(order)
    language = language_id or LANGUAGE_IDS.get(Path(name).suffix, "plaintext")
    return FileScript(name, language, text, scripts, tuple(order))


def asks_after(gap_s: float, debounce_s: float) -> bool:
    """The debounce rule: a request goes out when no key follows within the debounce delay."""
    return gap_s >= debounce_s


@dataclass(frozen=True)
class PlannedRequest:
    hole: int
    at_s: float
    """Seconds since the cursor arrived at the hole."""
    typed: int
    """Characters of the hole on screen (a typo counts as one)."""


def planned_requests(script: FileScript, debounce_s: float) -> list[PlannedRequest]:
    """The requests an editor would send if no suggestion were ever accepted (a dry run of the script)."""
    planned = []
    for index in script.order:
        hole = script.holes[index]
        clock, on_screen = 0.0, 0
        gaps = [key.gap_s for key in hole.keystrokes[1:]] + [hole.leave_s]
        if hole.keystrokes and asks_after(hole.keystrokes[0].gap_s, debounce_s):
            planned.append(PlannedRequest(index, debounce_s, 0))
        if hole.keystrokes:
            clock = hole.keystrokes[0].gap_s
        for key, gap in zip(hole.keystrokes, gaps, strict=True):
            on_screen += -1 if key.backspace else len(key.insert)
            if asks_after(gap, debounce_s):
                planned.append(PlannedRequest(index, clock + debounce_s, on_screen))
            clock += gap
    return planned


# -- statistics -------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (0-100) by linear interpolation between ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class RequestRecord:
    """One inline completion request and what became of it."""

    file: str
    line: int
    character: int
    sent_s: float
    """Seconds since the run began."""
    offset: int = 0
    outcome: Outcome = "pending"
    latency_ms: float | None = None
    source: Source | None = None
    """Where the answer came from, by the server's counters: the model, the cache, typed-through."""
    evaluated_tokens: int | None = None
    prompt_tokens: int | None = None
    text: str | None = None
    accepted: bool = False
    cancel_ack_ms: float | None = None
    """Time from `$/cancelRequest` to the cancelled answer."""
    snapshot: str = field(default="", repr=False)
    """The document when the request was sent (for the baseline; not in the JSON report)."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["snapshot"]
        return data


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class RunSummary:
    """The figures of one run (the warm replay or the baseline)."""

    requests: int
    answered: int
    """Answers with ghost text."""
    empty: int
    cancelled: int
    failed: int
    """Timeouts and errors."""
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    single_line_p50_ms: float | None
    """Over answers of one line."""
    model_p50_ms: float | None
    """Over requests that ran the model (not cache or typed-through)."""
    warm_model_runs: int
    """Model runs that found all but a tenth of their prompt in the KV cache (see `warm_run`)."""
    warm_model_p50_ms: float | None
    evaluated_p50: float | None
    """Prompt tokens evaluated per served request (none for an answer from the cache or typed-through)."""
    model_evaluated_p50: float | None
    """Prompt tokens evaluated per request that ran the model (the rest of its prompt came from the KV
    cache)."""
    prompt_p50: float | None
    """Prompt tokens per request that ran the model."""
    cache_hits: int
    typed_through: int
    typed_through_p95_ms: float | None
    accepted: int
    peak_rss_mib: float | None = None
    prefetched: int = 0
    """Prefetches the server finished (answers computed for a suggestion's acceptance, off by default)."""
    warm_ups: int = 0
    """Prompts the server evaluated into its cache after typing cancelled their request."""


def served(record: RequestRecord) -> bool:
    """Whether the server worked out an answer: the model ran, or the cache or typed-through answered.
    Not served: answers refused at once (a cursor inside a word) and superseded ones."""
    return record.outcome in ("answered", "empty") and record.source not in (None, "none")


def warm_run(record: RequestRecord) -> bool:
    """Whether a model run found all but `WARM_EVALUATED_SHARE` of its prompt in the KV cache."""
    if record.evaluated_tokens is None or not record.prompt_tokens:
        return False
    return record.evaluated_tokens <= WARM_EVALUATED_SHARE * record.prompt_tokens


def summarize(
    records: Sequence[RequestRecord],
    peak_rss_mib: float | None = None,
    prefetched: int = 0,
    warm_ups: int = 0,
) -> RunSummary:
    """Counts and percentiles of a run. Latencies are of served requests (see `served`)."""
    done = [r for r in records if served(r) and r.latency_ms is not None]
    latencies = [r.latency_ms for r in done if r.latency_ms is not None]
    single = [
        r.latency_ms
        for r in done
        if r.outcome == "answered" and r.text and "\n" not in r.text.strip("\n") and r.latency_ms is not None
    ]
    model = [r for r in done if r.source == "model"]
    through = [r.latency_ms for r in done if r.source == "typed-through" and r.latency_ms is not None]
    return RunSummary(
        requests=len(records),
        answered=sum(r.outcome == "answered" for r in records),
        empty=sum(r.outcome == "empty" for r in records),
        cancelled=sum(r.outcome == "cancelled" for r in records),
        failed=sum(r.outcome in ("timeout", "error", "pending") for r in records),
        p50_ms=_round(percentile(latencies, 50)),
        p95_ms=_round(percentile(latencies, 95)),
        max_ms=_round(max(latencies) if latencies else None),
        single_line_p50_ms=_round(percentile(single, 50)),
        model_p50_ms=_round(percentile([r.latency_ms for r in model if r.latency_ms is not None], 50)),
        warm_model_runs=sum(warm_run(r) for r in model),
        warm_model_p50_ms=_round(
            percentile([r.latency_ms for r in model if warm_run(r) and r.latency_ms is not None], 50)
        ),
        evaluated_p50=percentile([r.evaluated_tokens for r in done if r.evaluated_tokens is not None], 50),
        model_evaluated_p50=percentile(
            [r.evaluated_tokens for r in model if r.evaluated_tokens is not None], 50
        ),
        prompt_p50=percentile([r.prompt_tokens for r in model if r.prompt_tokens is not None], 50),
        cache_hits=sum(r.source == "cache" for r in done),
        typed_through=len(through),
        typed_through_p95_ms=_round(percentile(through, 95), 2),
        accepted=sum(r.accepted for r in records),
        peak_rss_mib=peak_rss_mib,
        prefetched=prefetched,
        warm_ups=warm_ups,
    )


def source_of(delta: dict[str, int]) -> Source:
    """Where an answer came from, by how the server's counters moved while it was being answered."""
    if delta.get("typed_through", 0) > 0:
        return "typed-through"
    if delta.get("cache_hits", 0) > 0:
        return "cache"
    if delta.get("generated", 0) > 0:
        return "model"
    return "none"


def ratio(warm: float | None, baseline: float | None) -> float | None:
    if warm is None or not baseline:
        return None
    return round(warm / baseline, 3)


def sample_evenly(items: Sequence[Any], count: int) -> list[Any]:
    """`count` items spread evenly over `items` (all of them when there are fewer)."""
    if count >= len(items):
        return list(items)
    if count <= 0:
        return []
    step = len(items) / count
    return [items[int(i * step + step / 2)] for i in range(count)]


# -- the server ------------------------------------------------------------------------------------------


class BenchError(Exception):
    """The benchmark cannot go on (the server did not start, the model did not load)."""


async def start_server(
    command: Sequence[str], settings: dict[str, Any], log_file: Path, timeout: float = 600
) -> tuple[EditorClient, float]:
    """`fim-lsp --stdio` with `settings`, its model loaded; and the seconds that took."""
    started = time.perf_counter()
    client = EditorClient([*command, "--stdio", "--log-file", str(log_file)])
    try:
        await client.send_request(
            "initialize", {"processId": None, "capabilities": {}, "initializationOptions": settings}
        )
        client.notify("initialized", {})
        status = await client.wait_status_async("ready", "error", timeout=timeout)
    except (TimeoutError, ServerGone, ResponseError) as exc:
        await client.close_async()
        raise BenchError(f"the server was not ready: {exc}") from exc
    if status["state"] != "ready":
        await client.close_async()
        raise BenchError(f"the server could not load its model: {status.get('message')}")
    await client.stats_delta()  # the counters start here
    return client, time.perf_counter() - started


# -- the warm replay --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayOptions:
    """What the replay does, beyond the typing pace."""

    debounce_s: float = 0.18
    cancel_on_type: bool = True
    """Send `$/cancelRequest` for a request in flight when a key is pressed or the cursor moves (VS Code
    does); otherwise the newer request supersedes it in the server."""
    limit_requests: int | None = None
    """Stop asking after this many requests per file (the rest of the file is pasted back at once)."""
    request_timeout_s: float = 120.0
    seed: int = 1
    wait_for_answer_s: float = 0.0
    """At a pause, the person waits up to this long for the suggestion before typing on (0: never waits,
    as at typing speed). Tests set it so that a slow machine still shows answers, not only cancels."""
    warm_up: bool = True
    """Before typing in a file the person reads it: one completion at the first hole is asked and
    waited for, and not counted. A file's first prompt is cold whatever the server does; the replay
    measures what typing costs after that."""


class _Typist:
    """Types one file's holes into the editor, asking for completions when typing pauses."""

    def __init__(
        self,
        client: EditorClient,
        uri: str,
        script: FileScript,
        pace: TypingPace,
        options: ReplayOptions,
        records: list[RequestRecord],
        epoch: float,
    ) -> None:
        self.client = client
        self.uri = uri
        self.script = script
        self.pace = pace
        self.options = options
        self.records = records
        self.epoch = epoch
        self.cursor = 0
        self.sent = 0
        self.in_flight: Pending | None = None
        self._cancel_sent: dict[str, float] = {}
        self.ghost: RequestRecord | None = None
        """The answer shown as ghost text (answered at the current version and cursor), if any."""
        self.tasks: list[asyncio.Task[None]] = []
        # Decisions that depend on what the server answered (accept or type along) get their own stream,
        # so that the script itself stays the same whatever the model says.
        self.choices = random.Random(f"{options.seed}:{script.name}:choices")

    @property
    def limited(self) -> bool:
        return self.options.limit_requests is not None and self.sent >= self.options.limit_requests

    @property
    def version(self) -> int:
        return self.client.documents[self.uri].version

    def cancel_in_flight(self) -> None:
        """The editor gives up on the request in flight (a key was pressed or the cursor moved)."""
        pending = self.in_flight
        if (
            pending is not None
            and self.options.cancel_on_type
            and not pending.future.done()
            and pending.msg_id not in self._cancel_sent
        ):
            self._cancel_sent[pending.msg_id] = time.perf_counter()
            self.client.cancel(pending.msg_id)

    def edit(self, delete: int, insert: str) -> None:
        """A key press: the editor cancels what it asked for and tells the server about the change."""
        self.cancel_in_flight()
        self.ghost = None
        start = self.cursor - delete
        self.client.edit(self.uri, start, self.cursor, insert)
        self.cursor = start + len(insert)

    async def pause(self, gap_s: float) -> None:
        """Wait `gap_s`; when the pause outlasts the debounce delay the editor asks for a completion."""
        if asks_after(gap_s, self.options.debounce_s) and not self.limited:
            await asyncio.sleep(self.options.debounce_s)
            pending = self.ask()
            started = time.perf_counter()
            await asyncio.sleep(gap_s - self.options.debounce_s)
            patience = self.options.wait_for_answer_s - (time.perf_counter() - started)
            if patience > 0 and not pending.future.done():
                await asyncio.wait([self.tasks[-1]], timeout=patience)
        else:
            await asyncio.sleep(gap_s)

    def ask(self) -> Pending:
        document = self.client.documents[self.uri]
        position = position_at(document.text, self.cursor)
        record = RequestRecord(
            self.script.name,
            position.line,
            position.character,
            round(time.perf_counter() - self.epoch, 3),
            offset=self.cursor,
            snapshot=document.text,
        )
        self.records.append(record)
        self.sent += 1
        pending = self.client.ask_inline_at(self.uri, self.cursor)
        self.in_flight = pending
        self.tasks.append(asyncio.create_task(self._follow(record, pending, document.version)))
        return pending

    async def _follow(self, record: RequestRecord, pending: Pending, version: int) -> None:
        await settle(self.client, record, pending, self.options.request_timeout_s, self._cancel_sent)
        if self.in_flight is pending:
            self.in_flight = None
        if record.outcome == "answered" and self.version == version and self.cursor == record.offset:
            self.ghost = record

    async def finish_requests(self) -> None:
        """Wait for every request sent to be answered."""
        if self.tasks:
            await asyncio.gather(*self.tasks)

    def _acceptable(self, hole: HoleScript, typed: int, typo_on_screen: bool) -> str | None:
        """The ghost text the person would accept now, if it is what they were about to type."""
        ghost = self.ghost
        if ghost is None or ghost.text is None or typo_on_screen or ghost.offset != self.cursor:
            return None
        shown = ghost.text.rstrip()
        if not shown.strip() or not hole.hole.text[typed:].startswith(shown):
            return None
        return shown

    async def retype(self, index: int, filled: set[int]) -> None:
        """Type hole `index` again at its place; the editor asks whenever typing pauses."""
        hole = self.script.holes[index]
        self.cancel_in_flight()  # the cursor moves to the hole
        self.cursor = self.script.offset_of(index, filled)
        keys = hole.keystrokes
        if self.limited:  # out of requests: paste the rest back so the document ends as the file
            await self.finish_requests()
            self.edit(0, hole.hole.text)
            return
        self.ghost = None
        await self.pause(keys[0].gap_s if keys else hole.leave_s)
        position, typed, typo_on_screen = 0, 0, False
        while position < len(keys):
            if self.limited:
                await self.finish_requests()  # the last request is not cancelled by the paste
                self.edit(1 if typo_on_screen else 0, hole.hole.text[typed:])
                return
            shown = self._acceptable(hole, typed, typo_on_screen)
            if shown is not None and self.choices.random() >= self.pace.type_along_probability:
                assert self.ghost is not None
                self.ghost.accepted = True
                self.edit(0, shown)  # Tab
                typed += len(shown)
                position = hole.resume_at(typed)
            else:
                if shown is not None:
                    self.ghost = None  # typed out by hand: the decision is made once per suggestion
                key = keys[position]
                self.edit(1 if key.backspace else 0, key.insert)
                typo_on_screen = not key.backspace and not key.advances
                typed = key.after
                position += 1
            await self.pause(keys[position].gap_s if position < len(keys) else hole.leave_s)


async def settle(
    client: EditorClient,
    record: RequestRecord,
    pending: Pending,
    timeout_s: float,
    cancel_sent: dict[str, float] | None = None,
) -> None:
    """Wait for a request's answer and fill in its record (outcome, latency, text, source, tokens)."""
    try:
        result = await asyncio.wait_for(pending.awaitable(), timeout_s)
    except TimeoutError:
        record.outcome = "timeout"
        return
    except ResponseError as exc:
        if exc.code == REQUEST_CANCELLED:
            record.outcome = "cancelled"
            sent = (cancel_sent or {}).get(pending.msg_id)
            if sent is not None and pending.arrived is not None:
                record.cancel_ack_ms = round((pending.arrived - sent) * 1000, 2)
        else:
            record.outcome = "error"
            record.text = str(exc)
        return
    except Exception as exc:  # the connection went away
        record.outcome = "error"
        record.text = str(exc)
        return
    arrived = pending.arrived or time.perf_counter()
    record.latency_ms = round((arrived - pending.sent) * 1000, 2)
    texts = insert_texts(result)
    text = texts[0] if texts else None
    record.text = text if isinstance(text, str) and text else None
    record.outcome = "answered" if record.text else "empty"
    delta = await client.stats_delta()
    record.source = source_of(delta)
    if record.source == "model":
        record.evaluated_tokens = delta.get("evaluated_tokens")
        record.prompt_tokens = delta.get("prompt_tokens")
    elif record.source in ("cache", "typed-through"):
        record.evaluated_tokens = 0


async def replay_file(
    client: EditorClient,
    script: FileScript,
    pace: TypingPace,
    options: ReplayOptions,
    records: list[RequestRecord],
    epoch: float,
) -> bool:
    """Replay one file; returns whether the server's copy equals the file at the end."""
    uri = script_uri(script)
    client.open(uri, script.initial_text, script.language_id)
    typist = _Typist(client, uri, script, pace, options, records, epoch)
    if options.warm_up and script.order:
        pending = client.ask_inline_at(uri, script.offset_of(script.order[0], set()))
        with contextlib.suppress(Exception):  # a failure here shows in the requests that follow
            await asyncio.wait_for(pending.awaitable(), options.request_timeout_s)
    await client.stats_delta()  # what came before this file is not this file's requests'
    filled: set[int] = set()
    for index in script.order:
        await typist.retype(index, filled)
        filled.add(index)
    await typist.finish_requests()
    if client.documents[uri].text != script.text:
        logger.error("replay of %s did not end with the file's text", script.name)
        return False
    return await client.in_sync(uri)


# -- supersession probes ----------------------------------------------------------------------------------


@dataclass
class ProbeRecord:
    """One supersession: a long generation, then a newer request for the same document."""

    file: str
    variant: Literal["supersede", "cancel"]
    delay_ms: float
    """How long the first request ran before the newer one was sent."""
    finished_first: bool = False
    """The first request was answered before the newer one went out: nothing was superseded."""
    stop_ms: float | None = None
    """From the newer request to its answer: the worker was busy with the old generation until then."""
    first_outcome: Outcome = "pending"
    late_ghost: bool = False
    """The superseded request still came back with ghost text (it must not)."""


def probe_positions(text: str, rng: random.Random) -> tuple[list[int], list[int]]:
    """Places to start a long generation (empty lines: the model writes a new block) and places inside a
    word (the server answers nothing there, at once, once its worker is free)."""
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    blanks = [starts[n] for n in range(1, len(lines) - 1) if not lines[n].strip()]
    words = []
    for number, line in enumerate(lines):
        column = 0
        for token in line.split(" "):
            if len(token) >= 8 and token.isidentifier():
                words.append(starts[number] + column + len(token) // 2)
            column += len(token) + 1
    rng.shuffle(blanks)
    rng.shuffle(words)
    return blanks, words


async def probe_supersession(
    client: EditorClient,
    uri: str,
    count: int,
    rng: random.Random,
    delay_s: tuple[float, float] = (0.1, 1.5),
    timeout_s: float = 120.0,
) -> list[ProbeRecord]:
    """Start `count` long generations and supersede each after a random delay, alternating a plain newer
    request (the server supersedes) with `$/cancelRequest` followed by one (as VS Code does)."""
    text = client.documents[uri].text
    blanks, words = probe_positions(text, rng)
    probes = []
    for number in range(min(count, len(blanks), len(words))):
        variant: Literal["supersede", "cancel"] = "supersede" if number % 2 == 0 else "cancel"
        delay = rng.uniform(*delay_s)
        probe = ProbeRecord(uri.rsplit("/", 1)[-1], variant, round(delay * 1000, 1))
        first = client.ask_inline_at(uri, blanks[number])
        await asyncio.sleep(delay)
        if first.future.done():
            probe.finished_first = True
        else:
            if variant == "cancel":
                client.cancel(first.msg_id)
            newer_sent = time.perf_counter()
            newer = client.ask_inline_at(uri, words[number])
            try:
                await asyncio.wait_for(asyncio.shield(newer.awaitable()), timeout_s)
            except Exception:  # an error answer still marks the moment the worker was free
                logger.debug("probe's newer request failed", exc_info=True)
            if newer.arrived is not None:
                probe.stop_ms = round((newer.arrived - newer_sent) * 1000, 1)
        record = RequestRecord(probe.file, 0, 0, 0.0)
        await settle(client, record, first, timeout_s)
        probe.first_outcome = record.outcome
        probe.late_ghost = not probe.finished_first and record.outcome == "answered"
        probes.append(probe)
    return probes


async def shown_suggestion(
    client: EditorClient, uri: str, rng: random.Random, timeout_s: float
) -> tuple[int, str] | None:
    """(offset, text) of a suggestion the server shows at an empty line of the document (three are
    tried), or None."""
    blanks, _words = probe_positions(client.documents[uri].text, rng)
    for offset in blanks[:3]:
        first = client.ask_inline_at(uri, offset)
        try:
            answer = await asyncio.wait_for(first.awaitable(), timeout_s)
        except Exception:  # an error or a timeout: try the next place
            logger.debug("a probe's first request failed", exc_info=True)
            continue
        texts = insert_texts(answer)
        suggestion = texts[0] if texts else ""
        if suggestion.strip():
            return offset, suggestion
    return None


async def probe_typed_through(
    client: EditorClient, uri: str, rng: random.Random, chars: int, timeout_s: float = 120.0
) -> list[float]:
    """Type the characters of a shown suggestion one at a time, asking after each, as an editor does while
    ghost text is on screen; returns the latencies (ms) of the answers the server gave from typed-through.
    The replay itself has few of those (its typist types the file's text, which a suggestion rarely
    matches), too few for a p95. The typed characters are taken out again afterwards."""
    shown = await shown_suggestion(client, uri, rng, timeout_s)
    if shown is None:
        return []
    offset, suggestion = shown
    await client.stats_delta()
    latencies = []
    typed = suggestion[: min(chars, len(suggestion) - 1)]
    for count, char in enumerate(typed, start=1):
        client.edit(uri, offset + count - 1, offset + count - 1, char)
        pending = client.ask_inline_at(uri, offset + count)
        try:
            await asyncio.wait_for(pending.awaitable(), timeout_s)
        except Exception:
            logger.debug("typed-through probe's request failed", exc_info=True)
            break
        if source_of(await client.stats_delta()) == "typed-through" and pending.arrived is not None:
            latencies.append((pending.arrived - pending.sent) * 1000)
    client.edit(uri, offset, offset + len(typed), "")
    return latencies


@dataclass
class AcceptanceProbe:
    """A suggestion accepted whole (Tab) after it was read, and the next request at its end."""

    file: str
    latency_ms: float | None = None
    """From the request after the acceptance to its answer."""
    source: Source | None = None
    """Where that answer came from: the cache when a prefetch had computed it."""


async def probe_acceptance(
    client: EditorClient, uri: str, rng: random.Random, read_s: float, timeout_s: float = 120.0
) -> AcceptanceProbe | None:
    """Show a suggestion, let the user read it for `read_s`, accept it whole and ask at its end, as an
    editor does after Tab; the accepted text is taken out again afterwards. The replay's typist never
    accepts, so this is where prefetch can show what it saves."""
    shown = await shown_suggestion(client, uri, rng, timeout_s)
    if shown is None:
        return None
    offset, suggestion = shown
    await asyncio.sleep(read_s)
    await client.stats_delta()
    client.edit(uri, offset, offset, suggestion)
    pending = client.ask_inline_at(uri, offset + len(suggestion))
    probe = AcceptanceProbe(uri.rsplit("/", 1)[-1])
    try:
        await asyncio.wait_for(pending.awaitable(), timeout_s)
    except Exception:
        logger.debug("acceptance probe's request failed", exc_info=True)
    else:
        if pending.arrived is not None:
            probe.latency_ms = round((pending.arrived - pending.sent) * 1000, 1)
        probe.source = source_of(await client.stats_delta())
    client.edit(uri, offset, offset + len(suggestion), "")
    return probe


# -- the baseline -----------------------------------------------------------------------------------------


async def replay_baseline(
    client: EditorClient, requests: Sequence[RequestRecord], scripts: dict[str, FileScript], timeout_s: float
) -> list[RequestRecord]:
    """Ask again at the same places with the same text, one request at a time, nothing else going on."""
    records = []
    epoch = time.perf_counter()
    for original in requests:
        script = scripts[original.file]
        uri = script_uri(script)
        if uri not in client.documents:
            client.open(uri, original.snapshot, script.language_id)
        else:
            client.replace_all(uri, original.snapshot)
        record = RequestRecord(
            original.file,
            original.line,
            original.character,
            round(time.perf_counter() - epoch, 3),
            offset=original.offset,
        )
        await settle(client, record, client.ask_inline_at(uri, original.offset), timeout_s)
        records.append(record)
    return records


# -- one model, start to end ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOptions:
    """Everything one `bench latency` run is made of."""

    files: tuple[Path, ...] = ()
    """Source files to replay; empty means the bundled ones (Python, TypeScript, Go)."""
    holes: int = 4
    pace: TypingPace = TypingPace()
    replay: ReplayOptions = ReplayOptions()
    baseline_requests: int = 8
    probes_per_file: int = 2
    typed_through_chars: int = 12
    """Characters of a suggestion typed one at a time per file, for the typed-through figures."""
    accept_after_s: float | None = 1.5
    """Per file, a suggestion is accepted whole after being read this long (None: no acceptance probe)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """initializationOptions for both servers (the model is added per run)."""
    server_command: tuple[str, ...] = (sys.executable, "-m", "fim_lsp")
    log_dir: Path | None = None
    load_timeout_s: float = 600.0


def bundled_files() -> list[tuple[str, str]]:
    """(name, text) of the files shipped for the replay."""
    folder = resources.files("fim_lsp").joinpath("data/replay")
    return [
        (entry.name, entry.read_text("utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if Path(entry.name).suffix in LANGUAGE_IDS
    ]


def load_scripts(options: BenchOptions) -> list[FileScript]:
    if options.files:
        sources = [(path.name, path.read_text("utf-8")) for path in options.files]
    else:
        sources = bundled_files()
    return [
        file_script(name, text, options.replay.seed, options.pace, options.holes) for name, text in sources
    ]


async def run_model(
    model: str | None, options: BenchOptions, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """The warm replay, the supersession probes and the baseline for one model; a JSON-ready report."""
    scripts = load_scripts(options)
    log_dir = options.log_dir or Path(tempfile.mkdtemp(prefix="fim-lsp-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    settings = {**options.settings, **({"model": model} if model else {})}
    label = model or str(settings.get("model", "default model"))
    report: dict[str, Any] = {"model": label, "settings": settings, "logs": str(log_dir)}

    say(f"[{label}] starting the server (reuse on)")
    warm, load_s = await start_server(
        options.server_command, settings, log_dir / f"{_slug(label)}-warm.log", options.load_timeout_s
    )
    records: list[RequestRecord] = []
    probes: list[ProbeRecord] = []
    typed_through: list[float] = []
    acceptances: list[AcceptanceProbe] = []
    in_sync = True
    try:
        report["load_s"] = round(load_s, 2)
        epoch = time.perf_counter()
        for script in scripts:
            say(f"[{label}] replaying {script.name} ({len(script.holes)} holes)")
            in_sync = (
                await replay_file(warm, script, options.pace, options.replay, records, epoch) and in_sync
            )
            uri = script_uri(script)
            if options.probes_per_file:
                rng = random.Random(f"{options.replay.seed}:{script.name}:probes")
                probes += await probe_supersession(
                    warm, uri, options.probes_per_file, rng, timeout_s=options.replay.request_timeout_s
                )
            if options.typed_through_chars:
                rng = random.Random(f"{options.replay.seed}:{script.name}:typed-through")
                typed_through += await probe_typed_through(
                    warm, uri, rng, options.typed_through_chars, options.replay.request_timeout_s
                )
            if options.accept_after_s is not None:
                rng = random.Random(f"{options.replay.seed}:{script.name}:accept")
                accepted = await probe_acceptance(
                    warm, uri, rng, options.accept_after_s, options.replay.request_timeout_s
                )
                acceptances += [accepted] if accepted is not None else []
        report["warm_duration_s"] = round(time.perf_counter() - epoch, 1)
        warm_rss = warm.peak_rss_mib()
        server_stats = await warm.stats()
        warm_prefetched = server_stats.get("prefetched", 0)
        warm_ups = server_stats.get("warm_ups", 0)
    finally:
        await warm.close_async()

    # Cancelled requests count too: the typist outran them, but they were real places to complete at.
    pool = [r for r in records if served(r) or r.outcome == "cancelled"]
    chosen = sample_evenly(pool, options.baseline_requests)
    baseline_records: list[RequestRecord] = []
    baseline_rss = None
    if chosen:
        say(f"[{label}] baseline: {len(chosen)} of the same requests, reuse off, one at a time")
        cold, _ = await start_server(
            options.server_command,
            {**settings, "reuse": False},
            log_dir / f"{_slug(label)}-baseline.log",
            options.load_timeout_s,
        )
        try:
            by_name = {s.name: s for s in scripts}
            baseline_records = await replay_baseline(cold, chosen, by_name, options.replay.request_timeout_s)
            baseline_rss = cold.peak_rss_mib()
        finally:
            await cold.close_async()

    warm_summary = summarize(records, warm_rss, warm_prefetched, warm_ups)
    base_summary = summarize(baseline_records, baseline_rss)
    paired = [r.latency_ms for r in chosen if r.latency_ms is not None]
    stops = [p.stop_ms for p in probes if p.stop_ms is not None]
    acks = [r.cancel_ack_ms for r in records if r.cancel_ack_ms is not None]
    report.update(
        warm=asdict(warm_summary),
        baseline=asdict(base_summary),
        ratio_p50=ratio(warm_summary.p50_ms, base_summary.p50_ms),
        ratio_model_p50=ratio(warm_summary.model_p50_ms, base_summary.p50_ms),
        ratio_warm_model_p50=ratio(warm_summary.warm_model_p50_ms, base_summary.p50_ms),
        ratio_paired_p50=ratio(percentile(paired, 50), base_summary.p50_ms),
        in_sync=in_sync,
        typed_through_probes={
            "samples": len(typed_through),
            "p50_ms": _round(percentile(typed_through, 50), 2),
            "p95_ms": _round(percentile(typed_through, 95), 2),
            "max_ms": _round(max(typed_through) if typed_through else None, 2),
        },
        acceptance_probes={
            "samples": len(acceptances),
            "from_cache": sum(a.source == "cache" for a in acceptances),
            "p50_ms": _round(percentile([a.latency_ms for a in acceptances if a.latency_ms is not None], 50)),
            "probes": [asdict(a) for a in acceptances],
        },
        supersession={
            "probes": len(probes),
            "superseded": len(stops),
            "stop_p50_ms": _round(percentile(stops, 50)),
            "stop_max_ms": _round(max(stops) if stops else None),
            "late_ghost": sum(p.late_ghost for p in probes),
            "cancel_ack_p50_ms": _round(percentile(acks, 50), 2),
            "cancel_ack_max_ms": _round(max(acks) if acks else None, 2),
        },
        requests=[r.to_json() for r in records],
        baseline_requests=[r.to_json() for r in baseline_records],
        probes=[asdict(p) for p in probes],
    )
    return report


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in Path(name).name)


def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError):
        facts["load_average"] = [round(x, 2) for x in os.getloadavg()]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return facts


# -- the report -------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_report(report: dict[str, Any]) -> str:
    """The runs side by side with their baselines, as a person reads them."""
    out = []
    facts = report["machine"]
    out.append(
        f"machine: {facts.get('cpu', '?')}, {facts.get('cpus')} CPUs, load average "
        f"{' '.join(str(x) for x in facts.get('load_average', []))} at the start, "
        f"{' '.join(str(x) for x in facts.get('load_average_end', []))} at the end"
    )
    options = report["options"]
    out.append(
        f"replay: {', '.join(options['files'])}; seed {options['seed']}, "
        f"{options['chars_per_second']} chars/s, debounce {options['debounce_ms']} ms, "
        + ("$/cancelRequest on each key" if options["cancel_on_type"] else "no cancels")
    )
    for run in report["runs"]:
        out.append("")
        if "error" in run:
            out.append(f"{run['model']}: {run['error']}")
            continue
        warm, base = run["warm"], run["baseline"]
        out.append(
            f"{run['model']}   (model loaded in {_fmt(run.get('load_s'), 1)} s; logs in {run['logs']})"
        )
        rows = [
            ("requests", warm["requests"], base["requests"]),
            ("answered (ghost text)", warm["answered"], base["answered"]),
            ("empty answers", warm["empty"], base["empty"]),
            ("cancelled", warm["cancelled"], base["cancelled"]),
            ("timeouts and errors", warm["failed"], base["failed"]),
            ("latency p50 ms", _fmt(warm["p50_ms"]), _fmt(base["p50_ms"])),
            ("latency p95 ms", _fmt(warm["p95_ms"]), _fmt(base["p95_ms"])),
            ("latency max ms", _fmt(warm["max_ms"]), _fmt(base["max_ms"])),
            (
                "single-line answers p50 ms",
                _fmt(warm["single_line_p50_ms"]),
                _fmt(base["single_line_p50_ms"]),
            ),
            ("model runs p50 ms", _fmt(warm["model_p50_ms"]), _fmt(base["model_p50_ms"])),
            ("model runs, cache warm", warm.get("warm_model_runs", 0), base.get("warm_model_runs", 0)),
            ("... their p50 ms", _fmt(warm.get("warm_model_p50_ms")), _fmt(base.get("warm_model_p50_ms"))),
            ("tokens evaluated p50", _fmt(warm["evaluated_p50"]), _fmt(base["evaluated_p50"])),
            ("... of model runs p50", _fmt(warm["model_evaluated_p50"]), _fmt(base["model_evaluated_p50"])),
            ("prompt tokens p50", _fmt(warm["prompt_p50"]), _fmt(base["prompt_p50"])),
            ("cache hits", warm["cache_hits"], base["cache_hits"]),
            ("typed-through hits", warm["typed_through"], base["typed_through"]),
            ("typed-through p95 ms", _fmt(warm["typed_through_p95_ms"], 2), "-"),
            ("suggestions accepted", warm["accepted"], "-"),
            ("prefetches done", warm.get("prefetched", 0), "-"),
            ("warm-ups after a cancel", warm.get("warm_ups", 0), "-"),
            ("peak resident memory MiB", _fmt(warm["peak_rss_mib"]), _fmt(base["peak_rss_mib"])),
        ]
        out.append(f"  {'':30} {'warm':>10} {'baseline':>10}")
        out.extend(f"  {name:30} {w!s:>10} {b!s:>10}" for name, w, b in rows)
        verdict = ""
        if run["ratio_p50"] is not None:
            verdict = "  (meets the target)" if run["ratio_p50"] <= TARGET_RATIO else "  (misses the target)"
        out.append(
            f"  warm p50 / baseline p50: {_fmt(run['ratio_p50'], 3)} (target <= {TARGET_RATIO}){verdict}"
        )
        out.append(
            f"  model runs only: {_fmt(run['ratio_model_p50'], 3)}; "
            f"warm model runs: {_fmt(run.get('ratio_warm_model_p50'), 3)}; "
            f"the baseline's own requests in the warm run: {_fmt(run['ratio_paired_p50'], 3)}"
        )
        typed = run.get("typed_through_probes")
        if typed:
            out.append(
                f"  typed-through while a suggestion is typed: p50 {_fmt(typed['p50_ms'], 2)} ms, "
                f"p95 {_fmt(typed['p95_ms'], 2)} ms, max {_fmt(typed['max_ms'], 2)} ms "
                f"({typed['samples']} characters; target p95 < 5 ms)"
            )
        accepted = run.get("acceptance_probes")
        if accepted and accepted["samples"]:
            out.append(
                f"  next request after a suggestion is accepted whole: p50 {_fmt(accepted['p50_ms'])} ms, "
                f"{accepted['from_cache']} of {accepted['samples']} from the cache"
            )
        sup = run["supersession"]
        out.append(
            f"  superseded generation stopped: p50 {_fmt(sup['stop_p50_ms'])} ms, "
            f"max {_fmt(sup['stop_max_ms'])} ms ({sup['superseded']} of {sup['probes']} probes; "
            f"{sup['late_ghost']} late ghost texts)"
        )
        out.append(
            f"  $/cancelRequest acknowledged: p50 {_fmt(sup['cancel_ack_p50_ms'], 2)} ms, "
            f"max {_fmt(sup['cancel_ack_max_ms'], 2)} ms"
        )
        if not run["in_sync"]:
            out.append("  WARNING: the server's copy of a document differed from the editor's at the end")
    return "\n".join(out)


# -- command line -----------------------------------------------------------------------------------------


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
    parser.set_defaults(handler=latency_command)
