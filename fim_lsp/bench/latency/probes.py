"""Probes beside the replay: a long generation superseded by a newer request, a shown suggestion typed
character by character (typed-through answers), and one accepted whole (what prefetch saves)."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from dataclasses import dataclass
from typing import Literal

from fim_lsp.bench.latency.records import Outcome, RequestRecord, Source, source_of
from fim_lsp.bench.latency.replay import settle
from fim_lsp.bench.latency.script import TypingPace
from fim_lsp.client import EditorClient, Pending, insert_texts
from fim_lsp.holes import line_starts

logger = logging.getLogger(__name__)


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
    """From the newer request to the superseded one's (empty) answer, which the server sends once the old
    generation has stopped; only where no `$/cancelRequest` was sent, since that is answered at once."""
    first_outcome: Outcome = "pending"
    late_ghost: bool = False
    """The superseded request still came back with ghost text (it must not)."""


def probe_positions(text: str, rng: random.Random) -> tuple[list[int], list[int]]:
    """Places to start a long generation (empty lines: the model writes a new block) and places inside a
    word (the server answers nothing there, at once, once its worker is free)."""
    lines = text.split("\n")
    starts = line_starts(lines)
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
            except Exception:
                logger.debug("probe's newer request failed", exc_info=True)
        record = RequestRecord(probe.file, 0, 0, 0.0)
        await settle(client, record, first, timeout_s)
        if variant == "supersede" and not probe.finished_first and first.arrived is not None:
            probe.stop_ms = round((first.arrived - newer_sent) * 1000, 1)
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


@dataclass
class ColdPositionProbe:
    """The user moves to a line never asked about, opens a new line under it and types: the first ghost
    text there, timed from the first keystroke (Enter)."""

    file: str
    line: int
    typed: str = ""
    """What was typed on the new line before the first ghost text came."""
    first_ghost_ms: float | None = None
    """From Enter to the first answer with text; None when none came while the word was typed."""
    requests: int = 0


def cold_rows(text: str, asked_rows: set[int], rng: random.Random, spacing: int = 8) -> list[int]:
    """Rows of indented code, followed by another such row that starts with a word, at least `spacing`
    rows from every row asked about (the replay's, and each other's): places the server has not seen."""
    lines = text.split("\n")
    rows = []
    for row in range(len(lines) - 1):
        line, after = lines[row], lines[row + 1]
        if not line.strip() or line[:1] not in " \t" or not after.strip()[:1].isalpha():
            continue
        if any(abs(row - asked) < spacing for asked in asked_rows):
            continue
        rows.append(row)
    rng.shuffle(rows)
    chosen: list[int] = []
    for row in rows:
        if all(abs(row - other) >= spacing for other in chosen):
            chosen.append(row)
    return chosen


async def _first_ghost(pending: Pending, wait_s: float) -> bool:
    """Whether `pending` is answered with text within `wait_s`. A request not answered by then is left to
    the caller (the next key cancels it): its answer, or its error, is then read by nobody."""
    answered = pending.awaitable()
    try:
        answer = await asyncio.wait_for(asyncio.shield(answered), wait_s)
    except TimeoutError:
        answered.add_done_callback(lambda future: future.cancelled() or future.exception())
        return False
    texts = insert_texts(answer)
    return bool(texts and texts[0].strip())


async def probe_cold_position(
    client: EditorClient,
    uri: str,
    row: int,
    pace: TypingPace,
    debounce_s: float,
    rng: random.Random,
    timeout_s: float,
) -> ColdPositionProbe:
    """At the end of `row`, Enter (with the next line's indentation, as an editor indents), then the next
    line's first word typed a key at a time; the editor asks once the keys pause for its debounce and
    cancels a request the next key overtakes. Everything typed is taken out again afterwards."""
    lines = client.documents[uri].text.split("\n")
    end = sum(len(line) + 1 for line in lines[:row]) + len(lines[row])
    after = lines[row + 1]
    indentation = after[: len(after) - len(after.lstrip(" \t"))]
    word = re.match(r"\w+", after.lstrip(" \t"))
    keys = word.group(0) if word else after.strip()[:4]
    probe = ColdPositionProbe(uri.rsplit("/", 1)[-1], row)
    first_key = time.perf_counter()
    client.edit(uri, end, end, "\n" + indentation)
    cursor = end + 1 + len(indentation)
    for index in range(len(keys) + 1):
        # The editor asks when the keys pause: after the last one, and when the typist is slower than the
        # debounce between two of them.
        gap = pace.gap(rng) if index < len(keys) else debounce_s
        if gap >= debounce_s:
            await asyncio.sleep(debounce_s)
            pending = client.ask_inline_at(uri, cursor)
            probe.requests += 1
            if await _first_ghost(pending, timeout_s if index == len(keys) else gap - debounce_s):
                probe.first_ghost_ms = round((time.perf_counter() - first_key) * 1000, 1)
                break
            if index < len(keys) and not pending.done():
                client.cancel(pending.msg_id)  # the next key overtook it
        else:
            await asyncio.sleep(gap)
        if index == len(keys):
            break
        client.edit(uri, cursor, cursor, keys[index])
        cursor += 1
        probe.typed += keys[index]
    client.edit(uri, end, cursor, "")
    return probe
