"""The workspace folders the editor opened: which folder holds a file, how a file is named in a prompt,
and the source files each folder lists (see `files` for what counts as source)."""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache

from fim_lsp.exclusions import Exclusions
from fim_lsp.workspace.files import SourceFilter

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4096)
def _real_directory(directory: str) -> str:
    return os.path.realpath(directory)


def normalize_path(path: str) -> str:
    """The absolute path the index keys a file by: its folder's real path, then its name."""
    path = os.path.abspath(path)
    return os.path.join(_real_directory(os.path.dirname(path)), os.path.basename(path))


class WorkspaceFolders:
    """The folders by their real path, each with the filter of its source files. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._roots: dict[str, SourceFilter] = {}

    def add(self, root: str | os.PathLike[str], exclusions: Exclusions | None = None) -> str:
        """Add a folder whose files matching `exclusions` are never listed; returns its real path."""
        source_filter = SourceFilter(root, exclusions)
        with self._lock:
            self._roots.setdefault(source_filter.root, source_filter)
        return source_filter.root

    def remove(self, root: str | os.PathLike[str]) -> str:
        """Forget a folder; returns its real path."""
        real = os.path.realpath(root)
        with self._lock:
            self._roots.pop(real, None)
        return real

    @property
    def roots(self) -> list[str]:
        with self._lock:
            return list(self._roots)

    def filters(self) -> list[SourceFilter]:
        with self._lock:
            return list(self._roots.values())

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


def list_sources(
    filters: list[SourceFilter], max_files: int
) -> dict[str, tuple[SourceFilter, os.stat_result]]:
    """Every source file of the folders, with its folder's filter and its stat, at most `max_files`."""
    listed: dict[str, tuple[SourceFilter, os.stat_result]] = {}
    for source_filter in filters:
        for path, info in source_filter.walk():
            if len(listed) >= max_files:
                logger.info(
                    "workspace: the %d-file cap is reached; the rest of %s is not indexed",
                    max_files,
                    source_filter.root,
                )
                break
            listed.setdefault(path, (source_filter, info))
    return listed
