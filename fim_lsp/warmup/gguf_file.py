"""Reading a GGUF file's header: its metadata and where each tensor lies (pure Python, no dependencies).

The server reads adapters' metadata with it (`adapters`), and the warm-up finds the model's tensors
with it (`weights`). gguf-py's reader does the same but builds a numpy view per field part: on a Qwen
vocabulary (151,936 tokens and as many merges) that takes 30-60 s, where this takes about a second.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

# GGUF value types (gguf.h): the fixed-size ones by their struct format, then string (8) and array (9).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_MAX_ITEMS = 1 << 24
_MAX_STRING = 1 << 24
DEFAULT_ALIGNMENT = 32


@dataclass(frozen=True)
class TensorInfo:
    """A tensor of a GGUF file: ggml's dimensions (the row length first), type, and byte offset from the
    start of the file."""

    name: str
    dims: tuple[int, ...]
    ggml_type: int
    offset: int


@dataclass(frozen=True)
class Header:
    metadata: dict[str, Any]
    tensors: dict[str, TensorInfo]


class _Reader:
    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    def read(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        data = self.handle.read(size)
        if len(data) != size:
            raise ValueError("file ends inside its header")
        return struct.unpack("<" + fmt, data)[0]

    def string(self) -> str:
        length = self.read("Q")
        if length > _MAX_STRING:
            raise ValueError(f"a string of {length} bytes in the header")
        data = self.handle.read(length)
        if len(data) != length:
            raise ValueError("file ends inside its header")
        return data.decode("utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.read(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item_kind, count = self.read("I"), self.read("Q")
            if count > _MAX_ITEMS:
                raise ValueError(f"an array of {count} items in the header")
            if item_kind in _SCALARS:
                fmt = _SCALARS[item_kind]
                data = self.handle.read(struct.calcsize("<" + fmt) * count)
                return list(struct.unpack(f"<{count}{fmt}", data))
            return [self.value(item_kind) for _ in range(count)]
        raise ValueError(f"unknown value type {kind}")


def read_header(path: Path, *, tensors: bool = True) -> Header:
    """The metadata (and, with `tensors`, the tensor table) of a GGUF file, version 2 or 3. ValueError
    (or struct.error) when it is no GGUF file."""
    with path.open("rb") as handle:
        reader = _Reader(handle)
        if handle.read(4) != b"GGUF":
            raise ValueError("not a GGUF file")
        version = reader.read("I")
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version}, not 2 or 3")
        tensor_count, key_count = reader.read("Q"), reader.read("Q")
        if key_count > _MAX_ITEMS or tensor_count > _MAX_ITEMS:
            raise ValueError(f"{key_count} metadata keys and {tensor_count} tensors")
        metadata = {}
        for _ in range(key_count):
            key = reader.string()
            metadata[key] = reader.value(reader.read("I"))
        table: dict[str, TensorInfo] = {}
        if tensors:
            infos = []
            for _ in range(tensor_count):
                name = reader.string()
                dims = tuple(reader.read("Q") for _ in range(reader.read("I")))
                infos.append((name, dims, reader.read("I"), reader.read("Q")))
            alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT))
            start = -(-handle.tell() // alignment) * alignment
            table = {name: TensorInfo(name, dims, kind, start + offset) for name, dims, kind, offset in infos}
    return Header(metadata, table)
