"""The workspace index: every source file's definitions and chunks, kept current, in compact form.

Per file the index keeps its definitions (tree-sitter, see `symbols`) and its text, compressed (see
`entry`): snippets are cut from it when a prompt wants one, so the text is held once. For similarity
search each file's rows go into a BM25 index of blocks (`bm25`).

Open editor buffers override the disk: `set_buffer` only stores the text and marks the file stale
(it runs on every keystroke), and `refresh` re-indexes stale files when they are needed, which is when
another file is completed (a file's own chunks are never its own snippets).

Threads: the build runs on a background thread, the file watcher on its own, buffers arrive from the
server and queries from the completion worker. Writers take `_write_lock` for one file at a time
(reading and parsing happen under it, outside the data lock), and everyone takes `_lock` for the short
moments the data structures are read or changed, so a query waits for at most one file's install.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from fim_lsp.exclusions import Exclusions
from fim_lsp.syntax import language_of
from fim_lsp.workspace import symbols
from fim_lsp.workspace.bm25 import BlockIndex, ChunkHit, block_counts
from fim_lsp.workspace.entry import IndexedFile
from fim_lsp.workspace.files import IndexLimits, SkippedFile, SourceFilter, is_source_name, read_source
from fim_lsp.workspace.folders import WorkspaceFolders, list_sources, normalize_path
from fim_lsp.workspace.recent import RecentEdits, RecentRange
from fim_lsp.workspace.symbols import Definition

logger = logging.getLogger(__name__)

_PROGRESS_INTERVAL = 0.2


def _owners(value: IndexedFile | list[IndexedFile] | None) -> list[IndexedFile]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


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


def analyse(text: str, language: str | None) -> _Analysis:
    """Definitions and block term counts of `text` (a whole file of grammar `language`)."""
    lines = text.split("\n")
    return _Analysis(symbols.definitions(text, language), block_counts(lines), len(lines))


class WorkspaceIndex:
    """The index of a workspace's folders and open buffers. Thread-safe; see the module docstring."""

    def __init__(self, limits: IndexLimits | None = None, exclusions: Exclusions | None = None) -> None:
        self.limits = limits or IndexLimits()
        #: Files never read nor overlaid, whatever `.gitignore` says (the `exclude` setting).
        self.exclusions = exclusions or Exclusions()
        self._lock = threading.RLock()
        self._write_lock = threading.RLock()
        self._folders = WorkspaceFolders()
        self._files: dict[str, IndexedFile] = {}
        self._blocks = BlockIndex()
        self._defined: dict[str, IndexedFile | list[IndexedFile]] = {}
        self._definition_count = 0
        self._disk_bytes = 0
        self._buffers: dict[str, str] = {}
        self._stale: set[str] = set()
        self._recent = RecentEdits()
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
        real = self._folders.add(root, self.exclusions)
        with self._lock:
            self._relabel()
        return real

    def remove_folder(self, root: str | os.PathLike[str]) -> None:
        """Forget a workspace folder and its files (open buffers stay)."""
        with self._write_lock, self._lock:
            real = self._folders.remove(root)
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
        return self._folders.roots

    def source_filter(self, path: str) -> SourceFilter | None:
        """The filter of the workspace folder that holds `path`, or None when no folder does."""
        return self._folders.source_filter(path)

    def relative_path(self, path: str) -> str:
        """How `path` is named in a prompt (see `WorkspaceFolders.relative_path`)."""
        return self._folders.relative_path(path)

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
            roots = self._folders.filters()
        try:
            listed = list_sources(roots, self.limits.max_files)
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
            self._recent.note(path, row)
            # Other files' snippets include this range now: answers remembered for them are stale.
            self._changed(path)

    def recent_ranges(self) -> list[RecentRange]:
        """The ranges edited or visited lately, newest first."""
        with self._lock:
            return self._recent.newest_first()

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
            excluded = self._files.get(exclude) if exclude else None
            found = self._blocks.similar_chunks(terms, excluded, exclude, limit)
        # Block ids follow indexing order, which changes as files change: order ties by path instead.
        found.sort(key=lambda hit: (-round(hit.score, 9), hit.file.path, hit.first))
        return found[:limit]

    def stats(self) -> IndexStats:
        with self._lock:
            stored = sum(entry.stored_bytes() for entry in self._files.values())
            approx = (
                stored
                + self._blocks.postings.approx_bytes()
                + self._definition_count * 40  # name reference, four row numbers
                + len(self._defined) * 90  # name-map slot, name
                + len(self._files) * 400
            )
            return IndexStats(
                files=len(self._files),
                blocks=self._blocks.live_blocks,
                definitions=self._definition_count,
                terms=self._blocks.postings.terms(),
                postings=len(self._blocks.postings),
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
        entry.set_definitions(analysis.definitions)
        with self._lock:
            self._remove(path)
            if not self._blocks.has_room_for(len(analysis.blocks)):
                self._blocks.renumber(self._files.values())
            self._blocks.place(entry, analysis.blocks)
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
        if self._blocks.postings.needs_merge():
            self._merge_postings()

    def _merge_postings(self) -> None:
        """Merge the pending postings (caller holds `_write_lock`, so nothing changes them meanwhile):
        the new buckets are built outside the data lock, which queries need, and swapped in under it."""
        merged = self._blocks.postings.prepare_merge()
        with self._lock:
            self._blocks.postings.commit_merge(merged)

    def _remove(self, path: str) -> None:
        """Drop `path`'s entry (caller holds `_lock`)."""
        entry = self._files.pop(path, None)
        if entry is None:
            return
        self._blocks.remove(entry)
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

    def _changed(self, path: str) -> None:
        self._version += 1
        self._changes.append((self._version, path))
