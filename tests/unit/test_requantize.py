"""The Q4_0 copy of a shipped model made for the CPUs where llama.cpp multiplies it faster: where it goes,
when it is made again, and that a failed quantization leaves nothing behind (llama.cpp's quantizer is
faked here; tests/e2e/test_requantize.py runs the real one)."""

from __future__ import annotations

import json
from pathlib import Path

import llama_cpp
import pytest

from fim_lsp.errors import FimError
from fim_lsp.models import known_models
from fim_lsp.models.requantize import is_current, requantize, requantized_id, requantized_path
from fim_lsp.models.store import cached_path

MANIFEST = known_models()["qwen2.5-coder-0.5b"]


@pytest.fixture
def quantizer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, str]]:
    """A shipped file in a fresh cache, and a quantizer that writes a small GGUF; returns its calls."""
    cached_path(MANIFEST, tmp_path).write_bytes(b"GGUF shipped")
    calls: list[tuple[str, str]] = []

    def quantize(source: bytes, target: bytes, params: object) -> int:
        calls.append((source.decode(), target.decode()))
        Path(target.decode()).write_bytes(b"GGUF q4_0")
        return 0

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", quantize)
    return calls


def test_the_copy_is_made_once_beside_the_shipped_file(quantizer, tmp_path) -> None:
    path = requantize(MANIFEST, tmp_path)
    assert path == requantized_path(MANIFEST, tmp_path)
    assert path.name == MANIFEST.file.removesuffix(".gguf") + ".Q4_0.gguf"
    assert path.read_bytes() == b"GGUF q4_0" and is_current(path, MANIFEST)
    assert quantizer[0][0] == str(cached_path(MANIFEST, tmp_path))
    assert requantize(MANIFEST, tmp_path) == path
    assert len(quantizer) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_a_copy_changed_since_it_was_made_is_made_again(quantizer, tmp_path) -> None:
    path = requantize(MANIFEST, tmp_path)
    path.write_bytes(b"GGUF something else")
    assert not is_current(path, MANIFEST)
    requantize(MANIFEST, tmp_path)
    assert len(quantizer) == 2 and path.read_bytes() == b"GGUF q4_0"


def test_a_copy_of_another_shipped_file_is_made_again(quantizer, tmp_path) -> None:
    path = requantize(MANIFEST, tmp_path)
    record = path.with_name(path.name + ".source.json")
    record.write_text(json.dumps({**json.loads(record.read_text()), "source_sha256": "0" * 64}))
    assert not is_current(path, MANIFEST)
    requantize(MANIFEST, tmp_path)
    assert len(quantizer) == 2 and is_current(path, MANIFEST)


def test_a_failed_quantization_says_so_and_leaves_nothing(monkeypatch, quantizer, tmp_path) -> None:
    monkeypatch.setattr(llama_cpp, "llama_model_quantize", lambda source, target, params: 1)
    with pytest.raises(FimError, match="could not make a Q4_0 copy"):
        requantize(MANIFEST, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST.file]


def test_the_copy_has_its_own_identity_for_the_speeds_kept() -> None:
    assert requantized_id(MANIFEST) != MANIFEST.sha256
    assert requantized_id(MANIFEST) == requantized_id(known_models()["qwen2.5-coder-0.5b"])
    assert requantized_id(MANIFEST) != requantized_id(known_models()["qwen2.5-coder-1.5b"])


def test_a_current_copy_names_the_model_it_was_made_from(quantizer, monkeypatch, tmp_path) -> None:
    from fim_lsp.models.requantize import copied_from

    monkeypatch.setenv("FIM_LSP_CACHE_DIR", str(tmp_path / "cache"))
    cached_path(MANIFEST).parent.mkdir(parents=True)
    cached_path(MANIFEST).write_bytes(b"GGUF shipped")
    path = requantize(MANIFEST)
    assert copied_from(path) == MANIFEST
    assert copied_from(cached_path(MANIFEST)) is None
    elsewhere = tmp_path / path.name
    elsewhere.write_bytes(path.read_bytes())
    assert copied_from(elsewhere) is None
    path.write_bytes(b"GGUF something else")
    assert copied_from(path) is None
