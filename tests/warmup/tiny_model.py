"""A tiny Qwen2-shaped GGUF model for the warm-up's tests: random weights, the real Qwen vocabulary.

The vocabulary (tokens, merges, special ids) is copied from the shipped model's GGUF, so tokenization and
FIM template detection work as with the real model; the network is two blocks of 64 wide, so
transformers trains it and llama.cpp runs it in a fraction of a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HIDDEN = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2
FFN = 128

_TOKENIZER_STRINGS = ("tokenizer.ggml.model", "tokenizer.ggml.pre")
_TOKENIZER_IDS = (
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.bos_token_id",
)


def write_tiny_qwen2(path: Path, vocabulary_from: Path, seed: int) -> Path:
    """Write a tiny Qwen2 GGUF at `path` with the vocabulary of the GGUF `vocabulary_from`."""
    import gguf

    from fim_lsp.warmup.gguf_file import read_header

    fields = read_header(vocabulary_from, tensors=False).metadata
    tokens = fields["tokenizer.ggml.tokens"]
    vocab = len(tokens)

    writer = gguf.GGUFWriter(str(path), arch="qwen2")
    writer.add_name("tiny-qwen2-test")
    writer.add_block_count(LAYERS)
    writer.add_context_length(4096)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for key in _TOKENIZER_STRINGS:
        writer.add_string(key, fields[key])
    for key in _TOKENIZER_IDS:
        writer.add_uint32(key, fields[key])
    writer.add_bool("tokenizer.ggml.add_bos_token", False)
    writer.add_token_list(tokens)
    writer.add_token_types(fields["tokenizer.ggml.token_type"])
    writer.add_token_merges(fields["tokenizer.ggml.merges"])

    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    head_dim = HIDDEN // HEADS
    writer.add_tensor("token_embd.weight", weight(vocab, HIDDEN))
    writer.add_tensor("output_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    writer.add_tensor("output.weight", weight(vocab, HIDDEN))
    for block in range(LAYERS):
        name = f"blk.{block}."
        writer.add_tensor(name + "attn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        writer.add_tensor(name + "attn_q.weight", weight(HIDDEN, HIDDEN))
        writer.add_tensor(name + "attn_q.bias", weight(HIDDEN))
        writer.add_tensor(name + "attn_k.weight", weight(KV_HEADS * head_dim, HIDDEN))
        writer.add_tensor(name + "attn_k.bias", weight(KV_HEADS * head_dim))
        writer.add_tensor(name + "attn_v.weight", weight(KV_HEADS * head_dim, HIDDEN))
        writer.add_tensor(name + "attn_v.bias", weight(KV_HEADS * head_dim))
        writer.add_tensor(name + "attn_output.weight", weight(HIDDEN, HIDDEN))
        writer.add_tensor(name + "ffn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        writer.add_tensor(name + "ffn_gate.weight", weight(FFN, HIDDEN))
        writer.add_tensor(name + "ffn_up.weight", weight(FFN, HIDDEN))
        writer.add_tensor(name + "ffn_down.weight", weight(HIDDEN, FFN))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
