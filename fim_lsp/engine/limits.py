"""When a generation must stop, for every engine: its owner cancelled it, its deadline passed, or the text
so far holds a stop string."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fim_lsp.engine.base import CancelToken, StopReason


def interruption(cancel: CancelToken, deadline: float | None) -> StopReason | None:
    """Why a request must stop now, if it must."""
    if cancel.cancelled:
        return "cancelled"
    if deadline is not None and time.monotonic() >= deadline:
        return "deadline"
    return None


def first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    """Index in `text` where the first stop string begins, if any has been generated."""
    found = [i for i in (text.find(stop) for stop in stops if stop) if i >= 0]
    return min(found) if found else None
