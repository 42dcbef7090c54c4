"""Similar chunks by BM25 over blocks of rows.

Each file's text is cut into blocks of `BLOCK_ROWS` rows, and each block's identifiers go into an
inverted index: for every term, its postings, each a 32-bit number holding a block id and the term's
weight in that block, kept in flat arrays (see `postings`). The chunks a query finds are windows of two
neighbouring blocks, every `BLOCK_ROWS` rows, so they overlap and code that straddles a block boundary
is whole in one of them; a window's score is its two blocks' scores added up. Indexing blocks rather
than the overlapping windows halves the postings. Scoring walks only the query terms' postings (and
skips terms too common to say anything), so its cost follows the query, not the size of the workspace.

Block ids are handed out in increasing order, a file's blocks in one run followed by one unused id (so
no window spans two files), which keeps every posting array sorted and a file's postings in it one
slice: removing a file deletes a slice per term, found by bisection. Which file a block belongs to is
found by bisection over the runs' first ids.
"""

from __future__ import annotations

import bisect
import heapq
import logging
import math
from collections import Counter
from collections.abc import Iterable
from operator import itemgetter
from typing import NamedTuple

from fim_lsp.workspace import symbols
from fim_lsp.workspace.entry import BLOCK_ROWS, IndexedFile
from fim_lsp.workspace.postings import Postings

logger = logging.getLogger(__name__)

#: A query term found in more blocks than this is skipped: its weight is small, and walking its
#: postings would make a query's cost grow with the workspace.
MAX_SCANNED_POSTINGS = 1500
#: Postings a query walks at most, its rarest (most telling) terms first: a bound on its cost that
#: does not depend on the workspace's size.
MAX_QUERY_POSTINGS = 8000

# BM25 parameters; a block's length is normalised against a nominal average (blocks have a fixed number
# of rows, so their lengths vary little), which lets a posting carry its final weight.
_K1 = 1.2
_B = 0.75
_NOMINAL_BLOCK_TERMS = 30.0
_WEIGHT_BITS = 4
_WEIGHT_MAX = (1 << _WEIGHT_BITS) - 1
MAX_BLOCK_ID = (1 << (32 - _WEIGHT_BITS)) - 1
# Terms: identifiers lowercased, without the words every file has.
_STOP_TERMS = frozenset(word.lower() for word in symbols.KEYWORDS)
_KEY_MASK = (1 << 60) - 1


def terms_of(line: str) -> list[str]:
    """The BM25 terms of one line: its identifiers, lowercased, without keywords and one-letter names."""
    return [
        term for term in symbols.IDENTIFIER.findall(line.lower()) if len(term) > 1 and term not in _STOP_TERMS
    ]


def term_key(term: str) -> int:
    """The postings key of a term: its hash, cut to 60 bits.

    An int of up to 60 bits takes 32 bytes where the term's string takes about 60, and a workspace has
    hundreds of thousands of terms. Two terms that share a key (odds about 1 in 10^8 per pair of the
    terms in a large workspace) would only add a little noise to a similarity score.
    """
    return hash(term) & _KEY_MASK


def block_counts(lines: list[str]) -> list[Counter[str]]:
    """The term counts of each block of a file's rows."""
    blocks = []
    for first in range(0, len(lines), BLOCK_ROWS):
        counts: Counter[str] = Counter()
        for line in lines[first : first + BLOCK_ROWS]:
            counts.update(terms_of(line))
        blocks.append(counts)
    return blocks


def _weight(count: int, length: int) -> int:
    """A term's BM25 weight in a block, quantised to `_WEIGHT_BITS` bits (at least 1)."""
    norm = _K1 * (1 - _B + _B * length / _NOMINAL_BLOCK_TERMS)
    weight = count * (_K1 + 1) / (count + norm) / (_K1 + 1)
    return max(1, min(_WEIGHT_MAX, round(weight * _WEIGHT_MAX)))


class ChunkHit(NamedTuple):
    """A chunk similar to a query: its score, file and rows (inclusive, 0-based)."""

    score: float
    file: IndexedFile
    first: int
    last: int


