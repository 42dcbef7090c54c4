"""The `auto` model: the best installed model whose useful prompt this machine evaluates in time."""

from __future__ import annotations

import pytest

from fim_lsp import fit, models
from fim_lsp.config import Settings
from fim_lsp.models import known_models

BEST, FAST = "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    """Both shipped models installed, with the speeds each test sets (prompt tokens a second)."""
    speeds: dict[str, fit.Speed] = {}
    manifests = known_models()
    monkeypatch.setattr(fit, "installed_models", lambda: [manifests[BEST], manifests[FAST]])
    monkeypatch.setattr(fit, "speed_of", lambda manifest, threads, measure=True: speeds.get(manifest.name))
    monkeypatch.setattr(fit, "auto_weights", lambda manifest, prepare: fit.Weights(manifest.sha256, None))
    return speeds


def test_the_best_model_is_chosen_when_a_useful_prompt_fits_the_time_budget(machine):
    machine.update({BEST: fit.Speed(135, 27), FAST: fit.Speed(250, 40)})
    choice = fit.choose_model(Settings(workspace_context=False))
    assert choice.model == BEST
    # 135 tokens/s for 60% of 15 s: 1,215 tokens, in steps of 128.
    assert choice.budget == 1152
    assert "prompt 135 tokens/s" in choice.reason and "1152 tokens" in choice.reason


def test_the_fast_model_is_chosen_where_the_best_one_could_read_too_little_in_time(machine):
    # 50 tokens/s for 60% of 15 s: 450 tokens, 384 in steps of 128, under `MIN_USEFUL_BUDGET`.
    machine.update({BEST: fit.Speed(50, 9), FAST: fit.Speed(150, 30)})
    choice = fit.choose_model(Settings(workspace_context=False))
    assert (choice.model, choice.budget) == (FAST, 1280)


def test_where_no_model_fits_the_fastest_is_chosen(machine):
    machine.update({BEST: fit.Speed(20, 5), FAST: fit.Speed(40, 9)})
    choice = fit.choose_model(Settings())
    assert choice.model == FAST and "no model fits" in choice.reason


def test_a_longer_time_budget_lets_the_best_model_in(machine):
    machine.update({BEST: fit.Speed(50, 9), FAST: fit.Speed(150, 30)})
    choice = fit.choose_model(Settings(workspace_context=False, time_budget_ms=30_000))
    assert (choice.model, choice.budget) == (BEST, 896)


def test_a_model_named_in_the_settings_is_taken_as_named(machine):
    choice = fit.choose_model(Settings(model=FAST, context_budget=900))
    assert (choice.model, choice.budget, choice.speed) == (FAST, 900, None)


def test_a_measured_speed_is_remembered_per_model_and_machine(monkeypatch, tmp_path):
    monkeypatch.setenv("FIM_LSP_CACHE_DIR", str(tmp_path))
    manifest = known_models()[FAST]
    assert fit.known_speed(manifest, threads=2) is None
    fit._write_speed(fit.machine_key(manifest.sha256, 2), fit.Measurement(fit.Speed(250.0, 40.0)))
    assert fit.known_speed(manifest, threads=2) == fit.Speed(250.0, 40.0)
    assert fit.known_speed(manifest, threads=1) is None  # another thread count is another measurement
    assert fit.known_speed(known_models()[BEST], threads=2) is None


def test_the_fastest_speed_measured_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("FIM_LSP_CACHE_DIR", str(tmp_path))
    manifest = known_models()[FAST]
    key = fit.machine_key(manifest.sha256, 2)
    fit._write_speed(key, fit.Measurement(fit.Speed(80.0, 20.0)))  # measured while other work ran
    fit._write_speed(key, fit.Measurement(fit.Speed(250.0, 18.0)))
    fit._write_speed(key, fit.Measurement(fit.Speed(120.0, 40.0)))
    assert fit.known_speed(manifest, threads=2) == fit.Speed(250.0, 40.0)


def test_a_model_timed_on_a_busy_machine_is_timed_again_at_later_starts(monkeypatch, tmp_path):
    monkeypatch.setenv("FIM_LSP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fit, "auto_weights", lambda manifest, prepare: fit.Weights(manifest.sha256, None))
    monkeypatch.setattr(models, "resolve_model", lambda name: tmp_path / f"{name}.gguf")
    manifest = known_models()[BEST]
    # The host took half the CPU each time: timed once, then again at each of `BUSY_RETRIES` starts.
    rates = iter([44.0, 80.0, 61.0, 70.0, 99.0])
    timed: list[float] = []

    def measure(path, threads):
        timed.append(next(rates))
        return fit.Measurement(fit.Speed(timed[-1], 7.0), cpu_share=0.5)

    monkeypatch.setattr(fit, "measure_speed", measure)
    for _start in range(fit.BUSY_RETRIES + 3):
        speed = fit.speed_of(manifest, 2)
    assert timed == [44.0, 80.0, 61.0, 70.0]
    assert speed == fit.known_speed(manifest, 2) == fit.Speed(80.0, 7.0)  # the fastest of them


def test_a_model_timed_on_a_quiet_machine_stands(monkeypatch, tmp_path):
    monkeypatch.setenv("FIM_LSP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fit, "auto_weights", lambda manifest, prepare: fit.Weights(manifest.sha256, None))
    monkeypatch.setattr(models, "resolve_model", lambda name: tmp_path / f"{name}.gguf")
    manifest = known_models()[BEST]
    shares = iter([0.4, 0.95])
    timed: list[float] = []

    def measure(path, threads):
        timed.append(next(shares))
        return fit.Measurement(fit.Speed(80.0, 7.0), cpu_share=timed[-1])

    monkeypatch.setattr(fit, "measure_speed", measure)
    for _start in range(4):
        fit.speed_of(manifest, 2)
    assert timed == [0.4, 0.95]  # busy, then quiet: it stands
    assert not fit.Measurement(fit.Speed(80.0, 7.0), cpu_share=None).busy  # a GPU did the work


@pytest.fixture
def amx(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A machine whose llama.cpp offers AMX (whether it runs: the test sets `runs`), a fresh cache, and
    a Q4_0 copy that `requantize` makes without a quantizer."""
    from fim_lsp import models
    from fim_lsp.engine import llama_library
    from fim_lsp.models import requantize

    monkeypatch.setenv("FIM_LSP_CACHE_DIR", str(tmp_path))
    state = {"runs": True}
    monkeypatch.setattr(llama_library, "cpu_extra_buffer_types", lambda: ["AMX", "CPU_REPACK"])
    monkeypatch.setattr(llama_library, "amx_runs_here", lambda probe_model: state["runs"])
    monkeypatch.setattr(models, "resolve_model", lambda name: tmp_path / f"{name}.gguf")
    monkeypatch.setattr(requantize, "requantize", lambda manifest: requantize.requantized_path(manifest))
    return state


