"""Shared fixtures of the unit tests; each group's carry its prefix (`models_`: model provisioning)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

# --- models_: fake chunk packages and manifests, so provisioning is tested without the real models ---


@dataclass
class FakeModel:
    """A fake model: its manifest on disk, the bytes it should assemble to, and where things live."""

    name: str
    data: bytes
    """The assembled file: the chunks concatenated in order."""
    chunks: list[bytes]
    packages: list[str]
    site: Path
    """The directory on sys.path holding the fake packages."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class ModelsEnv:
    """Where the fake models' manifests and cache live; the environment points fim-lsp at them."""

    root: Path
    manifest_dir: Path
    cache_dir: Path

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"


@pytest.fixture
def models_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelsEnv:
    """An empty manifest directory and cache, made fim-lsp's only ones through its environment variables."""
    env = ModelsEnv(root=tmp_path, manifest_dir=tmp_path / "manifests", cache_dir=tmp_path / "cache")
    env.manifest_dir.mkdir()
    monkeypatch.setenv("FIM_LSP_MANIFEST_PATH", str(env.manifest_dir))
    monkeypatch.setenv("FIM_LSP_CACHE_DIR", str(env.cache_dir))
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    return env


def _write_package(site: Path, package: str, version: str, part: int, data: bytes) -> str:
    """Write one fake installed chunk package (module, chunk, dist-info) as pip would; return its path."""
    module = package.replace("-", "_")
    path = f"{module}/data/part{part:02d}.bin"
    (site / module / "data").mkdir(parents=True, exist_ok=True)
    (site / module / "__init__.py").write_text("")
    (site / path).write_bytes(data)
    info = site / f"{module}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{module}/__init__.py,,\n{path},,\n")
    return path


def _manifest_text(
    name: str,
    size: int,
    sha256: str,
    chunks: list[tuple[str, str, str]],
    *,
    default: bool = False,
    fast: bool = False,
    hub: tuple[str, str] | None = ("test-org/fake-coder-GGUF", "fake-coder.gguf"),
) -> str:
    """A manifest in the format of `models/*.toml`; `chunks` are (package, version, path) in order."""
    rows = "\n".join(f'  {{ package = "{p}", version = "{v}", path = "{f}" }},' for p, v, f in chunks)
    text = (
        f'name = "{name}"\ndescription = "a fake model for tests"\nfamily = "qwen2.5-coder"\n'
        f'quantization = "Q4_K_M"\nsize = {size}\nsha256 = "{sha256}"\nfile = "{name}.gguf"\n'
        f'default = {str(default).lower()}\nfast = {str(fast).lower()}\nlicense = "Apache-2.0"\n'
        f"chunks = [\n{rows}\n]\n"
    )
    if hub:
        text += f'\n[hub]\nrepo = "{hub[0]}"\nfile = "{hub[1]}"\n'
    return text


@pytest.fixture
def models_write_package() -> Callable[..., str]:
    """`(site, package, version, part, data) -> path`: write one fake installed chunk package."""
    return _write_package


@pytest.fixture
def models_manifest_text() -> Callable[..., str]:
    """`(name, size, sha256, chunks, *, default, fast, hub) -> str`: a manifest's TOML text."""
    return _manifest_text


@pytest.fixture
def models_fake(models_env: ModelsEnv, monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeModel]:
    """Make a fake model: chunk packages installed on sys.path (unless `install=False`) and its manifest.

    `sha256` overrides the manifest's checksum (to make a mismatch); `order` lists chunk indexes in the
    order the manifest names them (to test that assembly follows the manifest).
    """
    site = models_env.root / "site"
    site.mkdir(exist_ok=True)
    monkeypatch.syspath_prepend(str(site))

    def make(
        name: str = "fake-coder",
        chunks: list[bytes] | None = None,
        *,
        version: str = "1.0.0",
        install: bool = True,
        sha256: str | None = None,
        order: list[int] | None = None,
        default: bool = True,
        fast: bool = False,
    ) -> FakeModel:
        chunks = chunks if chunks is not None else [b"GGUF\x03\x00\x00\x00first-", b"second-", b"third"]
        order = order if order is not None else list(range(len(chunks)))
        prefix = f"{name}-part"
        packages = [f"{prefix}{i + 1}" for i in range(len(chunks))]
        paths = []
        for i, data in enumerate(chunks):
            module = packages[i].replace("-", "_")
            paths.append(f"{module}/data/part{i + 1:02d}.bin")
            if install:
                _write_package(site, packages[i], version, i + 1, data)
        assembled = b"".join(chunks[i] for i in order)
        listed = [(packages[i], version, paths[i]) for i in order]
        digest = sha256 or hashlib.sha256(assembled).hexdigest()
        text = _manifest_text(name, len(assembled), digest, listed, default=default, fast=fast)
        (models_env.manifest_dir / f"{name}.toml").write_text(text)
        return FakeModel(name=name, data=assembled, chunks=chunks, packages=packages, site=site)

    return make
