"""The rows the user edited (or visited) lately, over all files: recent edits are snippets too."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

#: Recently edited or visited ranges remembered, over all files.
RECENT_RANGES = 16
#: Rows either side of an edited row that count as its range, and the most rows one range may span.
RECENT_RADIUS = 4
RECENT_MAX_ROWS = 24


@dataclass(frozen=True)
class RecentRange:
    """Rows of a file the user edited or visited lately (inclusive, 0-based)."""

    path: str
    first: int
    last: int


class RecentEdits:
    """The last `RECENT_RANGES` ranges; an edit near a remembered range of its file widens that range.
    Not thread-safe: the index calls it under its lock."""

    def __init__(self) -> None:
        self._ranges: deque[RecentRange] = deque(maxlen=RECENT_RANGES)

    def note(self, path: str, row: int) -> None:
        """Row `row` of `path` was edited or visited: remember the rows around it."""
        ranges = self._ranges
        for index in range(len(ranges) - 1, -1, -1):
            recent = ranges[index]
            if recent.path != path:
                continue
            if recent.first - RECENT_RADIUS <= row <= recent.last + RECENT_RADIUS:
                first, last = (
                    min(recent.first, row - RECENT_RADIUS),
                    max(recent.last, row + RECENT_RADIUS),
                )
                if last - first + 1 > RECENT_MAX_ROWS:  # keep the part around the newest row
                    first = max(first, row - RECENT_MAX_ROWS // 2)
                    last = first + RECENT_MAX_ROWS - 1
                del ranges[index]
                ranges.append(RecentRange(path, max(0, first), last))
                return
        ranges.append(RecentRange(path, max(0, row - RECENT_RADIUS), row + RECENT_RADIUS))

    def newest_first(self) -> list[RecentRange]:
        return list(reversed(self._ranges))
