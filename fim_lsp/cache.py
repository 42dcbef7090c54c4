"""Answers that cost no model time: the completion cache and typed-through reuse.

- The completion cache maps what the prompt would be made of (the text around the cursor, the language
  and the settings that shape generation) to the answer, with an LRU bound on entries and on characters,
  so undo, moving back and forth and re-triggers cost nothing.
- Typed-through reuse: when the user types the characters the ghost text on screen begins with, the
  rest of that ghost text is still the answer.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from fim_lsp.config import Settings


def context_window(settings: Settings) -> int:
    """Characters each side of the cursor that can reach a prompt: generously 8 per budgeted token."""
    return settings.context_budget * 8


def cache_key(text: str, offset: int, language_id: str | None, settings: Settings) -> str:
    """A digest of everything that decides the answer: the text near the cursor and the settings."""
    window = context_window(settings)
    digest = hashlib.blake2b(digest_size=16)
    shaping = (
        settings.model,
        settings.engine,
        settings.context_budget,
        settings.suffix_share,
        settings.max_new_tokens,
        settings.fim_order,
        language_id,
    )
    digest.update(repr(shaping).encode())
    digest.update(b"\0prefix\0")
    digest.update(text[max(0, offset - window) : offset].encode("utf-8", "surrogatepass"))
    digest.update(b"\0suffix\0")
    digest.update(text[offset : offset + window].encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class CompletionCache:
    """Least-recently-used answers, bounded by count and by total characters."""

    def __init__(self, max_entries: int = 256, max_chars: int = 256 * 1024) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._entries: OrderedDict[str, str] = OrderedDict()
        self._chars = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> str | None:
        answer = self._entries.get(key)
        if answer is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return answer

    def put(self, key: str, answer: str) -> None:
        if len(answer) > self.max_chars:
            return
        previous = self._entries.pop(key, None)
        if previous is not None:
            self._chars -= len(previous)
        self._entries[key] = answer
        self._chars += len(answer)
        while len(self._entries) > self.max_entries or self._chars > self.max_chars:
            _, evicted = self._entries.popitem(last=False)
            self._chars -= len(evicted)

    def clear(self) -> None:
        self._entries.clear()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def chars(self) -> int:
        return self._chars


@dataclass(frozen=True)
class ShownCompletion:
    """The ghost text last answered for a document, and the document around it when answered."""

    before: str
    """The document's text before the cursor."""
    after: str
    """The document's text after the cursor."""
    text: str


def typed_through(shown: ShownCompletion, text: str, offset: int) -> str | None:
    """The rest of the shown ghost text, if the user has since typed its beginning and nothing else."""
    if offset < len(shown.before) or text[offset:] != shown.after:
        return None
    if not text.startswith(shown.before):
        return None
    typed = text[len(shown.before) : offset]
    if not typed or not shown.text.startswith(typed):
        return None
    rest = shown.text[len(typed) :]
    return rest if rest.strip() else None
