"""llama.cpp's extra CPU buffer types (weights repacked for the CPU's own kernels): the engine asks which
this build offers, and where one of them crashes in some builds (AMX, ggml-org/llama.cpp#20824: a
segmentation fault on the first evaluation on some Xeons) it tries them in a child process first, and
where they failed there it loads the model without any, and still completes."""

from __future__ import annotations

import logging
import platform
from pathlib import Path

import pytest

from fim_lsp.config import Settings
from fim_lsp.engine import llama_cpp as llama_cpp_engine
from fim_lsp.engine import llama_library
from fim_lsp.engine.base import GenerationRequest
from fim_lsp.engine.llama_cpp import LlamaCppEngine
from fim_lsp.engine.llama_library import cpu_extra_buffer_types
from fim_lsp.models import resolve_model
from fim_lsp.prompt import FimPrompt
from tests.e2e.conftest import FAST_MODEL

pytestmark = pytest.mark.model

PROMPT = FimPrompt("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n", "spm")


def cpu_has(flag: str) -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.exists() and flag in cpuinfo.read_text().split()


def load_with_llama_logs(caplog: pytest.LogCaptureFixture) -> tuple[LlamaCppEngine, str]:
    with caplog.at_level(logging.DEBUG, logger="fim_lsp.llama_cpp"):
        engine = LlamaCppEngine.from_settings(Settings(model=FAST_MODEL))
    return engine, caplog.text


def test_the_cpu_backend_names_its_extra_buffer_types() -> None:
    names = cpu_extra_buffer_types()
    assert all(isinstance(name, str) and name for name in names)
    if platform.machine() == "x86_64" and cpu_has("avx2"):
        assert "CPU_REPACK" in names  # llama.cpp repacks 4-bit weights for AVX2 and AVX-512


@pytest.fixture
def verdicts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh file for the verdicts on the extra buffer types (the model cache stays the real one)."""
    path = tmp_path / "buffers.json"
    monkeypatch.setattr(llama_library, "_verdicts_file", lambda: path)
    return path


def test_where_amx_crashed_in_the_child_the_weights_stay_in_plain_buffers_and_the_model_completes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, verdicts: Path
) -> None:
    monkeypatch.setattr(llama_cpp_engine, "cpu_extra_buffer_types", lambda: ["AMX", "CPU_REPACK"])
    monkeypatch.setattr(llama_library, "_probe", lambda model_path: False)
    engine, log = load_with_llama_logs(caplog)
    try:
        assert "AMX kernels crash on this CPU" in log
        assert "CPU_REPACK model buffer" not in log and "AMX model buffer" not in log
        generation = engine.generate(GenerationRequest(prompt=PROMPT, max_tokens=8, write_something=True))
        assert generation.text.strip()
    finally:
        engine.close()


def test_the_child_process_runs_this_builds_extra_buffer_types_here(verdicts: Path) -> None:
    # Whatever this build offers (AMX where scripts/install-llama.sh built it for an AMX CPU, else
    # the AVX repacking), its kernels run: the probe evaluates a prompt with them and exits 0.
    assert llama_library._probe(resolve_model(FAST_MODEL)) is True


def test_a_probe_with_a_model_that_does_not_load_cannot_tell(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    assert llama_library._probe(broken) is None


def test_where_amx_runs_the_weights_go_to_it(caplog: pytest.LogCaptureFixture, verdicts: Path) -> None:
    if "AMX" not in cpu_extra_buffer_types():
        pytest.skip("this llama.cpp build offers no AMX on this CPU")
    engine, log = load_with_llama_logs(caplog)
    try:
        assert "AMX model buffer" in log
        generation = engine.generate(GenerationRequest(prompt=PROMPT, max_tokens=8, write_something=True))
        assert generation.text.strip()
    finally:
        engine.close()


def test_without_amx_the_weights_are_repacked_for_this_cpu(caplog: pytest.LogCaptureFixture) -> None:
    if "AMX" in cpu_extra_buffer_types():
        pytest.skip("this llama.cpp build offers AMX on this CPU")
    engine, log = load_with_llama_logs(caplog)
    engine.close()
    assert "crashes on some CPUs" not in log
    if "CPU_REPACK" in cpu_extra_buffer_types():
        assert "CPU_REPACK model buffer" in log
