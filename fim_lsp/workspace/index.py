"""The workspace index: every source file's definitions and chunks, kept current, in compact form.

Per file the index keeps its definitions (tree-sitter, see `symbols`) and its text, compressed: snippets
are cut from it when a prompt wants one, so the text is held once.

For similarity search the text is cut into blocks of `BLOCK_ROWS` rows, and each block's identifiers go
into an inverted index for BM25: for every term, its postings, each a 32-bit number holding a block id
and the term's weight in that block, kept in flat arrays (see `postings`). The chunks a query finds
are windows of two neighbouring blocks, every `BLOCK_ROWS` rows, so they overlap and code that
straddles a block boundary is whole in one of them; a window's score is its two blocks' scores added
up. Indexing blocks rather than the overlapping windows halves the postings. Scoring walks only the
query terms' postings (and skips terms too common to say anything), so its cost follows the query,
not the size of the workspace.

Block ids are handed out in increasing order, a file's blocks in one run followed by one unused id (so
no window spans two files), which keeps every posting array sorted and a file's postings in it one
slice: removing a file deletes a slice per term, found by bisection. Which file a block belongs to is
found by bisection over the runs' first ids.

Open editor buffers override the disk: `set_buffer` only stores the text and marks the file stale
(it runs on every keystroke), and `refresh` re-indexes stale files when they are needed, which is when
another file is completed (a file's own chunks are never its own snippets).

Threads: the build runs on a background thread, the file watcher on its own, buffers arrive from the
server and queries from the completion worker. Writers take `_write_lock` for one file at a time
(reading and parsing happen under it, outside the data lock), and everyone takes `_lock` for the short
moments the data structures are read or changed, so a query waits for at most one file's install.
"""

from __future__ import annotations

import bisect
import heapq
import logging
import math
import os
import sys
import threading
import time
import zlib
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import NamedTuple

from fim_lsp.exclusions import Exclusions
from fim_lsp.syntax import language_of
from fim_lsp.workspace import symbols
from fim_lsp.workspace.files import IndexLimits, SkippedFile, SourceFilter, is_source_name, read_source
from fim_lsp.workspace.postings import Postings
from fim_lsp.workspace.symbols import Definition

logger = logging.getLogger(__name__)

#: Rows in one block (the unit of the postings); a chunk found by similarity is two neighbouring blocks.
BLOCK_ROWS = 8
CHUNK_BLOCKS = 2
CHUNK_ROWS = BLOCK_ROWS * CHUNK_BLOCKS
#: A query term found in more blocks than this is skipped: its weight is small, and walking its
#: postings would make a query's cost grow with the workspace.
MAX_SCANNED_POSTINGS = 1500
#: Postings a query walks at most, its rarest (most telling) terms first: a bound on its cost that
#: does not depend on the workspace's size.
MAX_QUERY_POSTINGS = 8000
#: Recently edited or visited ranges remembered, over all files.
RECENT_RANGES = 16
#: Rows either side of an edited row that count as its range, and the most rows one range may span.
RECENT_RADIUS = 4
RECENT_MAX_ROWS = 24

# BM25 parameters; a block's length is normalised against a nominal average (blocks have a fixed number
# of rows, so their lengths vary little), which lets a posting carry its final weight.
_K1 = 1.2
_B = 0.75
_NOMINAL_BLOCK_TERMS = 30.0
_WEIGHT_BITS = 4
_WEIGHT_MAX = (1 << _WEIGHT_BITS) - 1
_MAX_BLOCK_ID = (1 << (32 - _WEIGHT_BITS)) - 1
_KINDS = ("function", "method", "class", "struct", "interface", "type", "enum", "constant", "macro", "module")
_KIND_INDEX = {kind: index for index, kind in enumerate(_KINDS)}
# Terms: identifiers lowercased, without the words every file has.
_STOP_TERMS = frozenset(word.lower() for word in symbols.KEYWORDS)
_PROGRESS_INTERVAL = 0.2
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


