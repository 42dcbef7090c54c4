"""The inverted index's storage: term key -> sorted postings, in flat arrays rather than objects.

A workspace of a few thousand files has a few hundred thousand distinct terms, most of them in one
block. A dict of per-term arrays costs over 100 bytes a term in Python objects; here the terms are
spread over `BUCKETS` buckets by key, and each bucket holds three flat arrays: its keys (sorted), the end
offset of each key's postings, and the postings themselves. That is 12 bytes a term and 4 a posting.

Additions go to a small pending dict first and are merged into the buckets in bulk (one pass over the
buckets) once the pending part grows past a quarter of the whole (`needs_merge`), so adding is cheap
and merging costs a few passes in all. Postings of one key only ever grow (block ids increase), so a
key's pending postings follow its merged ones in order.

A merge of a large index takes a good part of a second, so it is done in two steps: `prepare_merge`
builds the new buckets reading, never changing, what is there (queries can go on meanwhile), and
`commit_merge` swaps them in. Nothing may change the postings between the two.

Not thread-safe: the index calls it under its locks (see `WorkspaceIndex`).
"""

from __future__ import annotations

import bisect
from array import array

#: Buckets of terms; a power of two (a key's bucket is its low bits).
BUCKETS = 4096
#: Pending postings merged at least at this count (else at a quarter of the merged ones).
MIN_MERGE = 1 << 16


class _Bucket:
    __slots__ = ("ends", "keys", "posts")

    def __init__(self) -> None:
        self.keys = array("Q")
        self.ends = array("I")
        self.posts = array("I")

    def span(self, index: int) -> tuple[int, int]:
        return (self.ends[index - 1] if index else 0), self.ends[index]


class Postings:
    """Sorted postings (unsigned 32-bit ints) per term key (unsigned 64-bit ints)."""

    def __init__(self) -> None:
        self._buckets: list[_Bucket | None] = [None] * BUCKETS
        self._pending: dict[int, list[int]] = {}
        self._pending_count = 0
        self._merged_count = 0

    def clear(self) -> None:
        self._buckets = [None] * BUCKETS
        self._pending.clear()
        self._pending_count = self._merged_count = 0

    def add(self, key: int, posting: int) -> None:
        """Append `posting` to `key`'s postings; it must be greater than every posting `key` has."""
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = [posting]
        else:
            pending.append(posting)
        self._pending_count += 1

    def needs_merge(self) -> bool:
        """Whether the pending part has grown enough to be merged."""
        return self._pending_count > max(MIN_MERGE, self._merged_count // 4)

    def get(self, key: int) -> list[int] | array[int]:
        """`key`'s postings in increasing order (a copy; empty when it has none)."""
        merged: array[int] | None = None
        bucket = self._buckets[key & (BUCKETS - 1)]
        if bucket is not None:
            index = bisect.bisect_left(bucket.keys, key)
            if index < len(bucket.keys) and bucket.keys[index] == key:
                start, end = bucket.span(index)
                merged = bucket.posts[start:end]
        pending = self._pending.get(key)
        if merged is None:
            return list(pending) if pending else []
        if pending:
            merged.extend(pending)
        return merged

    def count(self, key: int) -> int:
        """How many postings `key` has (its document frequency)."""
        total = len(self._pending.get(key, ()))
        bucket = self._buckets[key & (BUCKETS - 1)]
        if bucket is not None:
            index = bisect.bisect_left(bucket.keys, key)
            if index < len(bucket.keys) and bucket.keys[index] == key:
                start, end = bucket.span(index)
                total += end - start
        return total

    def remove_range(self, key: int, low: int, high: int) -> None:
        """Drop `key`'s postings p with low <= p < high."""
        pending = self._pending.get(key)
        if pending:
            kept = [posting for posting in pending if not low <= posting < high]
            self._pending_count -= len(pending) - len(kept)
            if kept:
                self._pending[key] = kept
            else:
                del self._pending[key]
        bucket = self._buckets[key & (BUCKETS - 1)]
        if bucket is None:
            return
        index = bisect.bisect_left(bucket.keys, key)
        if index == len(bucket.keys) or bucket.keys[index] != key:
            return
        start, end = bucket.span(index)
        first = bisect.bisect_left(bucket.posts, low, start, end)
        last = bisect.bisect_left(bucket.posts, high, first, end)
        removed = last - first
        if not removed:
            return
        del bucket.posts[first:last]
        ends = bucket.ends
        for position in range(index, len(ends)):
            ends[position] -= removed
        self._merged_count -= removed
        # A key left with no postings stays until its bucket is next merged.

    def merge(self) -> None:
        """Fold the pending postings into the buckets."""
        self.commit_merge(self.prepare_merge())

    def prepare_merge(self) -> list[tuple[int, _Bucket]]:
        """The buckets the pending postings change, merged: built without changing anything."""
        by_bucket: dict[int, list[int]] = {}
        for key in self._pending:
            by_bucket.setdefault(key & (BUCKETS - 1), []).append(key)
        merged = []
        for number, keys in by_bucket.items():
            keys.sort()
            merged.append((number, self._merged_bucket(self._buckets[number], keys)))
        return merged

    def commit_merge(self, merged: list[tuple[int, _Bucket]]) -> None:
        """Swap in buckets from `prepare_merge` (nothing may have changed since)."""
        for number, bucket in merged:
            self._buckets[number] = bucket
        self._merged_count += self._pending_count
        self._pending.clear()
        self._pending_count = 0

    def _merged_bucket(self, old: _Bucket | None, added: list[int]) -> _Bucket:
        new = _Bucket()
        keys, ends, posts = new.keys, new.ends, new.posts
        position = 0
        old_keys = old.keys if old is not None else array("Q")
        for key in [*added, None]:
            # Copy the old keys before `key` (all of them at the end), dropping the empty ones.
            stop = len(old_keys) if key is None else bisect.bisect_left(old_keys, key, position)
            if old is not None:
                for index in range(position, stop):
                    start, end = old.span(index)
                    if end > start:
                        posts.extend(old.posts[start:end])
                        keys.append(old_keys[index])
                        ends.append(len(posts))
            if key is None:
                break
            position = stop
            if position < len(old_keys) and old_keys[position] == key and old is not None:
                start, end = old.span(position)
                posts.extend(old.posts[start:end])
                position += 1
            posts.extend(self._pending[key])
            keys.append(key)
            ends.append(len(posts))
        return new

    def terms(self) -> int:
        """Keys that have postings."""
        merged = 0
        for bucket in self._buckets:
            if bucket is not None:
                previous = 0
                for end in bucket.ends:
                    merged += end > previous
                    previous = end
        return merged + sum(1 for key in self._pending if self.count(key) == len(self._pending[key]))

    def __len__(self) -> int:
        """Postings held."""
        return self._merged_count + self._pending_count

    def approx_bytes(self) -> int:
        merged = sum(
            len(b.keys) * 8 + len(b.ends) * 4 + len(b.posts) * 4 + 250 for b in self._buckets if b is not None
        )
        return merged + len(self._pending) * 120 + self._pending_count * 8