def test_where_amx_runs_auto_loads_the_q4_0_copy_and_keeps_its_speed_apart(amx, monkeypatch) -> None:
    from fim_lsp.models.requantize import requantized_id, requantized_path

    manifest = known_models()[FAST]
    weights = fit.auto_weights(manifest, prepare=True)
    assert weights == fit.Weights(requantized_id(manifest), requantized_path(manifest))
    timed: list = []
    monkeypatch.setattr(
        fit, "measure_speed", lambda path, threads: timed.append(path) or fit.Measurement(fit.Speed(200, 30))
    )
    assert fit.speed_of(manifest, 2) == fit.Speed(200, 30)
    assert timed == [requantized_path(manifest)]
    assert fit.known_speed(manifest, 2) is None  # the shipped file's speed is another one


def test_where_amx_does_not_run_auto_loads_the_shipped_file(amx) -> None:
    amx["runs"] = False
    manifest = known_models()[FAST]
    assert fit.auto_weights(manifest, prepare=True) == fit.Weights(manifest.sha256, None)


def test_where_the_copy_cannot_be_made_auto_loads_the_shipped_file(amx, monkeypatch) -> None:
    from fim_lsp.errors import FimError
    from fim_lsp.models import requantize

    def fail(manifest):
        raise FimError("no room")

    monkeypatch.setattr(requantize, "requantize", fail)
    manifest = known_models()[FAST]
    assert fit.auto_weights(manifest, prepare=True) == fit.Weights(manifest.sha256, None)