class IndexedFile:
    """One file in the index: where it is, its definitions, its blocks' id run, its text (compressed)."""

    __slots__ = (
        "_compressed",
        "_text",
        "block_count",
        "def_names",
        "def_rows",
        "first_block",
        "language",
        "live_blocks",
        "path",
        "relative",
        "row_count",
        "size",
        "stamp",
    )

    def __init__(self, path: str, relative: str, language: str | None) -> None:
        self.path = path
        self.relative = relative
        """The path shown to the model: relative to its workspace folder."""
        self.language = language
        self.stamp: tuple[int, int] | None = None
        """(mtime_ns, size) of the disk file indexed; None for an open buffer's text."""
        self.size = 0
        self._text: str | None = None
        self._compressed = b""
        self.def_names: tuple[str, ...] = ()
        self.def_rows = array("I")
        self.first_block = 0
        self.block_count = 0
        self.live_blocks = 0
        """Blocks with at least one term (the others have no postings)."""
        self.row_count = 0

    def set_text(self, text: str, keep_plain: bool) -> None:
        # Disk files are many and read rarely: compressed they take a quarter of the memory, and
        # decompressing one for a snippet costs tens of microseconds. Open buffers are few: kept plain.
        if keep_plain:
            self._text, self._compressed = text, b""
        else:
            self._text, self._compressed = None, zlib.compress(text.encode("utf-8"), 6)

    def text(self) -> str:
        return self._text if self._text is not None else zlib.decompress(self._compressed).decode("utf-8")

    def lines(self) -> list[str]:
        """The rows of the file, without their line breaks."""
        return self.text().split("\n")

    def stored_bytes(self) -> int:
        return len(self._compressed) + (len(self._text) if self._text is not None else 0)

    def definitions(self, name: str | None = None) -> list[Definition]:
        """The file's definitions (only those of `name` when given), in document order."""
        rows = self.def_rows
        return [
            Definition(defined, _KINDS[rows[4 * i + 3]], rows[4 * i], rows[4 * i + 1], rows[4 * i + 2])
            for i, defined in enumerate(self.def_names)
            if name is None or defined == name
        ]

    def chunk_rows(self, block: int) -> tuple[int, int]:
        """First and last row (inclusive) of the chunk that starts at this file's block `block`."""
        first = block * BLOCK_ROWS
        return first, min(first + CHUNK_ROWS, self.row_count) - 1


def _owners(value: IndexedFile | list[IndexedFile] | None) -> list[IndexedFile]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


class ChunkHit(NamedTuple):
    """A chunk similar to a query: its score, file and rows (inclusive, 0-based)."""

    score: float
    file: IndexedFile
    first: int
    last: int


@dataclass(frozen=True)
class RecentRange:
    """Rows of a file the user edited or visited lately (inclusive, 0-based)."""

    path: str
    first: int
    last: int


@dataclass(frozen=True)
class IndexStats:
    """What the index holds, for logs and benchmarks."""

    files: int
    blocks: int
    definitions: int
    terms: int
    postings: int
    approx_bytes: int
    """An estimate of the memory held (texts, postings, definitions); the benchmark measures it."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Files left out in the last build, by reason."""
    building: bool = False


@dataclass
class _Analysis:
    """What indexing one file's text produces, before it is installed (computed outside the lock)."""

    definitions: list[Definition]
    blocks: list[Counter[str]]
    row_count: int


def block_counts(lines: list[str]) -> list[Counter[str]]:
    """The term counts of each block of a file's rows."""
    blocks = []
    for first in range(0, len(lines), BLOCK_ROWS):
        counts: Counter[str] = Counter()
        for line in lines[first : first + BLOCK_ROWS]:
            counts.update(terms_of(line))
        blocks.append(counts)
    return blocks


def analyse(text: str, language: str | None) -> _Analysis:
    """Definitions and block term counts of `text` (a whole file of grammar `language`)."""
    lines = text.split("\n")
    return _Analysis(symbols.definitions(text, language), block_counts(lines), len(lines))


def _weight(count: int, length: int) -> int:
    """A term's BM25 weight in a block, quantised to `_WEIGHT_BITS` bits (at least 1)."""
    norm = _K1 * (1 - _B + _B * length / _NOMINAL_BLOCK_TERMS)
    weight = count * (_K1 + 1) / (count + norm) / (_K1 + 1)
    return max(1, min(_WEIGHT_MAX, round(weight * _WEIGHT_MAX)))


