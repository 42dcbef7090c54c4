"""The replay: a typist types a file's holes into the editor while the editor asks for completions
when typing pauses (and cancels what is in flight when a key comes); and the baseline, the same requests
asked one at a time of a server with reuse off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fim_lsp.bench.latency.records import RequestRecord, source_of
from fim_lsp.bench.latency.script import (
    FileScript,
    HoleScript,
    TypingPace,
    asks_after,
    script_uri,
)
from fim_lsp.client import REQUEST_CANCELLED, EditorClient, Pending, ResponseError, ServerGone, insert_texts
from fim_lsp.documents import position_at

logger = logging.getLogger(__name__)


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
