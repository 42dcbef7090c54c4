"""llama.cpp as a library of this process: where its log lines go, and which model files it is given
and how (mapped or read)."""

from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path
from typing import Any

from fim_lsp.errors import ModelCorruptError

llama_logger = logging.getLogger("fim_lsp.llama_cpp")

# ggml.h: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the previous line).
_GGML_TO_LOGGING = {3: logging.WARNING, 4: logging.ERROR}
_log_callback: Any = None  # kept referenced: llama.cpp calls it from C for the life of the process
#: Set while a decode is being aborted on purpose: llama.cpp then logs "failed to decode" as errors,
#: which are no errors of ours.
aborting = threading.Event()


def route_llama_logs() -> None:
    """Send llama.cpp's own log lines to our logger (debug level) instead of the process's stderr."""
    global _log_callback
    import llama_cpp

    if _log_callback is not None:
        return

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            # llama.cpp is chatty at its INFO level; only its warnings and errors are more than debug to us.
            severity = logging.DEBUG if aborting.is_set() else _GGML_TO_LOGGING.get(level, logging.DEBUG)
            llama_logger.log(severity, "%s", message)

    _log_callback = callback
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def check_gguf(path: Path) -> None:
    """Raise ModelCorruptError unless `path` is a readable GGUF file."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelCorruptError(f"cannot read model file {path}: {exc.strerror}") from exc
    if magic != b"GGUF":
        raise ModelCorruptError(f"{path} is not a GGUF model file")


def maps_safely(path: Path) -> bool:
    """Whether the model file may be memory-mapped rather than read into the process's own memory.

    A mapped model costs no load-time copy, and its pages are the page cache's: shared by every fim-lsp
    process (one per editor window) and dropped by the kernel under memory pressure. But a mapped file
    truncated or overwritten in place (`cp other.gguf model.gguf`) kills the process with SIGBUS on its
    next read of a missing page. Files in fim-lsp's model cache are only ever replaced by a rename
    (`models.py` writes a temporary file and renames it), which leaves the mapped inode intact: those
    are mapped. A model given by any other path is a file fim-lsp does not control, and is read into
    memory (0.5B: 587 MiB private instead of 486 MiB shared + 151 MiB private; load 0.3 s slower).
    """
    from fim_lsp.models import models_dir

    return path.resolve().is_relative_to(models_dir().resolve())