@lru_cache(maxsize=4096)
def _real_directory(directory: str) -> str:
    return os.path.realpath(directory)


def normalize_path(path: str) -> str:
    """The absolute path the index keys a file by: its folder's real path, then its name."""
    path = os.path.abspath(path)
    return os.path.join(_real_directory(os.path.dirname(path)), os.path.basename(path))


class WorkspaceIndex:
    """The index of a workspace's folders and open buffers. Thread-safe; see the module docstring."""

    def __init__(self, limits: IndexLimits | None = None, exclusions: Exclusions | None = None) -> None:
        self.limits = limits or IndexLimits()
        #: Files never read nor overlaid, whatever `.gitignore` says (the `exclude` setting).
        self.exclusions = exclusions or Exclusions()
        self._lock = threading.RLock()
        self._write_lock = threading.RLock()
        self._roots: dict[str, SourceFilter] = {}
        self._files: dict[str, IndexedFile] = {}
        self._postings = Postings()
        self._block_starts: list[int] = []
        self._block_owners: list[IndexedFile] = []
        self._next_block = 0
        self._live_blocks = 0
        self._defined: dict[str, IndexedFile | list[IndexedFile]] = {}
        self._definition_count = 0
        self._disk_bytes = 0
        self._buffers: dict[str, str] = {}
        self._stale: set[str] = set()
        self._recent: deque[RecentRange] = deque(maxlen=RECENT_RANGES)
        self._version = 0
        self._changes: deque[tuple[int, str]] = deque(maxlen=256)
        self._skipped: Counter[str] = Counter()
        self._building = False
        self._over_cap_logged = False

    # ----------------------------------------------------------------------------------------------
    # Folders and the build
    # ----------------------------------------------------------------------------------------------

    def add_folder(self, root: str | os.PathLike[str]) -> str:
        """Register a workspace folder (indexed by the next `build`); returns its real path."""
        source_filter = SourceFilter(root, self.exclusions)
        with self._lock:
            self._roots.setdefault(source_filter.root, source_filter)
            self._relabel()
        return source_filter.root

    def remove_folder(self, root: str | os.PathLike[str]) -> None:
        """Forget a workspace folder and its files (open buffers stay)."""
        real = os.path.realpath(root)
        with self._write_lock, self._lock:
            self._roots.pop(real, None)
            for path in [p for p in self._files if p.startswith(real + os.sep)]:
                if path not in self._buffers:
                    self._remove(path)
            self._relabel()

    def _relabel(self) -> None:
        """Name every file again after the folders changed (a second folder prefixes names)."""
        for entry in self._files.values():
            entry.relative = self.relative_path(entry.path)

    @property
    def roots(self) -> list[str]:
        with self._lock:
            return list(self._roots)

    def source_filter(self, path: str) -> SourceFilter | None:
        """The filter of the workspace folder that holds `path`, or None when no folder does."""
        with self._lock:
            best = None
            for root, source_filter in self._roots.items():
                if path.startswith(root + os.sep) and (best is None or len(root) > len(best.root)):
                    best = source_filter
            return best

    def relative_path(self, path: str) -> str:
        """How `path` is named in a prompt: relative to its folder (prefixed by the folder's name when
        there are several folders); a path outside every folder stays absolute."""
        path = normalize_path(path)
        source_filter = self.source_filter(path)
        if source_filter is None:
            return path
        relative = os.path.relpath(path, source_filter.root).replace(os.sep, "/")
        with self._lock:
            several = len(self._roots) > 1
        return f"{os.path.basename(source_filter.root)}/{relative}" if several else relative

    def build(
        self,
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> None:
        """Index every folder's source files; after the first build only what changed is read again.

        `progress(done, total)` is called from this thread a few times a second and once at the end;
        `cancel()` is polled between files. Files no longer present are dropped. Never raises for a
        bad file: each one is skipped with a log line.
        """
        started = time.perf_counter()
        with self._lock:
            self._building = True
            self._skipped.clear()
            self._over_cap_logged = False
            roots = list(self._roots.values())
        try:
            listed: dict[str, tuple[SourceFilter, os.stat_result]] = {}
            for source_filter in roots:
                for path, info in source_filter.walk():
                    if len(listed) >= self.limits.max_files:
                        logger.info(
                            "workspace: the %d-file cap is reached; the rest of %s is not indexed",
                            self.limits.max_files,
                            source_filter.root,
                        )
                        break
                    listed.setdefault(path, (source_filter, info))
            with self._write_lock, self._lock:
                root_paths = [source_filter.root + os.sep for source_filter in roots]
                for path in list(self._files):
                    in_roots = any(path.startswith(root) for root in root_paths)
                    if in_roots and path not in listed and path not in self._buffers:
                        self._remove(path)
            total = len(listed)
            last_report = 0.0
            for done, (path, (_filter, info)) in enumerate(listed.items(), start=1):
                if cancel is not None and cancel():
                    logger.info("workspace: build cancelled after %d of %d files", done - 1, total)
                    return
                self._index_disk_file(path, (info.st_mtime_ns, info.st_size))
                now = time.perf_counter()
                if progress is not None and (now - last_report >= _PROGRESS_INTERVAL or done == total):
                    last_report = now
                    progress(done, total)
            if progress is not None and total == 0:
                progress(0, 0)
            with self._write_lock:
                self._merge_postings()
            stats = self.stats()
            skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(stats.skipped.items()))
            logger.info(
                "workspace: indexed %d files (%d definitions, %d blocks) in %.1f s%s",
                stats.files,
                stats.definitions,
                stats.blocks,
                time.perf_counter() - started,
                f"; skipped {skipped}" if skipped else "",
            )
        finally:
            with self._lock:
                self._building = False

    def build_in_background(
        self,
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        done: Callable[[], None] | None = None,
    ) -> threading.Thread:
        """Run `build` on a daemon thread (started here); `done()` is called when it ends."""

        def run() -> None:
            try:
                self.build(progress, cancel)
            except Exception:  # a bug must not kill the server: log it, keep what was indexed
                logger.exception("workspace: the index build failed")
            finally:
                if done is not None:
                    done()

        thread = threading.Thread(target=run, name="fim-lsp-workspace-index", daemon=True)
        thread.start()
        return thread

    # ----------------------------------------------------------------------------------------------
    # Single files: disk and buffers
    # ----------------------------------------------------------------------------------------------

    def update_file(self, path: str) -> None:
        """Index `path` again from the disk (its open buffer, when it has one), or drop it when it is
        gone or no longer wanted. For the file watcher and `didSave`."""
        path = normalize_path(path)
        with self._lock:
            buffered = path in self._buffers
        if buffered:
            self._refresh_one(path)
            return
        source_filter = self.source_filter(path)
        if source_filter is None or not source_filter.wanted(path) or os.path.islink(path):
            self.remove_file(path)
            return
        try:
            info = os.stat(path)
        except OSError:
            self.remove_file(path)
            return
        self._index_disk_file(path, (info.st_mtime_ns, info.st_size))

    def remove_file(self, path: str) -> None:
        """Drop `path` from the index (an open buffer of it stays indexed)."""
        path = normalize_path(path)
        with self._write_lock, self._lock:
            if path not in self._buffers:
                self._remove(path)

    def remove_tree(self, directory: str) -> None:
        """Drop every file under `directory` (a folder deleted or moved away)."""
        prefix = normalize_path(directory) + os.sep
        with self._write_lock, self._lock:
            for path in [p for p in self._files if p.startswith(prefix)]:
                if path not in self._buffers:
                    self._remove(path)

    def scan_tree(self, directory: str) -> None:
        """Index what is new or changed under `directory` (a folder created or moved in)."""
        directory = normalize_path(directory)
        source_filter = self.source_filter(directory + os.sep + "x")
        if source_filter is None:
            return
        for path, info in source_filter.walk(directory):
            self._index_disk_file(path, (info.st_mtime_ns, info.st_size))

    def set_buffer(self, path: str, text: str) -> None:
        """The text of an open editor buffer, which overrides the disk until `close_buffer`.

        Cheap (called on every change): the file is only marked stale; `refresh` indexes it.
        """
        path = normalize_path(path)
        source_filter = self.source_filter(path)
        if self.exclusions.excludes(path, source_filter.root if source_filter else None):
            return
        with self._lock:
            if self._buffers.get(path) == text:
                return
            self._buffers[path] = text
            self._stale.add(path)

    def close_buffer(self, path: str) -> None:
        """The buffer was closed: the file is indexed from the disk again (at the next `refresh`)."""
        path = normalize_path(path)
        with self._lock:
            if self._buffers.pop(path, None) is not None:
                self._stale.add(path)

    def refresh(self, exclude: str | None = None) -> None:
        """Index the stale files (changed buffers, closed buffers) except `exclude`."""
        exclude = normalize_path(exclude) if exclude else None
        with self._lock:
            stale = sorted(path for path in self._stale if path != exclude)
        for path in stale:
            self._refresh_one(path)

    def _refresh_one(self, path: str) -> None:
        with self._write_lock:
            with self._lock:
                self._stale.discard(path)
                text = self._buffers.get(path)
            if text is None:
                self.update_file(path)
                return
            language = language_of(None, path)
            source_filter = self.source_filter(path)
            if language is None or len(text) > self.limits.max_file_bytes:
                return
            if source_filter is not None and not source_filter.wanted(path):
                return  # an open file in an ignored or vendored folder is not the workspace's source
            self._install(path, text, language, stamp=None, analysis=self._analyse(path, text, language))

    def note_edit(self, path: str, row: int) -> None:
        """The user edited (or visited) row `row` of `path`: remember the rows around it for a while."""
        path = normalize_path(path)
        with self._lock:
            for index in range(len(self._recent) - 1, -1, -1):
                recent = self._recent[index]
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
                    del self._recent[index]
                    self._recent.append(RecentRange(path, max(0, first), last))
                    break
            else:
                self._recent.append(RecentRange(path, max(0, row - RECENT_RADIUS), row + RECENT_RADIUS))
            # Other files' snippets include this range now: answers remembered for them are stale.
            self._changed(path)

    def recent_ranges(self) -> list[RecentRange]:
        """The ranges edited or visited lately, newest first."""
        with self._lock:
            return list(reversed(self._recent))

    # ----------------------------------------------------------------------------------------------
    # Queries
    # ----------------------------------------------------------------------------------------------

    @property
    def building(self) -> bool:
        """Whether a build is under way."""
        with self._lock:
            return self._building

    @property
    def version(self) -> int:
        """A number that grows with every change to what the index holds."""
        with self._lock:
            return self._version

    def version_of_others(self, path: str) -> int:
        """The index's version as of the last change to a file other than `path` (the version itself
        when the changes it remembers are all of `path` and it cannot tell how old they are)."""
        path = normalize_path(path)
        with self._lock:
            for version, changed in reversed(self._changes):
                if changed != path:
                    return version
            return 0 if len(self._changes) < (self._changes.maxlen or 0) else self._version

    def changed_since(self, version: int) -> set[str] | None:
        """The files changed after `version`, or None when that is too long ago to tell."""
        with self._lock:
            if version == self._version:
                return set()
            if not self._changes or self._changes[0][0] > version + 1:
                return None
            return {path for changed, path in self._changes if changed > version}

    def paths(self) -> list[str]:
        """The paths of every indexed file (disk files and open buffers), sorted."""
        with self._lock:
            return sorted(self._files)

    def get(self, path: str) -> IndexedFile | None:
        with self._lock:
            return self._files.get(normalize_path(path))

    def lookup(
        self, name: str, files: Iterable[IndexedFile] | None = None
    ) -> list[tuple[IndexedFile, Definition]]:
        """Every definition of `name` with its file: in path order, or only in `files`, in their order."""
        if files is None:
            files = sorted(self.defining_files(name), key=lambda entry: entry.path)
        return [(entry, d) for entry in files for d in entry.definitions(name)]

    def defining_files(self, name: str) -> list[IndexedFile]:
        """The files that define `name` (cheap: no definition is unpacked)."""
        with self._lock:
            return _owners(self._defined.get(name))

    def similar_chunks(
        self, terms: Iterable[str], exclude: str | None = None, limit: int = 8
    ) -> list[ChunkHit]:
        """The `limit` chunks that score best by BM25 for query `terms` (lowercased identifiers,
        repeats ignored), outside file `exclude`, best first; two chunks that overlap are not both
        returned. Ties are broken by path and row, so that equal queries give equal answers."""
        exclude = normalize_path(exclude) if exclude else None
        with self._lock:
            total = max(1, self._live_blocks)
            weighted = []
            for term in set(terms):
                key = term_key(term)
                count = self._postings.count(key)
                if 0 < count <= MAX_SCANNED_POSTINGS:
                    weighted.append((count, term, key))
            weighted.sort()  # rarest first, and a fixed order: equal queries add up equal sums
            walked = 0
            for number, (count, _term, _key) in enumerate(weighted):
                walked += count
                if walked > MAX_QUERY_POSTINGS:
                    del weighted[number:]
                    break
            scores: dict[int, float] = {}
            get = scores.get
            for count, _term, key in weighted:
                idf = math.log(1 + (total - count + 0.5) / (count + 0.5))
                for posting in self._postings.get(key):
                    block = posting >> _WEIGHT_BITS
                    scores[block] = get(block, 0.0) + idf * (posting & _WEIGHT_MAX)
            excluded = self._files.get(exclude) if exclude else None
            if excluded is not None:
                # The excluded file is the most similar to a query taken from it: drop its blocks.
                for block in range(excluded.first_block, excluded.first_block + excluded.block_count):
                    scores.pop(block, None)
            # A chunk is two blocks, so the best chunks hold the best blocks: rank the blocks (in C),
            # then score the two chunks each top block is in (the one starting at it, and at the one
            # before). The unused id after each file keeps a chunk inside one file.
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
        # Block ids follow indexing order, which changes as files change: order ties by path instead.
        found.sort(key=lambda hit: (-round(hit.score, 9), hit.file.path, hit.first))
        return found[:limit]

    def stats(self) -> IndexStats:
        with self._lock:
            stored = sum(entry.stored_bytes() for entry in self._files.values())
            approx = (
                stored
                + self._postings.approx_bytes()
                + self._definition_count * 40  # name reference, four row numbers
                + len(self._defined) * 90  # name-map slot, name
                + len(self._files) * 400
            )
            return IndexStats(
                files=len(self._files),
                blocks=self._live_blocks,
                definitions=self._definition_count,
                terms=self._postings.terms(),
                postings=len(self._postings),
                approx_bytes=approx,
                skipped=dict(self._skipped),
                building=self._building,
            )

    # ----------------------------------------------------------------------------------------------
    # Internals
    # ----------------------------------------------------------------------------------------------

    def _skip(self, path: str, kind: str, reason: str) -> None:
        logger.debug("workspace: skipped %s: %s", path, reason)
        with self._lock:
            self._skipped[kind] += 1

    def _index_disk_file(self, path: str, stamp: tuple[int, int]) -> None:
        """Read, analyse and install one wanted file from the disk, unless it is unchanged or open in a
        buffer (the caller has checked it is wanted)."""
        with self._write_lock:
            with self._lock:
                current = self._files.get(path)
                if path in self._buffers or (current is not None and current.stamp == stamp):
                    return
                growth = stamp[1] - (current.size if current is not None else 0)
                over_cap = self._disk_bytes + growth > self.limits.max_total_bytes
            if over_cap:
                if not self._over_cap_logged:
                    self._over_cap_logged = True
                    logger.info(
                        "workspace: the %.1f MiB cap on all files is reached; further files are not indexed",
                        self.limits.max_total_bytes / 2**20,
                    )
                self._skip(path, "over the total cap", "over the cap on all files")
                return
            language = language_of(None, path)
            try:
                text = read_source(path, self.limits.max_file_bytes)
            except SkippedFile as skipped:
                self._skip(path, skipped.kind, skipped.reason)
                with self._lock:
                    self._remove(path)
                return
            try:
                analysis = self._analyse(path, text, language)
            except Exception:  # a bug on one odd file must not stop the build
                logger.exception("workspace: could not index %s", path)
                return
            self._install(path, text, language, stamp, analysis)

    def _analyse(self, path: str, text: str, language: str | None) -> _Analysis:
        if not is_source_name(os.path.basename(path)) and language is None:
            return _Analysis([], [], text.count("\n") + 1)
        return analyse(text, language)

    def _install(
        self, path: str, text: str, language: str | None, stamp: tuple[int, int] | None, analysis: _Analysis
    ) -> None:
        entry = IndexedFile(path, self.relative_path(path), language)
        entry.stamp = stamp
        entry.size = len(text) if stamp is None else stamp[1]
        entry.set_text(text, keep_plain=stamp is None)
        entry.row_count = analysis.row_count
        # Interned: the same names (__init__, new, get) recur in many files.
        entry.def_names = tuple(sys.intern(d.name) for d in analysis.definitions)
        rows = array("I")
        for d in analysis.definitions:
            rows.extend((d.start, d.end, d.header_end, _KIND_INDEX.get(d.kind, 0)))
        entry.def_rows = rows
        with self._lock:
            self._remove(path)
            if self._next_block + len(analysis.blocks) + 1 > _MAX_BLOCK_ID:
                self._renumber()
            self._place(entry, analysis.blocks)
            self._files[path] = entry
            for name in set(entry.def_names):
                owners = self._defined.get(name)
                if owners is None:
                    self._defined[name] = entry  # most names are defined once: no list for them
                elif isinstance(owners, list):
                    owners.append(entry)
                else:
                    self._defined[name] = [owners, entry]
            self._definition_count += len(entry.def_names)
            if stamp is not None:
                self._disk_bytes += entry.size
            self._changed(path)
        if self._postings.needs_merge():
            self._merge_postings()

    def _merge_postings(self) -> None:
        """Merge the pending postings (caller holds `_write_lock`, so nothing changes them meanwhile):
        the new buckets are built outside the data lock, which queries need, and swapped in under it."""
        merged = self._postings.prepare_merge()
        with self._lock:
            self._postings.commit_merge(merged)

    def _place(self, entry: IndexedFile, blocks: list[Counter[str]]) -> None:
        """Give `entry` the next run of block ids and post its blocks' terms (caller holds `_lock`)."""
        entry.first_block = self._next_block
        entry.block_count = len(blocks)
        self._next_block += entry.block_count + 1  # one unused id: no chunk spans two files
        self._block_starts.append(entry.first_block)
        self._block_owners.append(entry)
        postings = self._postings
        add = postings.add
        entry.live_blocks = 0
        for number, counts in enumerate(blocks):
            if not counts:
                continue
            entry.live_blocks += 1
            block = (entry.first_block + number) << _WEIGHT_BITS
            length = sum(counts.values())
            for term, count in counts.items():
                add(term_key(term), block | _weight(count, length))
        self._live_blocks += entry.live_blocks

    def _remove(self, path: str) -> None:
        """Drop `path`'s entry (caller holds `_lock`)."""
        entry = self._files.pop(path, None)
        if entry is None:
            return
        low = entry.first_block << _WEIGHT_BITS
        high = (entry.first_block + entry.block_count) << _WEIGHT_BITS
        for key in {term_key(term) for term in terms_of(entry.text())}:
            self._postings.remove_range(key, low, high)
        self._live_blocks -= entry.live_blocks
        index = bisect.bisect_left(self._block_starts, entry.first_block)
        if index < len(self._block_owners) and self._block_owners[index] is entry:
            del self._block_starts[index]
            del self._block_owners[index]
        for name in set(entry.def_names):
            owners = self._defined.get(name)
            if owners is entry:
                del self._defined[name]
            elif isinstance(owners, list):
                owners[:] = [owner for owner in owners if owner is not entry]
                if len(owners) == 1:
                    self._defined[name] = owners[0]
        self._definition_count -= len(entry.def_names)
        if entry.stamp is not None:
            self._disk_bytes -= entry.size
        self._changed(path)

    def _renumber(self) -> None:
        """Give every block a new id from 0 (caller holds `_lock`); needed after ~250 million ids."""
        logger.info("workspace: renumbering the index's blocks")
        entries = list(self._files.values())
        self._postings.clear()
        self._block_starts.clear()
        self._block_owners.clear()
        self._next_block = self._live_blocks = 0
        for entry in entries:
            self._place(entry, block_counts(entry.lines()))

    def _changed(self, path: str) -> None:
        self._version += 1
        self._changes.append((self._version, path))
