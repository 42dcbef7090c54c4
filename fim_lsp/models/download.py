"""A known model's file from the model hub, for users who have a network (never used by the server)."""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fim_lsp import __version__
from fim_lsp.errors import FimError, ModelCorruptError, ModelMissingError
from fim_lsp.models.manifest import ModelManifest
from fim_lsp.models.store import BLOCK_BYTES, Progress, StderrProgress, cached_path, write_verified

logger = logging.getLogger(__name__)

DEFAULT_HUB = "https://huggingface.co"


def hub_base_url(base_url: str | None = None) -> str:
    """The hub to download from: the argument, else `$HF_ENDPOINT`, else huggingface.co."""
    return base_url or os.environ.get("HF_ENDPOINT") or DEFAULT_HUB


def _read_response(response: Any, url: str, length: int | None) -> Iterator[bytes]:
    received = 0
    try:
        while block := response.read(BLOCK_BYTES):
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
        return write_verified(
            manifest, cached_path(manifest, directory), _read_response(response, url, length), url, progress
        )
