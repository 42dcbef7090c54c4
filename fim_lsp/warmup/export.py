"""Writing a trained LoRA as a llama.cpp GGUF adapter.

llama.cpp's LoRA format is a GGUF file of `general.type = adapter`, `adapter.type = lora` and
`adapter.lora.alpha`, holding for each adapted weight `<gguf name>.lora_a` (rank x inputs) and
`<gguf name>.lora_b` (outputs x rank), the weight's GGUF name being the one the base model's file uses
(`blk.3.attn_q.weight`). That is all `convert_lora_to_gguf.py` writes for a plain LoRA; doing it here with
the `gguf` package's own name map saves its checkout and the base `config.json` it wants.

Only architectures whose converter stores the attention weights as transformers has them are accepted:
for LLaMA-style ones, llama.cpp's converter permutes the query and key rows, and an adapter would need
the same permutation.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fim_lsp.warmup import adapters
from fim_lsp.warmup.adapters import AdapterRecord

#: Architectures (GGUF names) whose weights llama.cpp keeps in transformers' layout.
UNPERMUTED_ARCHITECTURES = frozenset({"qwen2"})
#: How an adapter's matrices may be stored. float16 is half the size; llama.cpp then multiplies in
#: float16 (the activations converted too), which moves the 1.5B's likeliest token at about 2% of
#: positions against float32 (docs/design/warmup.md, "Stored smaller").
WEIGHT_TYPES = {"float32": np.float32, "float16": np.float16}


def base_architecture(model_path: Path) -> tuple[str, int]:
    """The GGUF architecture name and block count of a model file."""
    from fim_lsp.warmup.gguf_file import read_header

    metadata = read_header(model_path, tensors=False).metadata
    architecture = str(metadata["general.architecture"])
    return architecture, int(metadata[f"{architecture}.block_count"])


def gguf_names(module_names: list[str], architecture: str, blocks: int) -> dict[str, str]:
    """The GGUF weight name of each transformers module name (`model.layers.3.self_attn.q_proj` ->
    `blk.3.attn_q.weight`); ValueError for an architecture or module the map does not know."""
    import gguf

    if architecture not in UNPERMUTED_ARCHITECTURES:
        known = ", ".join(sorted(UNPERMUTED_ARCHITECTURES))
        raise ValueError(f"adapters for {architecture} models are not supported (only {known})")
    by_name = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    mapping = gguf.get_tensor_name_map(by_name[architecture], blocks)
    names = {}
    for module in module_names:
        name = mapping.get_name(module + ".weight", try_suffixes=(".weight",))
        if name is None:
            raise ValueError(f"no GGUF name for {module} in a {architecture} model")
        names[module] = name
    return names


def write_adapter(
    path: Path,
    lora: Mapping[str, tuple[np.ndarray, np.ndarray]],
    architecture: str,
    blocks: int,
    record: AdapterRecord,
    weight_type: str = "float32",
) -> Path:
    """Write `lora` ({module name: (A, B)}, A rank x inputs and B outputs x rank) as a GGUF adapter at
    `path`, its matrices in `weight_type` (see WEIGHT_TYPES), atomically (a reader sees the old file or
    the whole new one)."""
    import gguf

    if weight_type not in WEIGHT_TYPES:
        raise ValueError(f"adapter weights are {' or '.join(WEIGHT_TYPES)}, not {weight_type!r}")
    names = gguf_names(sorted(lora), architecture, blocks)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(str(temporary), arch=architecture)
    try:
        _write(writer, lora, names, record, WEIGHT_TYPES[weight_type])
        writer.close()
        os.replace(temporary, path)
    finally:
        writer.close()  # a second close does nothing
        temporary.unlink(missing_ok=True)
    return path


def _write(
    writer: Any,
    lora: Mapping[str, tuple[np.ndarray, np.ndarray]],
    names: dict[str, str],
    record: AdapterRecord,
    dtype: Any,
) -> None:
    """llama.cpp's adapter keys, ours, then the tensors."""
    writer.add_string(adapters.GENERAL_TYPE, "adapter")
    writer.add_string(adapters.ADAPTER_TYPE, "lora")
    writer.add_float32(adapters.LORA_ALPHA, float(record.alpha))
    text: dict[str, Any] = {
        adapters.BASE_SHA256: record.base_sha256,
        adapters.BASE_NAME: record.base_name,
        adapters.FIM_ORDER: record.fim_order,
        adapters.SOURCES: record.sources,
        adapters.CREATED: datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    for key, value in text.items():
        writer.add_string(key, value)
    for key, number in (
        (adapters.RANK, record.rank),
        (adapters.CONTEXT_BUDGET, record.context_budget),
        (adapters.STEPS, record.steps),
        (adapters.TOKENS, record.tokens),
    ):
        writer.add_uint64(key, int(number))
    for module in sorted(lora):
        a, b = lora[module]
        if a.shape[0] != b.shape[1]:
            raise ValueError(f"{module}: A is {a.shape} and B {b.shape}; their ranks differ")
        writer.add_tensor(f"{names[module]}.lora_a", np.ascontiguousarray(a, dtype=dtype))
        writer.add_tensor(f"{names[module]}.lora_b", np.ascontiguousarray(b, dtype=dtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
