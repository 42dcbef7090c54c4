"""What became of the suggestions shown, counted in memory only: never written to disk, never sent
anywhere but to the editor that asks (`fim-lsp.stats`, the `fimLsp/status` notification).

Editors tell the server as Copilot's editors tell its server (`textDocument/didShowCompletion`,
`textDocument/didPartiallyAcceptCompletion`, the item's command), under fim-lsp's own names:

- `fimLsp/didShowCompletion` `{item}`: the item is on screen (also after cycling to another candidate,
  which then is the one typed-through answers follow);
- `fimLsp/didPartiallyAcceptCompletion` `{item, acceptedLength}`: part of the item (a word, a line) went
  into the document; `acceptedLength` counts the characters this accept inserted (Copilot counts the
  item's characters accepted so far, which would count again what the user typed along it);
- the whole item accepted: the editor runs the item's `command` (`fim-lsp.didAcceptCompletion`), whose
  argument the server wrote (`{suggestion, rank, length}`, `length` the item's characters; an editor that
  inserted fewer, the user having typed some of them, may put its own count there).

A suggestion never counts more accepted characters than its candidate has.

A suggestion is one answer of the model (or the cache) and what typing through it keeps of it: typing
along a suggestion, or accepting part of it, continues it, so each suggestion counts once as shown, once
as partly accepted and once as accepted, whatever the number of keystrokes in between. The last
`KEEP_SUGGESTIONS` suggestions are remembered (their candidates, to tell which one was accepted).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

logger = logging.getLogger(__name__)

#: The command an inline completion item runs once the editor has inserted the whole of it.
ACCEPT_COMMAND = "fim-lsp.didAcceptCompletion"
SHOWN_NOTIFICATION = "fimLsp/didShowCompletion"
PARTLY_ACCEPTED_NOTIFICATION = "fimLsp/didPartiallyAcceptCompletion"
#: Suggestions remembered at most (the oldest go first): notifications about older ones are not counted.
KEEP_SUGGESTIONS = 64


@dataclass
class Suggestion:
    """One answer and what typing through it keeps of it."""

    number: int
    key: str
    """The document it was answered for."""
    candidates: tuple[str, ...]
    """Its candidates as first answered, best first."""
    typed: str = ""
    """What the user has typed of it since (the latest answer's candidates are the rests after it)."""
    latest: tuple[str, ...] = ()
    """The candidates of the latest answer to it."""
    shown: bool = False
    partly: bool = False
    accepted: bool = False
    chars: int = 0
    """Characters of it counted as accepted so far."""

    def take(self, rank: int, chars: int) -> int:
        """Count `chars` more of candidate `rank` as accepted; returns how many of them are new."""
        whole = len(self.candidates[rank]) if rank < len(self.candidates) else 0
        taken = max(0, min(chars, whole - self.chars))
        self.chars += taken
        return taken


@dataclass
class AcceptanceCounts:
    """The counters `fim-lsp.stats` and the status report."""

    shown: int = 0
    """Suggestions shown."""
    accepted: int = 0
    """Suggestions accepted whole (the rest of them, after any partial accepts)."""
    partly_accepted: int = 0
    """Suggestions of which a word or a line was accepted."""
    accepted_chars: int = 0
    """Characters of suggestions that went into documents, whole or in part."""
    accepted_alternatives: int = 0
    """Suggestions accepted whole whose candidate was not the first one answered."""

    def as_wire(self) -> dict[str, int]:
        """The counters in camelCase, for the status notification."""
        return {
            "shown": self.shown,
            "accepted": self.accepted,
            "partlyAccepted": self.partly_accepted,
            "acceptedChars": self.accepted_chars,
            "acceptedAlternatives": self.accepted_alternatives,
        }


class AcceptanceLog:
    """The suggestions lately answered and the counts of what became of them. Not thread-safe: the
    server calls it from its event loop only."""

    def __init__(self, keep: int = KEEP_SUGGESTIONS) -> None:
        self.keep = keep
        self.counts = AcceptanceCounts()
        self._suggestions: OrderedDict[int, Suggestion] = OrderedDict()
        self._latest: dict[str, int] = {}
        self._next = 1

    def answered(self, key: str, candidates: Sequence[str], continues: bool) -> Suggestion:
        """Record an answer with `candidates` for document `key`; `continues` when it is typed through
        the document's last suggestion (which it then is, its candidates as first answered). An answer
        that holds all of the latest answer's candidates, before that suggestion was accepted, is that
        suggestion too: the editor asked again at the same place (a re-trigger, the cache), or for the
        alternatives (which join its candidates)."""
        number = self._latest.get(key)
        suggestion = self._suggestions.get(number) if number is not None else None
        again = (
            suggestion is not None and not suggestion.accepted and set(suggestion.latest) <= set(candidates)
        )
        if suggestion is not None and (continues or again):
            self._suggestions.move_to_end(suggestion.number)
            if continues:
                suggestion.typed = _typed_prefix(suggestion.candidates, candidates)
            else:
                more = [
                    suggestion.typed + c
                    for c in candidates
                    if suggestion.typed + c not in suggestion.candidates
                ]
                suggestion.candidates += tuple(more)
            suggestion.latest = tuple(candidates)
            return suggestion
        suggestion = Suggestion(self._next, key, tuple(candidates), latest=tuple(candidates))
        self._next += 1
        self._suggestions[suggestion.number] = suggestion
        self._latest[key] = suggestion.number
        while len(self._suggestions) > self.keep:
            _, old = self._suggestions.popitem(last=False)
            if self._latest.get(old.key) == old.number:
                del self._latest[old.key]
        return suggestion

    def tag(self, suggestion: Suggestion, text: str) -> dict[str, int]:
        """The accept command's argument for an item of an answer to `suggestion`: its rank is that of
        the candidate as first answered (a typed-through answer holds the rest of it, the candidate on
        screen first)."""
        whole = suggestion.typed + text
        rank = suggestion.candidates.index(whole) if whole in suggestion.candidates else 0
        return {"suggestion": suggestion.number, "rank": rank, "length": len(text)}

    def shown(self, item: Any) -> Suggestion | None:
        """An item is on screen: its suggestion, counted shown once; None for an item not ours."""
        found = self._find(_command_argument(item))
        if found is None:
            return None
        suggestion, _ = found
        if not suggestion.shown:
            suggestion.shown = True
            self.counts.shown += 1
        return suggestion

    def partly_accepted(self, item: Any, accepted_length: Any) -> bool:
        """Part of an item went into the document; False (nothing counted) for input not understood."""
        found = self._find(_command_argument(item))
        if found is None or not _count(accepted_length):
            return False
        suggestion, tag = found
        self.counts.accepted_chars += suggestion.take(tag["rank"], min(accepted_length, tag["length"]))
        if not suggestion.partly:
            suggestion.partly = True
            self.counts.partly_accepted += 1
        return True

    def accepted(self, argument: Any) -> bool:
        """The whole of an item went into the document (its command ran with `argument`)."""
        found = self._find(argument)
        if found is None:
            return False
        suggestion, tag = found
        if suggestion.accepted:
            return False
        suggestion.accepted = True
        self.counts.accepted += 1
        self.counts.accepted_chars += suggestion.take(tag["rank"], tag["length"])
        self.counts.accepted_alternatives += tag["rank"] > 0
        return True

    def forget(self, key: str) -> None:
        """The document was closed: typing in it again starts a new suggestion."""
        self._latest.pop(key, None)

    def _find(self, argument: Any) -> tuple[Suggestion, dict[str, int]] | None:
        if not isinstance(argument, dict):
            return None
        tag: dict[str, int] = {}
        for name in ("suggestion", "rank", "length"):
            value = argument.get(name)
            if not _count(value):
                logger.debug("acceptance: an argument not ours: %r", argument)
                return None
            tag[name] = value
        suggestion = self._suggestions.get(tag["suggestion"])
        return None if suggestion is None else (suggestion, tag)


def _typed_prefix(candidates: Sequence[str], rests: Sequence[str]) -> str:
    """What was typed of a suggestion whose `candidates` typing through left `rests` of: the text that,
    put before each rest, gives one of the candidates."""
    for candidate in candidates:
        if rests and candidate.endswith(rests[0]):
            typed = candidate[: len(candidate) - len(rests[0])]
            if all(typed + rest in candidates for rest in rests):
                return typed
    return ""


def _count(value: Any) -> TypeGuard[int]:
    """Whether `value` is a whole number of things (not a bool, not negative, not absurd)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 31


def _command_argument(item: Any) -> Any:
    """The argument the server gave an item's accept command, from the item as the editor sends it."""
    if not isinstance(item, dict):
        return None
    command = item.get("command")
    if not isinstance(command, dict) or command.get("command") != ACCEPT_COMMAND:
        return None
    arguments = command.get("arguments")
    return arguments[0] if isinstance(arguments, list) and arguments else None
