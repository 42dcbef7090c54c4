"""Which of llama.cpp's extra CPU buffer types the engine lets weights go to: those known to crash in
some builds only once they were tried here (the child process is faked; tests/e2e/test_engine_buffers.py
runs the real one); and at which level llama.cpp's log lines reach ours."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from fim_lsp.engine import llama_library
from fim_lsp.engine.llama_library import extra_buffers_are_safe, extra_buffers_work


@pytest.mark.parametrize(
    ("offered", "safe"),
    [
        ([], True),
        (["CPU_REPACK"], True),
        (["AMX", "CPU_REPACK"], False),  # ggml-org/llama.cpp#20824
        (["AMX"], False),
    ],
)
def test_extra_buffers_are_refused_where_one_is_known_to_crash(offered: list[str], safe: bool) -> None:
    assert extra_buffers_are_safe(offered) is safe


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """A fresh cache for the verdicts, and the models probed with (see `probing`)."""
    monkeypatch.setenv("FIM_LSP_CACHE_DIR", str(tmp_path))
    return []


def probing(monkeypatch: pytest.MonkeyPatch, tried: list[Path], answer: bool | None) -> None:
    """Make each probe answer `answer`, recording the model it was given in `tried`."""

    def probe(model_path: Path) -> bool | None:
        tried.append(model_path)
        return answer

    monkeypatch.setattr(llama_library, "_probe", probe)


def test_buffer_types_not_known_to_crash_are_used_untried(monkeypatch, probes) -> None:
    probing(monkeypatch, probes, False)
    assert extra_buffers_work(Path("model.gguf"), ["CPU_REPACK"]) is True
    assert probes == []


@pytest.mark.parametrize("answer", [True, False])
def test_amx_is_tried_once_per_build_and_cpu_and_the_verdict_kept(monkeypatch, probes, answer) -> None:
    probing(monkeypatch, probes, answer)
    assert extra_buffers_work(Path("a.gguf"), ["AMX", "CPU_REPACK"]) is answer
    assert extra_buffers_work(Path("b.gguf"), ["AMX", "CPU_REPACK"]) is answer
    assert probes == [Path("a.gguf")]
    assert llama_library.tried_verdict() is answer


def test_a_probe_that_cannot_tell_refuses_amx_this_time_and_is_tried_again(monkeypatch, probes) -> None:
    probing(monkeypatch, probes, None)  # say the model would not load
    assert extra_buffers_work(Path("a.gguf"), ["AMX"]) is False
    assert llama_library.tried_verdict() is None
    probing(monkeypatch, probes, True)
    assert extra_buffers_work(Path("b.gguf"), ["AMX"]) is True
    assert probes == [Path("a.gguf"), Path("b.gguf")]


def test_a_damaged_verdicts_file_is_tried_again(monkeypatch, probes, tmp_path) -> None:
    (tmp_path / "buffers.json").write_text("{not json")
    probing(monkeypatch, probes, True)
    assert extra_buffers_work(Path("a.gguf"), ["AMX"]) is True
    assert json.loads((tmp_path / "buffers.json").read_text()) == {llama_library._library_key(): True}


def test_llama_cpp_warnings_are_warnings_but_for_those_that_say_nothing_is_wrong() -> None:
    lora = "lora for 'blk.0.attn_k.weight' cannot use buft 'CPU_REPACK', fallback to CPU"
    assert llama_library.log_severity(3, lora) == logging.DEBUG
    vocabulary = "load: control-looking token: 128247 '</s>' was not control-type; this is probably a bug"
    assert llama_library.log_severity(3, vocabulary) == logging.DEBUG
    assert llama_library.log_severity(3, "llama_model_load: vocab only") == logging.WARNING
    assert llama_library.log_severity(4, "decode: failed to decode") == logging.ERROR
    assert llama_library.log_severity(2, "llama_context: n_ctx = 4096") == logging.DEBUG
    llama_library.aborting.set()
    try:
        assert llama_library.log_severity(4, "decode: failed to decode") == logging.DEBUG
    finally:
        llama_library.aborting.clear()
