"""A known model's weights re-quantized to Q4_0, for CPUs where llama.cpp multiplies those faster.

Where llama.cpp's AMX kernels run, they multiply the shipped Q4_K weights no faster than its AVX-512 ones,
but Q4_0 weights 2.7 times as fast when a prompt is evaluated; where it repacks weights for AVX2 or
AVX-512, Q4_0 reads the 0.5B's prompts 1.3 to 2 times as fast, so there both are timed, and the 1.5B's no
faster, so its copy is not made there (see docs/design/models.md and `fim_lsp.fit.weight_options`). The
copy is made from the verified shipped file with llama.cpp's own quantizer, once, into a temporary file
beside it that is renamed into place (a mapped model file is never overwritten), and a record beside it
names the file it was made from, so that a new shipped file gets a new copy."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from fim_lsp.errors import FimError
from fim_lsp.models.manifest import ModelManifest, known_models
from fim_lsp.models.store import (
    cached_path,
    file_record_matches,
    is_gguf,
    models_dir,
    remove_file,
    write_file_record,
)

logger = logging.getLogger(__name__)

QUANTIZATION = "Q4_0"
#: `LLAMA_FTYPE_MOSTLY_Q4_0` in llama.h.
_FTYPE_Q4_0 = 2
_RECORD_SUFFIX = ".source.json"


def requantized_path(manifest: ModelManifest, directory: Path | None = None) -> Path:
    """Where the model's Q4_0 copy is (or will be) in the cache."""
    return (directory or models_dir()) / f"{Path(manifest.file).stem}.{QUANTIZATION}.gguf"


def requantized_id(manifest: ModelManifest) -> str:
    """A hex digest naming the Q4_0 copy's weights (from the shipped file's, without hashing the copy):
    what speeds measured on it are kept under."""
    return hashlib.sha256(f"{manifest.sha256}/{QUANTIZATION}".encode()).hexdigest()


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + _RECORD_SUFFIX)


def is_current(path: Path, manifest: ModelManifest) -> bool:
    """Whether `path` is a whole Q4_0 copy of the manifest's file, untouched since it was made."""
    return file_record_matches(path, _record_path(path), {"source_sha256": manifest.sha256})


def copied_from(path: Path) -> ModelManifest | None:
    """The known model whose current Q4_0 copy the file at `path` is (its record says so), if any."""
    return next((manifest for manifest in known_models().values() if is_current(path, manifest)), None)


def requantize(manifest: ModelManifest, directory: Path | None = None) -> Path:
    """The Q4_0 copy of the manifest's model, made from its verified file in the cache if not there yet
    (seconds for the 0.5B, about a minute for the 1.5B on two cores)."""
    import llama_cpp

    source = cached_path(manifest, directory)
    target = requantized_path(manifest, directory)
    if is_current(target, manifest):
        return target
    try:
        free = shutil.disk_usage(target.parent).free
    except OSError as exc:
        raise FimError(f"cannot use the model cache {target.parent}: {exc.strerror or exc}") from exc
    if free < manifest.size:
        raise FimError(
            f"not enough disk space in {target.parent} for a {QUANTIZATION} copy of {manifest.name}"
        )
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(handle)
    temporary = Path(name)
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = os.cpu_count() or 1
    params.ftype = _FTYPE_Q4_0
    params.allow_requantize = True
    started = time.monotonic()
    logger.info("making a %s copy of %s for this CPU's kernels", QUANTIZATION, manifest.name)
    try:
        status = llama_cpp.llama_model_quantize(str(source).encode(), name.encode(), ctypes.byref(params))
        if status != 0 or not is_gguf(temporary):
            raise FimError(f"llama.cpp could not make a {QUANTIZATION} copy of {source} (status {status})")
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        remove_file(temporary)
        raise
    with contextlib.suppress(OSError):  # without the record the copy is only made again next time
        write_file_record(target, _record_path(target), {"source_sha256": manifest.sha256})
    logger.info("made %s in %.1f s", target, time.monotonic() - started)
    return target
