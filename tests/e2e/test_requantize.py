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
