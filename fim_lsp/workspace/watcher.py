"""Keeps the workspace index current with the disk: watchdog events, debounced, applied in batches.

A save, a `git checkout` or a formatter run fires bursts of events, often several per file. Events are
collected by path and applied once things have been quiet for `debounce` seconds (or at most every
`max_delay` seconds during a long burst), on a thread of our own, never watchdog's: re-indexing a file
parses it, and watchdog's thread must stay free to read the kernel's event queue.

Events under excluded folders (`.git`, `node_modules`, ...) are dropped as they arrive, without a
look at the disk; a changed `.gitignore` makes its folder's rules be read again and the folder be
re-walked (only changed files are read again). Applying an event asks the disk what is there now, so
a file created and deleted within one batch costs nothing, and a deleted folder drops its files.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEventHandler

from fim_lsp.workspace.files import has_excluded_part

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent
    from watchdog.observers.api import BaseObserver

    from fim_lsp.workspace.index import WorkspaceIndex

logger = logging.getLogger(__name__)

_IGNORE_FILES = (os.sep + ".gitignore", os.sep + os.path.join(".git", "info", "exclude"))
_SKIPPED_EVENTS = frozenset({"opened", "closed_no_write"})


class WorkspaceWatcher:
    """Watches the index's folders and feeds it changes. `start()` / `stop()`; thread-safe."""

    def __init__(self, index: WorkspaceIndex, debounce: float = 0.3, max_delay: float = 2.0) -> None:
        self.index = index
        self.debounce = debounce
        self.max_delay = max_delay
        self._observer: BaseObserver | None = None
        self._watched: set[str] = set()
        self._pending: dict[str, None] = {}
        self._first_event = 0.0
        self._last_event = 0.0
        self._condition = threading.Condition()
        self._stopping = False
        self._worker: threading.Thread | None = None

    def start(self) -> bool:
        """Start watching every folder of the index; False (with a log line) when watching is not
        possible here: the index then stays current through the editor's buffers and saves only."""
        try:
            from watchdog.observers import Observer

            observer = Observer()
            observer.start()
        except Exception as error:  # no inotify, too many watches, ...: run without
            logger.warning(
                "workspace: cannot watch the file system (%s); changes on disk are not seen", error
            )
            return False
        self._observer = observer
        self._stopping = False
        self._worker = threading.Thread(target=self._run, name="fim-lsp-workspace-watcher", daemon=True)
        self._worker.start()
        for root in self.index.roots:
            self.watch(root)
        return True

    def watch(self, root: str) -> None:
        """Watch one more folder (after `index.add_folder`)."""
        if self._observer is None or root in self._watched:
            return
        handler = _Handler(self)
        try:
            self._observer.schedule(handler, root, recursive=True)
        except Exception as error:  # the folder vanished, or the kernel's watch limit was reached
            logger.warning("workspace: cannot watch %s: %s", root, error)
            return
        self._watched.add(root)

    def stop(self) -> None:
        """Stop watching; pending changes are dropped."""
        observer, self._observer = self._observer, None
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if observer is not None:
            try:
                observer.stop()
                observer.join(timeout=5)
            except Exception:  # stopping must not fail the server's shutdown
                logger.exception("workspace: stopping the file watcher failed")
        if self._worker is not None:
            self._worker.join(timeout=5)
            self._worker = None
        self._watched.clear()

    def notify(self, event: FileSystemEvent) -> None:
        """Queue an event's paths (called on watchdog's thread: cheap, no disk access)."""
        if event.event_type in _SKIPPED_EVENTS:
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        with self._condition:
            for raw in paths:
                path = os.fsdecode(raw) if raw else ""
                if path and self._relevant(path):
                    self._pending[path] = None
            if self._pending:
                now = time.monotonic()
                if not self._first_event:
                    self._first_event = now
                self._last_event = now
                self._condition.notify_all()

    def _relevant(self, path: str) -> bool:
        if path.endswith(_IGNORE_FILES):
            return True
        source_filter = self.index.source_filter(path)
        return source_filter is not None and not has_excluded_part(path, source_filter.root)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopping:
                    if self._pending:
                        now = time.monotonic()
                        quiet = self._last_event + self.debounce - now
                        overdue = self._first_event + self.max_delay - now
                        wait = min(quiet, overdue)
                        if wait <= 0:
                            break
                        self._condition.wait(wait)
                    else:
                        self._condition.wait()
                if self._stopping:
                    return
                batch = list(self._pending)
                self._pending.clear()
                self._first_event = 0.0
            try:
                self._apply(batch)
            except Exception:  # a bug must not end the watching
                logger.exception("workspace: applying file changes failed")

    def _apply(self, paths: list[str]) -> None:
        rebuild = False
        for path in paths:
            if path.endswith(_IGNORE_FILES):
                source_filter = self.index.source_filter(path)
                if source_filter is not None:
                    source_filter.forget_ignores()
                rebuild = True
            elif os.path.isdir(path) and not os.path.islink(path):
                self.index.scan_tree(path)
            elif os.path.lexists(path):
                self.index.update_file(path)
            else:
                # Gone: a file, or a folder whose files go with it.
                self.index.remove_file(path)
                self.index.remove_tree(path)
        if rebuild:
            self.index.build()
        logger.debug("workspace: applied %d changed paths", len(paths))


class _Handler(FileSystemEventHandler):
    """Passes every event to the watcher."""

    def __init__(self, watcher: WorkspaceWatcher) -> None:
        super().__init__()
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._watcher.notify(event)
