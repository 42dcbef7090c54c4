"""Which evaluated prompts the embedded engine keeps, one per llama.cpp sequence.

llama.cpp keeps the keys and values of every evaluated token in its KV cache, tagged with the sequences
that use them; a sequence can take over another's leading tokens without copying them (`seq_cp`). So
several prompts stay evaluated at once: the file the user came from, the place above the cursor they
moved from, the prompt a keystroke asked for. A new prompt starts from whichever kept prompt shares the
longest start with it, and evaluates only the rest.

This module is the bookkeeping only, without llama.cpp: what each sequence holds, which one a prompt
starts from and where it is written, and which are dropped when the cache would overflow. Each cached
token is a cell with an id of its own; a sequence that takes over another's start shares its cells, so
the cells in use are counted once however many sequences share them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

#: A kept prompt longer than a new one's shared start by at most this many tokens is continued in place
#: (a keystroke on the same line): what it holds past the shared start is worth less than a sequence.
REPLACE_IN_PLACE_TOKENS = 64


@dataclass
class Slot:
    """One llama.cpp sequence and the prompt it holds, token by token from position 0."""

    seq: int
    tokens: list[int] = field(default_factory=list)
    cells: list[int] = field(default_factory=list)
    """The cache cell of each token: cells taken over from another sequence keep their ids."""
    last_used: int = 0


@dataclass(frozen=True)
class Placement:
    """Where a prompt is evaluated: `target` ends up holding it; its first `shared` tokens come from
    `source` (the same slot when continued in place, or another whose start is taken over), the rest are
    evaluated. `dropped` are slots emptied to make room."""

    target: Slot
    source: Slot | None
    shared: int
    dropped: tuple[Slot, ...] = ()


def common_start(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading items `a` and `b` share."""
    limit = min(len(a), len(b))
    shared = 0
    while shared < limit and a[shared] == b[shared]:
        shared += 1
    return shared


class PromptSlots:
    """The prompts kept in a cache of `capacity` cells, in `count` sequences numbered from 0."""

    def __init__(self, count: int, capacity: int) -> None:
        if count < 1:
            raise ValueError("at least one slot is needed")
        self.slots = [Slot(seq) for seq in range(count)]
        self.capacity = capacity
        self._clock = itertools.count(1)
        self._cell_ids = itertools.count()

    def cells_in_use(self, without: Sequence[Slot] = ()) -> int:
        """Distinct cells held by the slots not in `without`."""
        left_out = {slot.seq for slot in without}
        return len({cell for slot in self.slots if slot.seq not in left_out for cell in slot.cells})

    def best_start(self, tokens: Sequence[int]) -> tuple[Slot | None, int]:
        """The slot sharing the longest start with `tokens` (the most recently used of equals)."""
        best: Slot | None = None
        best_shared = 0
        for slot in self.slots:
            shared = common_start(slot.tokens, tokens)
            if shared > best_shared or (shared == best_shared and best and slot.last_used > best.last_used):
                best, best_shared = slot, shared
        return (best, best_shared) if best_shared else (None, 0)

    def place(self, tokens: Sequence[int], room: int = 0) -> Placement:
        """Where to evaluate `tokens`, with `room` more cells for what generation writes after them.

        The slot with the longest shared start is continued in place when what it holds past that start
        is short (typing on a line); otherwise its start is taken over by the least recently used other
        slot, so that the prompt it holds stays evaluated for when the user comes back. Slots are emptied,
        least recently used first, while the cells in use would exceed the capacity.
        """
        source, shared = self.best_start(tokens)
        others = [slot for slot in self.slots if slot is not source]
        if source is not None and (len(source.tokens) - shared <= REPLACE_IN_PLACE_TOKENS or not others):
            target = source
        else:
            target = min(others, key=lambda slot: (bool(slot.tokens), slot.last_used))
        keep = {id(target)} | ({id(source)} if source is not None else set())
        reused = source.cells[:shared] if source is not None else []
        fresh = len(tokens) + room - len(reused)
        dropped: list[Slot] = []

        def cells_after() -> int:
            kept = [slot for slot in self.slots if slot is not target and slot not in dropped]
            return len({cell for slot in kept for cell in slot.cells} | set(reused)) + fresh

        for slot in sorted(self.slots, key=lambda slot: slot.last_used):
            if cells_after() <= self.capacity:
                break
            if id(slot) not in keep and slot.tokens:
                dropped.append(slot)
        return Placement(target, source, shared, tuple(dropped))

    # -- what the engine reports back ---------------------------------------------------------------------

    def take_over(self, target: Slot, source: Slot | None, shared: int) -> None:
        """`target` now holds `source`'s first `shared` tokens (itself, truncated, when they are one)."""
        if source is None or shared == 0:
            target.tokens, target.cells = [], []
        elif source is target:
            del target.tokens[shared:], target.cells[shared:]
        else:
            target.tokens, target.cells = source.tokens[:shared], source.cells[:shared]
        target.last_used = next(self._clock)

    def evaluated(self, slot: Slot, tokens: Sequence[int]) -> None:
        """`tokens` were decoded into `slot` after what it held."""
        slot.tokens.extend(tokens)
        slot.cells.extend(next(self._cell_ids) for _ in tokens)
        slot.last_used = next(self._clock)

    def truncate(self, slot: Slot, length: int) -> None:
        """`slot` holds only its first `length` tokens (the rest were dropped or never written)."""
        del slot.tokens[length:], slot.cells[length:]

    def clear(self, slot: Slot) -> None:
        slot.tokens, slot.cells = [], []

    def clear_all(self) -> None:
        for slot in self.slots:
            self.clear(slot)
