"""llama.cpp as a library of this process: where its log lines go, which model files it is given and how
(mapped or read), and which of its buffer types the weights may go to."""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fim_lsp.errors import ModelCorruptError

logger = logging.getLogger(__name__)
llama_logger = logging.getLogger("fim_lsp.llama_cpp")

# ggml.h: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the previous line).
_GGML_TO_LOGGING = {3: logging.WARNING, 4: logging.ERROR}
_log_callback: Any = None  # kept referenced: llama.cpp calls it from C for the life of the process
#: Set while a decode is being aborted on purpose: llama.cpp then logs "failed to decode" as errors,
#: which are no errors of ours.
aborting = threading.Event()
#: llama.cpp warnings that say nothing is wrong: a LoRA adapter's tensors stay in plain CPU buffers where
#: the model's weights are repacked for the CPU, one line per tensor (196 for the 1.5B's adapter); and
#: a vocabulary's text token that looks like a control token (the Qwen2.5-Coder files' `</s>`), which
#: llama.cpp makes one as it loads the model, at every load: "probably a bug in the model", and mended.
_EXPECTED_WARNINGS = ("cannot use buft", "control-looking token")


def log_severity(level: int, message: str) -> int:
    """The logging level of a llama.cpp log line: its warnings and errors, but for the expected ones and
    those of a decode aborted on purpose; llama.cpp is chatty at its INFO level, which is debug to us."""
    if aborting.is_set() or any(part in message for part in _EXPECTED_WARNINGS):
        return logging.DEBUG
    return _GGML_TO_LOGGING.get(level, logging.DEBUG)


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
            llama_logger.log(log_severity(level, message), "%s", message)

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


#: Extra CPU buffer types of llama.cpp that crash in some builds. AMX: built by GCC 12, llama.cpp's AMX
#: matrix multiplication loads a tile configuration whose shapes the compiler dropped (its
#: `_tile_loadconfig` declares an 8-byte read of the 64-byte configuration), and `ldtilecfg` ends in a
#: segmentation fault on the first evaluation (ggml-org/llama.cpp#20824), which would take the server
#: down with it. Whether a build has the fault cannot be asked of the library: it is tried in a child
#: process (`buffer_probe`) before the server's own process relies on it.
UNSAFE_BUFFER_TYPES = frozenset({"AMX"})
#: Seconds a probe may take: loading the larger model and evaluating a short prompt takes a few.
PROBE_TIMEOUT_SECONDS = 120


def cpu_extra_buffer_types() -> list[str]:
    """Names of the extra buffer types llama.cpp's CPU backend offers for weights on this machine,
    best first (say `AMX`, `CPU_REPACK`); [] where this build cannot be asked."""
    from llama_cpp import _ggml

    lib = _ggml.libggml
    try:
        lib.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
        lib.ggml_backend_dev_by_type.restype = ctypes.c_void_p
        lib.ggml_backend_dev_backend_reg.argtypes = [ctypes.c_void_p]
        lib.ggml_backend_dev_backend_reg.restype = ctypes.c_void_p
        lib.ggml_backend_reg_get_proc_address.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.ggml_backend_reg_get_proc_address.restype = ctypes.c_void_p
        lib.ggml_backend_buft_name.argtypes = [ctypes.c_void_p]
        lib.ggml_backend_buft_name.restype = ctypes.c_char_p
    except AttributeError:  # a ggml without the device registry
        return []
    device = lib.ggml_backend_dev_by_type(0)  # GGML_BACKEND_DEVICE_TYPE_CPU
    if not device:
        return []
    address = lib.ggml_backend_reg_get_proc_address(
        lib.ggml_backend_dev_backend_reg(device), b"ggml_backend_dev_get_extra_bufts"
    )
    if not address:
        return []
    extra_bufts = ctypes.CFUNCTYPE(ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p)(address)(device)
    names: list[str] = []
    while extra_bufts and extra_bufts[len(names)]:
        names.append(lib.ggml_backend_buft_name(extra_bufts[len(names)]).decode())
    return names


