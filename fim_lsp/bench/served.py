"""Quality as users get it: each task asked of `fim-lsp --stdio` with the server's own settings and deadline.

`fim-lsp bench quality --served` runs every task through a fresh server process, as a user who opens a
file and moves to a spot: the document is opened, and the completion asked for `open_wait` seconds
later, through the protocol an editor speaks. Whatever the server does for real happens here too: its
choice of model and prompt for this machine, its time budget (an answer not ready in time is nothing),
evaluating the prompt while the file is open. Each task gets a new process, so no task finds another's
prompt in the cache: these are cold requests, the slowest a user meets.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fim_lsp.bench.latency.replay import BenchError, start_server
from fim_lsp.bench.quality.tasks import Answer, Task
from fim_lsp.client import insert_texts

logger = logging.getLogger(__name__)

#: Seconds between opening a task's file and asking for the completion: the user moves to the spot.
OPEN_WAIT_SECONDS = 2.0


def server_command() -> list[str]:
    """This installation's `fim-lsp`, run with the interpreter running the benchmark."""
    return [sys.executable, "-m", "fim_lsp"]


async def _ask(task: Task, settings: dict[str, Any], open_wait: float, log_file: Path) -> Answer:
    client, _load_s = await start_server(server_command(), settings, log_file)
    try:
        uri = Path("/workspace", task.repo or "task", task.path).as_uri()
        client.open(uri, task.prefix + task.suffix, task.language)
        await asyncio.sleep(open_wait)
        pending = client.ask_inline_at(uri, len(task.prefix))
        result = await pending
        latency = ((pending.arrived or time.perf_counter()) - pending.sent) * 1000
        stats = await client.stats()
    finally:
        await client.close_async()
    texts = insert_texts(result)
    # The server's log line of the completion says why it ended; the protocol does not.
    log = log_file.read_text(errors="replace") if log_file.exists() else ""
    return Answer(
        text=texts[0] if texts and texts[0] else None,
        reached_eot="reason=eot" in log,
        latency_ms=latency,
        tokens=stats.get("generated_tokens", 0),
        max_tokens=0,
        out_of_time="reason=deadline" in log,
    )


@contextmanager
def served_system(
    settings: dict[str, Any], open_wait: float = OPEN_WAIT_SECONDS
) -> Iterator[Callable[[Task, int | None], Answer]]:
    """A completion function that asks a fresh `fim-lsp --stdio` for each task, with `settings` as the
    client's initialization options (none: the server's defaults)."""
    with tempfile.TemporaryDirectory(prefix="fim-lsp-served-") as folder:
        logs = Path(folder)

        def served(task: Task, _max_tokens: int | None) -> Answer:
            log_file = logs / f"server-{time.monotonic_ns()}.log"
            try:
                return asyncio.run(_ask(task, settings, open_wait, log_file))
            except BenchError as exc:
                tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
                raise BenchError(f"{exc}\n{tail}") from exc

        yield served