class BlockIndex:
    """The postings of every file's blocks, and which file each block id belongs to. Not thread-safe:
    the workspace index calls it under its lock."""

    def __init__(self) -> None:
        self.postings = Postings()
        self._block_starts: list[int] = []
        self._block_owners: list[IndexedFile] = []
        self._next_block = 0
        self.live_blocks = 0
        """Blocks with at least one term, over all files."""

    def has_room_for(self, blocks: int) -> bool:
        """Whether a file of `blocks` blocks still gets ids below `MAX_BLOCK_ID` (see `renumber`)."""
        return self._next_block + blocks + 1 <= MAX_BLOCK_ID

    def place(self, entry: IndexedFile, blocks: list[Counter[str]]) -> None:
        """Give `entry` the next run of block ids and post its blocks' terms."""
        entry.first_block = self._next_block
        entry.block_count = len(blocks)
        self._next_block += entry.block_count + 1  # one unused id: no chunk spans two files
        self._block_starts.append(entry.first_block)
        self._block_owners.append(entry)
        add = self.postings.add
        entry.live_blocks = 0
        for number, counts in enumerate(blocks):
            if not counts:
                continue
            entry.live_blocks += 1
            block = (entry.first_block + number) << _WEIGHT_BITS
            length = sum(counts.values())
            for term, count in counts.items():
                add(term_key(term), block | _weight(count, length))
        self.live_blocks += entry.live_blocks

    def remove(self, entry: IndexedFile) -> None:
        """Take `entry`'s postings and block ids out."""
        low = entry.first_block << _WEIGHT_BITS
        high = (entry.first_block + entry.block_count) << _WEIGHT_BITS
        for key in {term_key(term) for term in terms_of(entry.text())}:
            self.postings.remove_range(key, low, high)
        self.live_blocks -= entry.live_blocks
        index = bisect.bisect_left(self._block_starts, entry.first_block)
        if index < len(self._block_owners) and self._block_owners[index] is entry:
            del self._block_starts[index]
            del self._block_owners[index]

    def renumber(self, entries: Iterable[IndexedFile]) -> None:
        """Give every block a new id from 0; needed after ~250 million ids."""
        logger.info("workspace: renumbering the index's blocks")
        entries = list(entries)
        self.postings.clear()
        self._block_starts.clear()
        self._block_owners.clear()
        self._next_block = self.live_blocks = 0
        for entry in entries:
            self.place(entry, block_counts(entry.lines()))

    def _query_terms(self, terms: Iterable[str]) -> list[tuple[int, str, int]]:
        """(postings, term, key) of the query terms worth walking, rarest first, within the walk's bound."""
        weighted = []
        for term in set(terms):
            key = term_key(term)
            count = self.postings.count(key)
            if 0 < count <= MAX_SCANNED_POSTINGS:
                weighted.append((count, term, key))
        weighted.sort()  # rarest first, and a fixed order: equal queries add up equal sums
        walked = 0
        for number, (count, _term, _key) in enumerate(weighted):
            walked += count
            if walked > MAX_QUERY_POSTINGS:
                del weighted[number:]
                break
        return weighted

    def block_scores(self, terms: Iterable[str], excluded: IndexedFile | None) -> dict[int, float]:
        """Each block's BM25 score for the query, without the blocks of `excluded`."""
        total = max(1, self.live_blocks)
        scores: dict[int, float] = {}
        get = scores.get
        for count, _term, key in self._query_terms(terms):
            idf = math.log(1 + (total - count + 0.5) / (count + 0.5))
            for posting in self.postings.get(key):
                block = posting >> _WEIGHT_BITS
                scores[block] = get(block, 0.0) + idf * (posting & _WEIGHT_MAX)
        if excluded is not None:
            # The excluded file is the most similar to a query taken from it: drop its blocks.
            for block in range(excluded.first_block, excluded.first_block + excluded.block_count):
                scores.pop(block, None)
        return scores

    def similar_chunks(
        self, terms: Iterable[str], excluded: IndexedFile | None, exclude: str | None, limit: int
    ) -> list[ChunkHit]:
        """Up to twice `limit` chunks, best first, that do not overlap and are not in file `exclude`."""
        scores = self.block_scores(terms, excluded)
        get = scores.get
        # A chunk is two blocks, so the best chunks hold the best blocks: rank the blocks (in C), then
        # score the two chunks each top block is in (the one starting at it, and at the one before). The
        # unused id after each file keeps a chunk inside one file.
        top = heapq.nlargest(8 * limit, scores.items(), key=itemgetter(1))
        chunks: dict[int, float] = {}
        for block, _score in top:
            for start in (block - 1, block):
                if start not in chunks:
                    chunks[start] = get(start, 0.0) + get(start + 1, 0.0)
        ranked = sorted(chunks.items(), key=lambda item: (-item[1], item[0]))
        found: list[ChunkHit] = []
        taken: set[int] = set()
        for start, score in ranked:
            if start < 0 or start - 1 in taken or start + 1 in taken:
                continue
            owner = self._block_owners[bisect.bisect_right(self._block_starts, start) - 1]
            if owner.path == exclude or start >= owner.first_block + owner.block_count:
                continue
            taken.add(start)
            first, last = owner.chunk_rows(start - owner.first_block)
            found.append(ChunkHit(score / _WEIGHT_MAX, owner, first, last))
            if len(found) >= limit * 2:
                break
        return found
