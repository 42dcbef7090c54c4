"""The workspace as the server sees it: the folders the client opened, its open buffers, the index of
both kept current (a background build, then watchdog and the buffers), and the snippets for a cursor.

No pygls here either: the server turns URIs into paths and LSP notifications into these calls, and
reports the build's progress however its client wants it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence

from fim_lsp.completion import WorkspaceContext
from fim_lsp.exclusions import Exclusions
from fim_lsp.prompt import RepoFile
from fim_lsp.workspace.files import IndexLimits
from fim_lsp.workspace.folders import normalize_path
from fim_lsp.workspace.index import WorkspaceIndex
from fim_lsp.workspace.retrieval import snippets_for
from fim_lsp.workspace.watcher import WorkspaceWatcher

logger = logging.getLogger(__name__)

#: `progress(done, total)` while the index is built, and `finished()` when the build ends.
Progress = Callable[[int, int], None]


class WorkspaceSession:
    """An index of the workspace folders and open buffers, built in the background and watched."""

    def __init__(self, limits: IndexLimits | None = None, exclusions: Exclusions | None = None) -> None:
        self.index = WorkspaceIndex(limits, exclusions)
        self._watcher: WorkspaceWatcher | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def folders(self) -> list[str]:
        return self.index.roots

    def start(
        self,
        folders: Iterable[str],
        progress: Progress | None = None,
        finished: Callable[[], None] | None = None,
    ) -> None:
        """Index `folders` in the background and watch them; completions never wait for the build."""
        added = [self.index.add_folder(folder) for folder in folders if os.path.isdir(folder)]
        if not added:
            if finished is not None:
                finished()
            return
        with self._lock:
            if self._watcher is None:
                self._watcher = WorkspaceWatcher(self.index)
                self._watcher.start()
            else:
                for folder in added:
                    self._watcher.watch(folder)
        self.index.build_in_background(progress, self._stop.is_set, finished)

    def remove_folders(self, folders: Iterable[str]) -> None:
        for folder in folders:
            self.index.remove_folder(folder)

    def stop(self) -> None:
        """Stop the build and the watcher (the index is dropped with the session)."""
        self._stop.set()
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    # -- buffers --------------------------------------------------------------------------------------

    def opened(self, path: str, text: str) -> None:
        self.index.set_buffer(path, text)

    def changed(self, path: str, text: str, rows: Sequence[int] = ()) -> None:
        """An open buffer's new text, and the rows the change touched (recent edits are snippets too)."""
        self.index.set_buffer(path, text)
        for row in rows:
            self.index.note_edit(path, row)

    def saved(self, path: str) -> None:
        self.index.update_file(path)

    def closed(self, path: str) -> None:
        self.index.close_buffer(path)

    # -- snippets -------------------------------------------------------------------------------------

    def context_for(self, path: str, text: str, offset: int, language: str | None) -> WorkspaceContext | None:
        """What the pipeline needs to put workspace snippets in a prompt for this cursor; None for a
        document outside every workspace folder (a scratch buffer has no repository around it)."""
        root = self.index.source_filter(normalize_path(path))
        if root is None:
            return None
        index = self.index

        def snippets(budget: int, count_tokens: Callable[[str], int]) -> Sequence[RepoFile]:
            found = snippets_for(index, path, text, offset, language, budget, count_tokens)
            # The index holds no excluded file; this guards the prompt should one slip in regardless.
            return [snippet for snippet in found if not index.exclusions.matches(snippet.path)]

        return WorkspaceContext(
            repo=os.path.basename(root.root),
            path=index.relative_path(path),
            snippets=snippets,
            state=f"{root.root}@{index.version_of_others(path)}",
        )
