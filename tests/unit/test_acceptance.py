"""The acceptance counts: each suggestion counts once whatever the keystrokes, memory stays bounded."""

from __future__ import annotations

from typing import Any

from fim_lsp.acceptance import ACCEPT_COMMAND, AcceptanceLog


def item(log: AcceptanceLog, suggestion: Any, text: str) -> dict[str, Any]:
    """An inline completion item as an editor sends it back."""
    command = {"title": "accepted", "command": ACCEPT_COMMAND, "arguments": [log.tag(suggestion, text)]}
    return {"insertText": text, "command": command}


def test_typing_through_continues_the_suggestion_and_keeps_the_first_ranks() -> None:
    log = AcceptanceLog()
    first = log.answered("doc", ["sum(xs)", "max(xs)", "max(xs, default=0)"], continues=False)
    typed = log.answered("doc", ["xs, default=0)", "xs)"], continues=True)
    assert typed is first
    assert log.tag(typed, "xs, default=0)")["rank"] == 2
    assert log.tag(typed, "xs)")["rank"] == 1
    again = log.answered("doc", ["xs)", "xs, default=0)"], continues=False)
    assert again is first and log.tag(again, "xs)")["rank"] == 1, "asked again where typing through left it"
    other = log.answered("doc", ["sum(xs)"], continues=False)
    assert other.number != first.number
    assert log.answered("new.py", ["a"], continues=True).number not in (first.number, other.number)


def test_asked_again_at_the_same_place_is_the_same_suggestion() -> None:
    log = AcceptanceLog()
    alone = log.answered("doc", ["sum(xs)"], continues=False)  # typing: the first alone
    first = log.answered("doc", ["sum(xs)", "max(xs)"], continues=False)  # asked for the alternatives
    assert first is alone and log.tag(first, "max(xs)")["rank"] == 1
    assert log.answered("doc", ["max(xs)", "sum(xs)"], continues=False) is first  # on-screen first
    log.accepted(log.tag(first, "sum(xs)"))
    assert log.answered("doc", ["sum(xs)", "max(xs)"], continues=False) is not first, "after acceptance"


def test_each_suggestion_counts_once() -> None:
    log = AcceptanceLog()
    suggestion = log.answered("doc", ["return total", "return 0"], continues=False)
    shown = item(log, suggestion, "return total")
    for _ in range(3):
        assert log.shown(shown) is suggestion
    log.shown(item(log, suggestion, "return 0"))  # cycled: the same suggestion
    assert log.partly_accepted(shown, len("return"))
    assert log.partly_accepted(shown, len(" tot"))  # the same item still on screen: the next word
    rest = item(log, suggestion, "al")
    assert log.accepted(rest["command"]["arguments"][0])
    assert not log.accepted(rest["command"]["arguments"][0])
    counts = log.counts
    assert (counts.shown, counts.partly_accepted, counts.accepted) == (1, 1, 1)
    assert counts.accepted_chars == len("return total")
    assert counts.accepted_alternatives == 0


def test_a_suggestion_counts_no_more_characters_than_its_candidate() -> None:
    """An editor that accepts a stale item (the user typed part of it before the next answer came)
    says its whole length; the count stops at the candidate's."""
    log = AcceptanceLog()
    suggestion = log.answered("doc", ["first", "max(values, default=0)"], continues=False)
    stale = item(log, suggestion, "max(values, default=0)")
    assert log.partly_accepted(stale, len("max(values"))
    assert log.accepted(stale["command"]["arguments"][0])
    assert log.counts.accepted_chars == len("max(values, default=0)")
    assert log.counts.accepted_alternatives == 1


def test_what_is_remembered_is_bounded() -> None:
    log = AcceptanceLog(keep=4)
    suggestions = [log.answered(f"doc{n}", [f"x{n}"], continues=False) for n in range(10)]
    assert log.shown(item(log, suggestions[0], "x0")) is None, "forgotten: not counted"
    assert log.shown(item(log, suggestions[-1], "x9")) is suggestions[-1]
    assert len(log._suggestions) == 4 and len(log._latest) == 4
    log.forget("doc9")
    assert log.answered("doc9", ["y"], continues=True) is not suggestions[-1]


def test_input_that_is_not_ours_counts_nothing() -> None:
    log = AcceptanceLog()
    suggestion = log.answered("doc", ["x = 1"], continues=False)
    good = item(log, suggestion, "x = 1")
    bad_items: list[Any] = [
        None,
        3,
        {},
        {"command": {"command": "other", "arguments": [{}]}},
        {"insertText": "x"},
    ]
    for bad in bad_items:
        assert log.shown(bad) is None
        assert not log.partly_accepted(bad, 2)
    for length in (-1, True, "3", 2**40):
        assert not log.partly_accepted(good, length)
    for argument in (
        None,
        [],
        {"suggestion": suggestion.number},
        {"suggestion": "1", "rank": 0, "length": 1},
    ):
        assert not log.accepted(argument)
    assert log.partly_accepted(good, 10**6)  # more than the item holds: counted as the whole item
    assert log.counts.accepted_chars == len("x = 1") and log.counts.shown == 0
