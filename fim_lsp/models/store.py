"""The model cache on disk: where verified model files live, how a file is hashed and recorded as verified
(a sidecar with size, mtime and sha256, so a 1 GB file is not hashed again on every start), and the one
way a model file is written: to a temporary file, hashed as it goes, renamed into place only when it is
exactly the manifest's file."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from fim_lsp.errors import FimError, ModelCorruptError
from fim_lsp.models.manifest import ModelManifest

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"

#: Called with (bytes done, bytes expected) while a model file is written or hashed.
Progress = Callable[[int, int], None]

#: Bytes read or written at a time.
BLOCK_BYTES = 4 * 1024 * 1024
_SIDECAR_SUFFIX = ".verified.json"
_PART_SUFFIX = ".part"
# A temporary file older than this was left by a process that died mid-write (assembling the larger
# model takes well under a minute), so it can be removed without racing a live writer.
_STALE_PART_SECONDS = 6 * 3600

# The hash used while writing and verifying: one name, so tests can count how often a file is hashed.
_new_hasher = hashlib.sha256


def cache_root() -> Path:
    """fim-lsp's cache: `$FIM_LSP_CACHE_DIR`, else `$XDG_CACHE_HOME/fim-lsp`, else `~/.cache/fim-lsp`."""
    override = os.environ.get("FIM_LSP_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "fim-lsp"


def models_dir() -> Path:
    """Where provisioned model files live (not created until a model is written)."""
    return cache_root() / "models"


def cached_path(manifest: ModelManifest, directory: Path | None = None) -> Path:
    """Where a known model's file is (or will be) in the cache."""
    return (directory or models_dir()) / manifest.file


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def is_gguf(path: Path) -> bool:
    """Whether the file starts with the GGUF magic bytes."""
    with open(path, "rb") as handle:
        return handle.read(len(GGUF_MAGIC)) == GGUF_MAGIC


def hash_file(path: Path, progress: Progress | None = None) -> str:
    """The hex sha256 of a file, read in blocks."""
    hasher = _new_hasher()
    total = path.stat().st_size
    done = 0
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            hasher.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return hasher.hexdigest()


def write_file_record(path: Path, record: Path, facts: dict[str, str]) -> None:
    """Record in `record` that `path`, as it is now (its size and modification time), has `facts`: a
    temporary file renamed over the record, so a reader never finds half of one. Raises OSError."""
    stat = path.stat()
    content = {**facts, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    temporary = record.with_name(f".{record.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(content) + "\n", "utf-8")
        os.replace(temporary, record)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def file_record_matches(path: Path, record: Path, facts: dict[str, object]) -> bool:
    """Whether `record` says `path` has `facts` and `path` has not changed since (no hashing)."""
    try:
        stat = path.stat()
        content = json.loads(record.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(content, dict)
        and all(content.get(key) == value for key, value in facts.items())
        and content.get("size") == stat.st_size
        and content.get("mtime_ns") == stat.st_mtime_ns
    )


def _record_verification(path: Path, manifest: ModelManifest) -> None:
    """Remember that `path`, as it is now, has the manifest's checksum."""
    try:
        write_file_record(path, _sidecar(path), {"sha256": manifest.sha256})
    except OSError as exc:
        # Only an optimisation: the file is fine, it will be hashed again next time.
        logger.warning("could not record the verification of %s: %s", path, exc)


def is_verified(path: Path, manifest: ModelManifest) -> bool:
    """Whether `path` was verified against the manifest and has not changed since (no hashing)."""
    return file_record_matches(path, _sidecar(path), {"sha256": manifest.sha256, "size": manifest.size})


def verify_file(path: Path, manifest: ModelManifest, progress: Progress | None = None) -> None:
    """Hash `path` and record it as verified, or raise ModelCorruptError saying how it differs."""
    size = path.stat().st_size
    if size != manifest.size:
        raise ModelCorruptError(f"{path} has {size:,} bytes; {manifest.name} has {manifest.size:,}")
    digest = hash_file(path, progress)
    if digest != manifest.sha256:
        raise ModelCorruptError(f"{path} has sha256 {digest}; {manifest.name} has {manifest.sha256}")
    _record_verification(path, manifest)


def remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _remove_stale_parts(target: Path) -> None:
    """Delete temporary files a killed writer of `target` left behind (they can be gigabytes)."""
    now = time.time()
    for part in target.parent.glob(f".{target.name}.*{_PART_SUFFIX}"):
        with contextlib.suppress(OSError):
            if now - part.stat().st_mtime > _STALE_PART_SECONDS:
                part.unlink()
                logger.info("removed %s, left by an interrupted write", part)


def _no_space(directory: Path, manifest: ModelManifest) -> FimError:
    return FimError(
        f"not enough disk space in {directory} for {manifest.name} ({manifest.size / 1e9:.2f} GB needed); "
        "free some space, or set FIM_LSP_CACHE_DIR to a disk that has it"
    )


def _open_part(manifest: ModelManifest, target: Path) -> tuple[int, Path]:
    """A new temporary file beside `target` (descriptor, path), once the cache has room for the model."""
    directory = target.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(target)
        free = shutil.disk_usage(directory).free
    except OSError as exc:
        raise FimError(f"cannot use the model cache {directory}: {exc.strerror or exc}") from exc
    if free < manifest.size:
        raise _no_space(directory, manifest)
    try:
        handle, name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=_PART_SUFFIX)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise _no_space(directory, manifest) from exc
        raise FimError(f"cannot write to the model cache {directory}: {exc.strerror or exc}") from exc
    return handle, Path(name)


def _write_part(
    manifest: ModelManifest, handle: int, temporary: Path, blocks: Iterable[bytes], progress: Progress | None
) -> tuple[int, str]:
    """Write `blocks` to the open temporary file, hashing them; (bytes written, sha256). The file is
    removed when anything goes wrong."""
    hasher = _new_hasher()
    written = 0
    try:
        # mkstemp makes the file private (0600); a model is not secret, and other users of a shared
        # cache directory must be able to read it.
        os.fchmod(handle, 0o644)
        with os.fdopen(handle, "wb") as out:
            for block in blocks:
                written += len(block)
                if written > manifest.size:
                    break  # longer than the model: no need to read the rest to know it is wrong
                out.write(block)
                hasher.update(block)
                if progress:
                    progress(written, manifest.size)
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        remove_file(temporary)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _no_space(temporary.parent, manifest) from exc
        raise FimError(f"cannot write {temporary}: {exc.strerror or exc}") from exc
    except BaseException:
        remove_file(temporary)
        raise
    return written, hasher.hexdigest()


def write_verified(
    manifest: ModelManifest,
    target: Path,
    blocks: Iterable[bytes],
    origin: str,
    progress: Progress | None,
) -> Path:
    """Write `blocks` to a temporary file next to `target`, hashing as they go; rename it into place
    only if it is exactly the manifest's file.

    `blocks` must translate its own read errors into FimError: every OSError seen here is a write error.
    Whatever goes wrong, no partial file is left behind.
    """
    handle, temporary = _open_part(manifest, target)
    written, digest = _write_part(manifest, handle, temporary, blocks, progress)
    if written != manifest.size or digest != manifest.sha256:
        remove_file(temporary)
        if written > manifest.size:
            found = f"more than {manifest.size:,} bytes"
        elif written != manifest.size:
            found = f"{written:,} bytes"
        else:
            found = f"sha256 {digest}"
        raise ModelCorruptError(
            f"{manifest.name} from {origin} is not the expected file ({found}; expected {manifest.size:,} "
            f"bytes with sha256 {manifest.sha256}); it was not kept. Do not use these files."
        )
    os.replace(temporary, target)
    _record_verification(target, manifest)
    return target


class StderrProgress:
    """Progress of a long write on stderr: one updating line on a terminal, else a line per tenth."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._shown = -1
        self._tty = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        step = percent if self._tty else percent // 10 * 10
        if step == self._shown:
            return
        self._shown = step
        line = f"{self.label}: {step:3d}% ({done / 1e6:,.0f} of {total / 1e6:,.0f} MB)"
        if self._tty:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
