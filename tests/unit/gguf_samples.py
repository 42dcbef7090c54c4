"""GGUF files small enough to trust, written by hand: the format's header, a tensor table, zeros for data;
and the metadata of a fim-lsp adapter."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from fim_lsp.warmup import adapters


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _value(value: Any) -> bytes:
    if isinstance(value, bool):
        return struct.pack("<I?", 7, value)
    if isinstance(value, int):
        return struct.pack("<IQ", 10, value)
    if isinstance(value, float):
        return struct.pack("<If", 6, value)
    if isinstance(value, str):
        return struct.pack("<I", 8) + _string(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return struct.pack("<IIQ", 9, 8, len(value)) + b"".join(_string(v) for v in value)
    if isinstance(value, list):
        return struct.pack("<IIQ", 9, 5, len(value)) + struct.pack(f"<{len(value)}i", *value)
    raise TypeError(value)


def write_gguf(path: Path, metadata: dict[str, Any], tensors: dict[str, tuple[tuple[int, ...], int]]) -> Path:
    """A GGUF file with `metadata` and the tensor table of `tensors` ({name: (dims, byte offset)}, type
    F32); the tensor data itself is zeros."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, value in metadata.items():
        head += _string(key) + _value(value)
    for name, (dims, offset) in tensors.items():
        head += _string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        head += struct.pack("<IQ", 0, offset)
    head += b"\0" * (-len(head) % 32)
    path.write_bytes(head + b"\0" * 64)
    return path


def adapter_metadata(base_sha256: str, **more: Any) -> dict[str, Any]:
    return {
        adapters.ARCHITECTURE: "qwen2",
        adapters.GENERAL_TYPE: "adapter",
        adapters.ADAPTER_TYPE: "lora",
        adapters.LORA_ALPHA: 32.0,
        adapters.BASE_SHA256: base_sha256,
        adapters.BASE_NAME: "a-model",
        adapters.RANK: 16,
        adapters.FIM_ORDER: "spm",
        adapters.STEPS: 80,
        adapters.SOURCES: "rich,click",
        **more,
    }
