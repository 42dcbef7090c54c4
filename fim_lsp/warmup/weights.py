"""The model of a GGUF file as a transformers model, its weights de-quantized from the file itself.

transformers can load a GGUF file itself (`from_pretrained(folder, gguf_file=...)`), but it parses the
header with gguf-py's reader, twice: 45-90 s for the 0.5B here, nearly all of it in the vocabulary's
300,000 strings. Here the header is read by `gguf_file` (about a second), the configuration built from
it, and each tensor de-quantized with gguf-py's `quants.dequantize` straight into the model's
parameter, so memory never holds more than the model and one tensor. The names map through gguf-py's
own table of GGUF and transformers names. The adapter then trains against exactly the weights llama.cpp
runs (what the tests check: the same logits from both).
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from fim_lsp.warmup.gguf_file import Header, TensorInfo, read_header

#: transformers' model type for each GGUF architecture this module can build.
MODEL_TYPES = {"qwen2": "qwen2"}


def architecture_of(header: Header) -> tuple[str, int]:
    """The GGUF architecture name and block count."""
    architecture = str(header.metadata.get("general.architecture", ""))
    if architecture not in MODEL_TYPES:
        raise ValueError(
            f"training {architecture or 'this'} models is not supported (only {', '.join(MODEL_TYPES)})"
        )
    return architecture, int(header.metadata[f"{architecture}.block_count"])


def config_of(header: Header) -> Any:
    """The transformers configuration of a Qwen2 GGUF."""
    from transformers import Qwen2Config

    architecture, blocks = architecture_of(header)
    meta = header.metadata

    def key(name: str) -> Any:
        return meta[f"{architecture}.{name}"]

    embeddings = header.tensors["token_embd.weight"]
    heads = int(key("attention.head_count"))
    return Qwen2Config(
        vocab_size=int(embeddings.dims[1]),
        hidden_size=int(key("embedding_length")),
        intermediate_size=int(key("feed_forward_length")),
        num_hidden_layers=blocks,
        num_attention_heads=heads,
        num_key_value_heads=int(meta.get(f"{architecture}.attention.head_count_kv", heads)),
        max_position_embeddings=int(key("context_length")),
        rms_norm_eps=float(key("attention.layer_norm_rms_epsilon")),
        rope_parameters={
            "rope_type": "default",
            "rope_theta": float(meta.get(f"{architecture}.rope.freq_base", 10000.0)),
        },
        tie_word_embeddings="output.weight" not in header.tensors,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        use_cache=False,
    )


def read_tensor(data: np.ndarray, info: TensorInfo) -> np.ndarray:
    """A tensor's values as float32, shaped as numpy sees ggml's (rows, row length)."""
    import gguf

    kind = gguf.GGMLQuantizationType(info.ggml_type)
    block, size = gguf.GGML_QUANT_SIZES[kind]
    count = int(np.prod(info.dims))
    raw = data[info.offset : info.offset + count // block * size]
    shape = tuple(reversed(info.dims))
    if kind == gguf.GGMLQuantizationType.F32:
        return raw.view(np.float32).reshape(shape)
    if kind == gguf.GGMLQuantizationType.F16:
        return raw.view(np.float16).astype(np.float32).reshape(shape)
    rows = count // info.dims[0]
    return gguf.quants.dequantize(raw.reshape(rows, -1), kind).reshape(shape)


def gguf_name_map(architecture: str, blocks: int) -> Any:
    import gguf

    by_name = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    return gguf.get_tensor_name_map(by_name[architecture], blocks)


def load_model(model_path: Path, dtype: str = "float32", device: str = "cpu") -> Any:
    """A transformers causal LM with the weights of the GGUF file at `model_path` (Qwen2 only)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM

    header = read_header(model_path)
    architecture, blocks = architecture_of(header)
    config = config_of(header)
    with _skipping_initialization():
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    names = gguf_name_map(architecture, blocks)
    data = np.memmap(model_path, dtype=np.uint8, mode="r")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if config.tie_word_embeddings and name == "lm_head.weight":
                continue
            gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
            if gguf_name not in header.tensors:
                raise ValueError(f"{model_path.name} has no tensor for {name}")
            values = read_tensor(data, header.tensors[gguf_name])
            if tuple(values.shape) != tuple(parameter.shape):
                raise ValueError(f"{gguf_name} is {values.shape}; {name} wants {tuple(parameter.shape)}")
            if not values.flags.writeable:  # a view of the mapped file (F32 tensors): torch wants its own
                values = values.copy()
            parameter.copy_(torch.from_numpy(values))
            del values  # one de-quantized tensor at a time (the embeddings alone are 545 MB in float32)
    if config.tie_word_embeddings:
        model.tie_weights()
    return model.to(device)


def _skipping_initialization() -> Any:
    """transformers' context that skips initializing weights about to be overwritten; where it has none
    (an older transformers), initializing first only costs time."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:
        return nullcontext()
    return no_init_weights()
