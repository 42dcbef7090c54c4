"""A small in-process job queue with retries and back-off, as a web service might keep for e-mails."""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

log = logging.getLogger(__name__)


class JobState(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(order=True)
class Job:
    run_at: float
    number: int
    name: str = field(compare=False)
    action: Callable[[], None] = field(compare=False, repr=False)
    attempts: int = field(default=0, compare=False)
    state: JobState = field(default=JobState.WAITING, compare=False)
    last_error: str | None = field(default=None, compare=False)


class JobQueue:
    """Runs jobs when they are due; a failing job is tried again later, a few times at most."""

    def __init__(self, max_attempts: int = 3, base_delay: float = 2.0, clock=time.monotonic) -> None:
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.clock = clock
        self._heap: list[Job] = []
        self._numbers = itertools.count(1)
        self.finished: list[Job] = []

    def __len__(self) -> int:
        return len(self._heap)

    def submit(self, name: str, action: Callable[[], None], delay: float = 0.0) -> Job:
        job = Job(self.clock() + delay, next(self._numbers), name, action)
        heapq.heappush(self._heap, job)
        log.debug("queued %s as job %d", name, job.number)
        return job

    def next_due(self) -> float | None:
        """Seconds until the next job is due, or None when the queue is empty."""
        if not self._heap:
            return None
        return max(0.0, self._heap[0].run_at - self.clock())

    def backoff(self, attempts: int) -> float:
        """The delay before another attempt: doubles with every failure."""
        return self.base_delay * 2 ** (attempts - 1)

    def run_due(self) -> int:
        """Run every job that is due now; returns how many ran."""
        ran = 0
        now = self.clock()
        while self._heap and self._heap[0].run_at <= now:
            job = heapq.heappop(self._heap)
            self._run(job)
            ran += 1
        return ran

    def _run(self, job: Job) -> None:
        job.state = JobState.RUNNING
        job.attempts += 1
        try:
            job.action()
        except Exception as exc:
            job.last_error = f"{type(exc).__name__}: {exc}"
            if job.attempts >= self.max_attempts:
                job.state = JobState.FAILED
                self.finished.append(job)
                log.warning("job %s failed for good: %s", job.name, job.last_error)
                return
            job.state = JobState.WAITING
            job.run_at = self.clock() + self.backoff(job.attempts)
            heapq.heappush(self._heap, job)
            return
        job.state = JobState.DONE
        self.finished.append(job)

    def cancel(self, number: int) -> bool:
        """Remove a waiting job; False when no such job waits."""
        for index, job in enumerate(self._heap):
            if job.number == number:
                self._heap[index] = self._heap[-1]
                self._heap.pop()
                heapq.heapify(self._heap)
                return True
        return False

    def summary(self) -> dict[str, int]:
        """How many finished jobs ended in each state."""
        counts = {state.value: 0 for state in JobState}
        for job in self.finished:
            counts[job.state.value] += 1
        counts[JobState.WAITING.value] = len(self._heap)
        return counts


def drain(queue: JobQueue, sleep=time.sleep, limit: int = 1000) -> None:
    """Run the queue until it is empty, sleeping while nothing is due."""
    for _ in range(limit):
        wait = queue.next_due()
        if wait is None:
            return
        if wait > 0:
            sleep(wait)
        queue.run_due()
    raise RuntimeError(f"queue still busy after {limit} rounds")
