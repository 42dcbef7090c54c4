"""Which evaluated prompts the embedded engine keeps (`fim_lsp.engine.slots`): where a prompt starts from,
where it is written, and what is dropped when the cache is full."""

from __future__ import annotations

import pytest

from fim_lsp.engine.slots import REPLACE_IN_PLACE_TOKENS, PromptSlots, common_start


def write(slots: PromptSlots, tokens: list[int], room: int = 0):
    """What the engine does with a placement: take the start over, evaluate the rest."""
    placement = slots.place(tokens, room)
    for slot in placement.dropped:
        slots.clear(slot)
    slots.take_over(placement.target, placement.source, placement.shared)
    slots.evaluated(placement.target, tokens[len(placement.target.tokens) :])
    return placement


@pytest.mark.parametrize(
    ("a", "b", "shared"),
    [
        pytest.param([1, 2, 3], [1, 2, 4], 2, id="differ-at-the-end"),
        pytest.param([1, 2], [1, 2, 3], 2, id="one-starts-the-other"),
        pytest.param([], [1], 0, id="empty"),
        pytest.param([5], [1], 0, id="nothing-shared"),
    ],
)
def test_common_start(a, b, shared):
    assert common_start(a, b) == shared


def test_typing_continues_the_same_slot():
    slots = PromptSlots(count=4, capacity=1000)
    first = write(slots, list(range(100)))
    second = write(slots, [*range(100), 7, 8])
    assert second.target is first.target and second.source is first.target
    assert second.shared == 100
    assert first.target.tokens == [*range(100), 7, 8]


def test_a_prompt_that_shares_a_short_start_goes_to_another_slot_and_keeps_the_first():
    slots = PromptSlots(count=4, capacity=1000)
    first = write(slots, list(range(300)))
    moved = write(slots, [*range(50), 999])  # the cursor moved up: the start up to it is shared
    assert moved.target is not first.target and moved.source is first.target
    assert moved.shared == 50
    assert first.target.tokens == list(range(300))  # still there for when the user comes back
    back = write(slots, [*range(300), 1])
    assert back.source is first.target and back.shared == 300


def test_the_shared_start_counts_once_in_the_cells_in_use():
    slots = PromptSlots(count=4, capacity=1000)
    write(slots, list(range(400)))
    write(slots, [*range(250), 999])
    assert slots.cells_in_use() == 401


def test_a_prompt_sharing_nothing_takes_an_empty_slot_first_then_the_least_recently_used():
    slots = PromptSlots(count=2, capacity=10_000)
    a = write(slots, [1] * 10)
    b = write(slots, [2] * 10)
    assert a.target is not b.target
    c = write(slots, [3] * 10)
    assert c.target is a.target and c.source is None  # `a` was used least recently


def test_slots_are_dropped_least_recently_used_first_when_the_cache_would_overflow():
    slots = PromptSlots(count=4, capacity=250)
    a = write(slots, [1] * 100)
    b = write(slots, [2] * 100)
    c = write(slots, [3] * 100, room=10)
    assert c.dropped == (a.target,)
    assert b.target.tokens and not a.target.tokens
    assert slots.cells_in_use() <= 250


def test_the_slot_a_prompt_starts_from_is_never_dropped():
    slots = PromptSlots(count=3, capacity=400)
    a = write(slots, list(range(200)))
    write(slots, [7] * 100)
    grown = write(slots, [*range(200), *range(1000, 1000 + REPLACE_IN_PLACE_TOKENS)], room=50)
    assert grown.source is a.target
    assert a.target not in grown.dropped
    assert slots.cells_in_use() <= 400


def test_truncating_a_slot_forgets_its_tail():
    slots = PromptSlots(count=1, capacity=100)
    placement = write(slots, list(range(20)))
    slots.truncate(placement.target, 5)
    assert placement.target.tokens == list(range(5))
    assert slots.best_start([0, 1, 2, 3, 4, 9]) == (placement.target, 5)