def extra_buffers_are_safe(names: list[str]) -> bool:
    """Whether weights may go to llama.cpp's extra CPU buffer types (`names`, see
    `cpu_extra_buffer_types`) without trying them first: none of them is known to crash in some builds."""
    return not UNSAFE_BUFFER_TYPES.intersection(names)


def extra_buffers_work(model_path: Path, names: list[str]) -> bool:
    """Whether weights may go to the extra buffer types `names` here. Where one of them crashes in some
    builds, the answer is this build's on this CPU, found once by loading `model_path` with them in a
    child process and kept (`buffers.json` in fim-lsp's cache). Without them every weight stays in the
    plain CPU buffer: slower to multiply, but correct."""
    if extra_buffers_are_safe(names):
        return True
    key = _library_key()
    verdicts = _read_verdicts()
    if key in verdicts:
        return verdicts[key]
    verdict = _probe(model_path)
    if verdict is None:
        return False
    verdicts[key] = verdict
    _write_verdicts(verdicts)
    return verdict


def amx_runs_here(probe_model: Path | None) -> bool:
    """Whether this llama.cpp build multiplies weights with AMX on this CPU: it offers the AMX buffer
    type, and its kernels were found to run (tried with `probe_model` if not known yet and one is
    given)."""
    names = cpu_extra_buffer_types()
    if "AMX" not in names:
        return False
    if probe_model is not None:
        return extra_buffers_work(probe_model, names)
    return bool(tried_verdict())


def tried_verdict() -> bool | None:
    """Whether this build's extra buffer types were found to work on this CPU; None if never tried."""
    return _read_verdicts().get(_library_key())


@functools.cache
def _library_key() -> str:
    """This llama.cpp build (its CPU library, by content) on this CPU: hashed once a process, since
    neither changes under a running one, and `auto` asks for it per model on every load."""
    import llama_cpp

    hasher = hashlib.sha256(llama_cpp.__version__.encode())
    for library in sorted(Path(llama_cpp.__file__).parent.glob("lib/libggml-cpu*")):
        hasher.update(library.name.encode())
        hasher.update(library.read_bytes())
    hasher.update(cpu_flags().encode())
    return hasher.hexdigest()[:16]


def cpu_flags() -> str:
    """This CPU's feature flags as /proc/cpuinfo lists them (the machine's name where it cannot)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line for line in lines if line.startswith("flags"))
    except (OSError, StopIteration):
        return os.uname().machine


def _verdicts_file() -> Path:
    from fim_lsp.models import cache_root

    return cache_root() / "buffers.json"


def _read_verdicts() -> dict[str, bool]:
    try:
        raw = json.loads(_verdicts_file().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {key: value for key, value in raw.items() if isinstance(value, bool)}


def _write_verdicts(verdicts: dict[str, bool]) -> None:
    path = _verdicts_file()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(verdicts, indent=1, sort_keys=True))
        temporary.replace(path)
    except OSError as exc:  # only a saving: the probe runs again next time
        logger.warning("could not keep the verdict on llama.cpp's buffer types in %s: %s", path, exc)


def _probe(model_path: Path) -> bool | None:
    """Load `model_path` with the extra buffer types in a child process and evaluate a prompt: True if
    it ran, False if it died of a signal (the crash), None if it could not tell (the model would not
    load, the child could not start or took too long)."""
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "fim_lsp.engine.buffer_probe", str(model_path)],
            capture_output=True,
            timeout=PROBE_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("could not try llama.cpp's extra buffer types: %s", exc)
        return None
    seconds = time.monotonic() - started
    if result.returncode == 0:
        logger.info("llama.cpp's extra buffer types work here (tried in %.1f s)", seconds)
        return True
    if result.returncode < 0:
        logger.warning(
            "llama.cpp's extra buffer types crash here (signal %d, tried in %.1f s)",
            -result.returncode,
            seconds,
        )
        return False
    tail = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
    logger.warning("could not try llama.cpp's extra buffer types with %s: %s", model_path, tail[0])
    return None
