"""The Q4_0 copy `auto` loads where llama.cpp multiplies it faster (AMX; the 0.5B on AVX2), made by
llama.cpp's own quantizer from the shipped 0.5B: a GGUF of Q4_0 weights that loads and completes (made on
every machine, so that the path is tested where no copy is loaded too). And the manifests' claim that a
copy is no faster where weights are repacked, checked against the shipped files' tensor types."""

from __future__ import annotations

from pathlib import Path

import pytest

from fim_lsp.engine import llama_library
from fim_lsp.engine.base import GenerationRequest
from fim_lsp.engine.llama_cpp import LlamaCppEngine
from fim_lsp.models import get_manifest, resolve_model
from fim_lsp.models.requantize import is_current, requantize
from fim_lsp.models.store import cached_path
from fim_lsp.prompt import FimPrompt
from tests.e2e.conftest import FAST_MODEL

pytestmark = pytest.mark.model

#: `LLAMA_FTYPE_MOSTLY_Q4_0` and `LLAMA_FTYPE_MOSTLY_Q4_K_M` in llama.h, as GGUF's `general.file_type`.
Q4_0, Q4_K_M = "2", "15"


def test_the_q4_0_copy_of_the_small_model_loads_and_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where AMX is offered, loading tries it: the verdict goes to this test's folder, not the cache.
    monkeypatch.setattr(llama_library, "_verdicts_file", lambda: tmp_path / "buffers.json")
    manifest = get_manifest(FAST_MODEL)
    cached_path(manifest, tmp_path).symlink_to(resolve_model(FAST_MODEL))
    path = requantize(manifest, tmp_path)
    assert is_current(path, manifest)
    assert path.stat().st_size < manifest.size  # Q4_0 keeps no 6-bit tensors, as Q4_K_M does
    engine = LlamaCppEngine(path, n_ctx=1024, prompt_memory_mb=16)
    try:
        assert engine._model.metadata()["general.file_type"] == Q4_0
        prompt = FimPrompt("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n", "psm")
        generation = engine.generate(GenerationRequest(prompt=prompt, max_tokens=8, write_something=True))
        assert generation.text.strip()
    finally:
        engine.close()


#: ggml's types that llama.cpp repacks for AVX2 and AVX-512 as it does Q4_0: Q4_0, Q4_K, IQ4_NL.
_REPACKED_TYPES = {2, 12, 20}


@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
def test_the_manifest_says_a_copy_is_no_faster_where_most_weights_are_repacked_already(name: str) -> None:
    import math

    from fim_lsp.warmup.gguf_file import read_header

    header = read_header(resolve_model(name))
    sizes: dict[bool, int] = {True: 0, False: 0}
    for tensor_name, tensor in header.tensors.items():
        if len(tensor.dims) == 2 and not tensor_name.startswith("token_embd"):
            sizes[tensor.ggml_type in _REPACKED_TYPES] += math.prod(tensor.dims)
    repacked_share = sizes[True] / (sizes[True] + sizes[False])
    assert get_manifest(name).q4_0_copy_where_repacked == (repacked_share < 0.5), repacked_share


def test_an_adapter_trained_on_the_shipped_file_acts_on_its_q4_0_copy_as_on_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fim-lsp warmup` trains on the shipped file and `auto` may load its copy: the adapter is accepted
    there and moves the copy's logits as it moves the shipped file's (a LoRA adds its product to what
    the base weights compute). A random adapter of the warm-up's rank on every weight it adapts."""
    pytest.importorskip("gguf")
    import llama_cpp
    import numpy as np

    from fim_lsp.warmup.adapters import AdapterRecord, check_adapter
    from fim_lsp.warmup.export import base_architecture, write_adapter
    from fim_lsp.warmup.gguf_file import read_header

    monkeypatch.setattr(llama_library, "_verdicts_file", lambda: tmp_path / "buffers.json")
    manifest = get_manifest(FAST_MODEL)
    shipped = resolve_model(FAST_MODEL)
    cached_path(manifest, tmp_path).symlink_to(shipped)
    copy = requantize(manifest, tmp_path)
    architecture, blocks = base_architecture(shipped)
    hidden = int(read_header(shipped, tensors=False).metadata[f"{architecture}.embedding_length"])
    rank = 16
    rng = np.random.default_rng(0)
    lora = {}
    for block in range(blocks):
        for module in ("self_attn.q_proj", "self_attn.o_proj"):
            a = rng.normal(0, hidden**-0.5, (rank, hidden)).astype(np.float32)
            b = rng.normal(0, 0.02, (hidden, rank)).astype(np.float32)
            lora[f"model.layers.{block}.{module}"] = (a, b)
    record = AdapterRecord(manifest.sha256, FAST_MODEL, rank, 2.0 * rank, "spm", 1024, 1, 1, "random")
    adapter = write_adapter(tmp_path / "adapter.gguf", lora, architecture, blocks, record)
    assert check_adapter(adapter, copy).base_sha256 == manifest.sha256
    text = "def mean(values):\n    total = sum(values)\n    return total / len(values)\n"

    def logits(model: Path, with_adapter: bool) -> np.ndarray:
        llm = llama_cpp.Llama(
            str(model),
            n_ctx=256,
            logits_all=True,
            verbose=False,
            lora_path=str(adapter) if with_adapter else None,
        )
        try:
            tokens = llm.tokenize(text.encode(), add_bos=False)
            llm.eval(tokens)
            return np.array(llm.scores[: len(tokens)], dtype=np.float32)
        finally:
            llm.close()

    on_shipped = logits(shipped, True) - logits(shipped, False)
    on_copy = logits(copy, True) - logits(copy, False)
    assert np.abs(on_shipped).mean() > 0.1  # the adapter does move the logits
    cosine = float(np.sum(on_shipped * on_copy) / np.linalg.norm(on_shipped) / np.linalg.norm(on_copy))
    # The copy's rounding changes the activations the adapter sees, so the two changes differ a little
    # (cosine 0.84-0.92 measured on AVX2); an adapter applied to other weights would change unrelated ones.
    assert cosine > 0.6, cosine
