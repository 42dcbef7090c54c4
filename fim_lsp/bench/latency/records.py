"""What became of each request of a replay."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["pending", "answered", "empty", "cancelled", "timeout", "error"]


Source = Literal["model", "cache", "typed-through", "none"]


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


def source_of(delta: dict[str, int]) -> Source:
    """Where an answer came from, by how the server's counters moved while it was being answered."""
    if delta.get("typed_through", 0) > 0:
        return "typed-through"
    if delta.get("cache_hits", 0) > 0:
        return "cache"
    if delta.get("generated", 0) > 0:
        return "model"
    return "none"
