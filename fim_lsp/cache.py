"""Answers that cost no model time: the completion cache and typed-through reuse.

- The completion cache maps what the prompt would be made of (the text around the cursor, the language
  and the settings that shape generation) to the answer, least recently used first out when its bytes
  pass the `cacheMemoryMb` setting, so undo, moving back and forth and re-triggers cost nothing.
- Typed-through reuse: when the user types the characters the ghost text on screen begins with, the
  rest of that ghost text is still the answer, and the rests of the other candidates that begin the
  same way are its alternatives. What is remembered per document is the text near the cursor (the
  context window, as for the cache key) and the candidates, not a copy of the whole document.
"""

from __future__ import annotations

import hashlib
import sys
from collections import OrderedDict
from dataclasses import dataclass, replace

from fim_lsp.config import Settings


def context_window(settings: Settings) -> int:
    """Characters each side of the cursor that can reach a prompt: generously 8 per budgeted token."""
    return settings.budget_cap * 8


def cache_key(
    text: str, offset: int, language_id: str | None, settings: Settings, workspace_state: str = ""
) -> str:
    """A digest of everything that decides the answer: the text near the cursor, the settings, and the
    state of the rest of the workspace (whose snippets the prompt may carry)."""
    window = context_window(settings)
    digest = hashlib.blake2b(digest_size=16)
    shaping = (
        settings.model,
        settings.adapter,
        settings.engine,
        settings.budget_cap,
        settings.suffix_share,
        settings.max_new_tokens,
        settings.fim_order,
        settings.workspace_context,
        settings.workspace_context_share,
        language_id,
        workspace_state,
    )
    digest.update(repr(shaping).encode())
    digest.update(b"\0prefix\0")
    digest.update(text[max(0, offset - window) : offset].encode("utf-8", "surrogatepass"))
    digest.update(b"\0suffix\0")
    digest.update(text[offset : offset + window].encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


#: Bytes an entry costs besides its key and answer strings (the ordered dictionary's node and slot).
ENTRY_OVERHEAD = 100
MIB = 1024 * 1024


def entry_cost(key: str, answer: str) -> int:
    """Bytes one entry is counted as."""
    return sys.getsizeof(key) + sys.getsizeof(answer) + ENTRY_OVERHEAD


class CompletionCache:
    """Least-recently-used answers, bounded by the bytes their keys and answers take (and, when given,
    by count). `max_bytes` 0 keeps nothing."""

    def __init__(self, max_bytes: int = 4 * MIB, max_entries: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __contains__(self, key: str) -> bool:
        """Whether `key` has an answer (neither a hit nor a miss, and its place in line is kept)."""
        return key in self._entries

    def get(self, key: str) -> str | None:
        answer = self._entries.get(key)
        if answer is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return answer

    def put(self, key: str, answer: str) -> None:
        if entry_cost(key, answer) > self.max_bytes:
            return
        previous = self._entries.pop(key, None)
        if previous is not None:
            self._bytes -= entry_cost(key, previous)
        self._entries[key] = answer
        self._bytes += entry_cost(key, answer)
        self._evict()

    def resize(self, max_bytes: int) -> None:
        """A new bound (the setting changed); the least recently used go until the rest fit."""
        self.max_bytes = max_bytes
        self._evict()

    def _evict(self) -> None:
        while self._entries and (
            self._bytes > self.max_bytes
            or (self.max_entries is not None and len(self._entries) > self.max_entries)
        ):
            key, evicted = self._entries.popitem(last=False)
            self._bytes -= entry_cost(key, evicted)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """What the entries take, as counted against `max_bytes`."""
        return self._bytes


@dataclass(frozen=True)
class ShownCompletion:
    """The ghost text last answered for a document, and the document near the cursor when answered."""

    before: str
    """The document's text before the cursor: the end of it, up to the context window."""
    after: str
    """The document's text after the cursor: the start of it, up to the context window."""
    text: str
    """The candidate on screen (the first answered, until the editor says it shows another)."""
    before_length: int = -1
    """Where the cursor was (a code point offset); -1: `before` is all the text before it."""
    after_length: int = -1
    """How much text followed the cursor; -1: `after` is all of it."""
    alternatives: tuple[str, ...] = ()
    """The other candidates answered with `text`, in their order."""

    @classmethod
    def at(
        cls, text: str, offset: int, middle: str, window: int, alternatives: tuple[str, ...] = ()
    ) -> ShownCompletion:
        """What to remember of `text` with `middle` shown at `offset`: `window` characters each side
        (as the cache key sees; a prompt holds no more), so a huge document is not copied per request."""
        before, after = text[max(0, offset - window) : offset], text[offset : offset + window]
        return cls(before, after, middle, offset, len(text) - offset, alternatives)

    @property
    def candidates(self) -> tuple[str, ...]:
        return (self.text, *self.alternatives)

    def showing(self, on_screen: str) -> ShownCompletion | None:
        """This answer with `on_screen` as the candidate the editor shows, the others after it in their
        order; None when `on_screen` is none of them. An editor may still show an item of an earlier
        answer to the same suggestion, whose text also holds what the user has typed since: the
        candidate it ends with is the one on screen."""
        candidates = self.candidates
        chosen = next((c for c in candidates if c == on_screen), None)
        if chosen is None:
            chosen = next((c for c in candidates if c and on_screen.endswith(c)), None)
        if chosen is None:
            return None
        others = tuple(c for c in candidates if c != chosen)
        return replace(self, text=chosen, alternatives=others)


def typed_since(shown: ShownCompletion, text: str, offset: int) -> str | None:
    """What the user typed at the cursor since `shown` was answered, if nothing else changed near it
    ('' where the document and the cursor are as they were then)."""
    start = len(shown.before) if shown.before_length < 0 else shown.before_length
    after_length = len(shown.after) if shown.after_length < 0 else shown.after_length
    if offset < start or len(text) - offset != after_length:
        return None
    if text[offset : offset + len(shown.after)] != shown.after:
        return None
    if text[start - len(shown.before) : start] != shown.before:
        return None
    return text[start:offset]


def typed_through(shown: ShownCompletion, text: str, offset: int) -> str | None:
    """The rest of the shown ghost text, if the user has since typed its beginning and nothing else
    (near the cursor: edits farther away than what `shown` remembers are not seen)."""
    rests = typed_through_candidates(shown, text, offset)
    return rests[0] if rests else None


def typed_through_candidates(shown: ShownCompletion, text: str, offset: int) -> tuple[str, ...]:
    """The rests of the candidates the user's typing since `shown` agrees with: the one on screen first
    (none at all when its rest is empty or blank), then the others that begin with the same text."""
    typed = typed_since(shown, text, offset)
    if not typed or not shown.text.startswith(typed):
        return ()
    rests = [candidate[len(typed) :] for candidate in shown.candidates if candidate.startswith(typed)]
    rests = [rest for rest in rests if rest.strip()]
    if not rests or not shown.text[len(typed) :].strip():
        return ()
    return tuple(rests)
