"""The `auto` model: the best installed model whose useful prompt this machine evaluates in time."""

from __future__ import annotations

import pytest

from fim_lsp import fit, models
from fim_lsp.config import Settings
from fim_lsp.models import known_models
from tests.unit.gguf_samples import adapter_metadata, write_gguf

BEST, FAST = "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    """Both shipped models installed, with the speeds each test sets (prompt tokens a second)."""
    speeds: dict[str, fit.Speed] = {}
    manifests = known_models()
    monkeypatch.setattr(fit, "installed_models", lambda: [manifests[BEST], manifests[FAST]])
    monkeypatch.setattr(
        fit,
        "timed_weights",
        lambda manifest, threads, measure=True: [
            (fit.Weights(manifest.sha256, None), speeds.get(manifest.name))
        ],
    )
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
    monkeypatch.setattr(fit, "weight_options", lambda manifest, prepare: [fit.Weights(manifest.sha256, None)])
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
        speed = _loaded(manifest)[1]
    assert timed == [44.0, 80.0, 61.0, 70.0]
    assert speed == fit.known_speed(manifest, 2) == fit.Speed(80.0, 7.0)  # the fastest of them


def test_a_model_timed_on_a_quiet_machine_stands(monkeypatch, tmp_path):
    monkeypatch.setenv("FIM_LSP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(fit, "weight_options", lambda manifest, prepare: [fit.Weights(manifest.sha256, None)])
    monkeypatch.setattr(models, "resolve_model", lambda name: tmp_path / f"{name}.gguf")
    manifest = known_models()[BEST]
    shares = iter([0.4, 0.95])
    timed: list[float] = []

    def measure(path, threads):
        timed.append(next(shares))
        return fit.Measurement(fit.Speed(80.0, 7.0), cpu_share=timed[-1])

    monkeypatch.setattr(fit, "measure_speed", measure)
    for _start in range(4):
        _loaded(manifest)[1]
    assert timed == [0.4, 0.95]  # busy, then quiet: it stands
    assert not fit.Measurement(fit.Speed(80.0, 7.0), cpu_share=None).busy  # a GPU did the work


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """A machine whose llama.cpp offers the buffer types the test sets (`offered`; AMX runs where it is
    offered unless `amx_runs` says not), a fresh cache, a Q4_0 copy that `requantize` makes without a
    quantizer, and timings the test sets per file (`rates`: prompt tokens a second), each one noted."""
    from fim_lsp import models
    from fim_lsp.engine import llama_library
    from fim_lsp.models import requantize

    monkeypatch.setenv("FIM_LSP_CACHE_DIR", str(tmp_path))
    state: dict = {"offered": ["AMX", "CPU_REPACK"], "amx_runs": True, "rates": {}, "timed": []}
    monkeypatch.setattr(llama_library, "cpu_extra_buffer_types", lambda: state["offered"])
    monkeypatch.setattr(llama_library, "amx_runs_here", lambda probe_model: state["amx_runs"])
    monkeypatch.setattr(models, "resolve_model", lambda name: tmp_path / f"{name}.gguf")

    def make_copy(manifest):
        path = requantize.requantized_path(manifest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        return path

    monkeypatch.setattr(requantize, "requantize", make_copy)

    def measure(path, threads):
        state["timed"].append(path)
        return fit.Measurement(fit.Speed(state["rates"][path.name], 20.0))

    monkeypatch.setattr(fit, "measure_speed", measure)
    return state


def _loaded(manifest):
    return fit.loaded_weights(fit.timed_weights(manifest, 2))


def _files(manifest):
    from fim_lsp.models.requantize import requantized_id, requantized_path

    shipped = fit.Weights(manifest.sha256, None)
    return shipped, fit.Weights(requantized_id(manifest), requantized_path(manifest))


def test_where_amx_runs_auto_loads_the_q4_0_copy_and_keeps_its_speed_apart(cpu) -> None:
    manifest = known_models()[FAST]
    _, copy = _files(manifest)
    cpu["rates"] = {copy.path.name: 200.0}
    assert fit.weight_options(manifest, prepare=True) == [copy]
    assert _loaded(manifest)[0] == copy
    assert _loaded(manifest)[1] == fit.Speed(200, 20)
    assert cpu["timed"] == [copy.path]  # timed once, then kept
    assert fit.known_speed(manifest, 2) is None  # the shipped file's speed is another one


def test_where_amx_does_not_run_auto_loads_the_shipped_file(cpu) -> None:
    cpu["amx_runs"] = False
    manifest = known_models()[FAST]
    assert fit.weight_options(manifest, prepare=True) == [fit.Weights(manifest.sha256, None)]


def test_where_the_copy_cannot_be_made_auto_loads_the_shipped_file(cpu, monkeypatch) -> None:
    from fim_lsp.errors import FimError
    from fim_lsp.models import requantize

    def fail(manifest):
        raise FimError("no room")

    monkeypatch.setattr(requantize, "requantize", fail)
    manifest = known_models()[FAST]
    assert fit.weight_options(manifest, prepare=True) == [fit.Weights(manifest.sha256, None)]
    cpu["offered"] = ["CPU_REPACK"]
    assert fit.weight_options(manifest, prepare=True) == [fit.Weights(manifest.sha256, None)]


def test_without_repacking_auto_loads_the_shipped_file(cpu) -> None:
    cpu["offered"] = []
    manifest = known_models()[FAST]
    assert fit.weight_options(manifest, prepare=True) == [fit.Weights(manifest.sha256, None)]


def test_where_both_are_repacked_the_copy_is_loaded_where_it_reads_prompts_faster(cpu) -> None:
    # The 0.5B on an AVX2 machine: 89 prompt tokens a second from the shipped file, 131 from the copy.
    cpu["offered"] = ["CPU_REPACK"]
    manifest = known_models()[FAST]
    shipped, copy = _files(manifest)
    cpu["rates"] = {f"{BEST}.gguf": 38.0, f"{FAST}.gguf": 89.0, copy.path.name: 131.0}
    assert fit.weight_options(manifest, prepare=True) == [shipped, copy]
    choice = fit.choose_model(Settings(workspace_context=False))
    assert (choice.model, choice.weights, choice.speed) == (FAST, copy.path, fit.Speed(131, 20))
    assert choice.budget == 1152  # 131 tokens/s for 60% of 15 s, where the shipped file's 89 give 768
    assert choice.reason.startswith(f"{FAST} (its Q4_0 copy): prompt 131 tokens/s")
    # Each file timed once: the better model's shipped one, too slow, then the fast model's two.
    assert [path.name for path in cpu["timed"]] == [f"{BEST}.gguf", f"{FAST}.gguf", copy.path.name]


def test_where_both_are_repacked_a_copy_no_faster_is_not_loaded(cpu) -> None:
    # 89 and 95 prompt tokens a second: under `COPY_MIN_SPEEDUP` apart.
    cpu["offered"] = ["CPU_REPACK"]
    manifest = known_models()[FAST]
    shipped, copy = _files(manifest)
    cpu["rates"] = {f"{FAST}.gguf": 89.0, copy.path.name: 95.0}
    assert _loaded(manifest)[0] == shipped
    assert _loaded(manifest)[1] == fit.Speed(89, 20)
    assert len(cpu["timed"]) == 2  # each file timed once, then kept


def test_where_weights_are_repacked_a_copy_the_manifest_says_is_no_faster_is_not_made(cpu) -> None:
    # The 1.5B, whose weights are mostly Q4_K: repacked as Q4_0 is. Where AMX runs, its copy is made.
    manifest = known_models()[BEST]
    assert not manifest.q4_0_copy_where_repacked
    shipped, copy = _files(manifest)
    cpu["offered"] = ["CPU_REPACK"]
    cpu["rates"] = {f"{BEST}.gguf": 38.0}
    assert _loaded(manifest) == (shipped, fit.Speed(38, 20))
    assert [path.name for path in cpu["timed"]] == [f"{BEST}.gguf"]
    assert not copy.path.exists()
    cpu["offered"] = ["AMX", "CPU_REPACK"]
    assert fit.weight_options(manifest, prepare=True) == [copy]


def test_the_copy_is_loaded_only_once_both_files_are_timed() -> None:
    shipped, copy = _files(known_models()[FAST])
    assert fit.loaded_weights([(shipped, None), (copy, fit.Speed(131, 20))]) == (shipped, None)
    assert fit.loaded_weights([(shipped, fit.Speed(89, 20)), (copy, None)]) == (shipped, fit.Speed(89, 20))
    assert fit.loaded_weights([(shipped, fit.Speed(89, 20)), (copy, fit.Speed(107, 20))])[0] == copy


def test_a_copy_not_made_yet_is_offered_only_where_it_may_be_made(cpu) -> None:
    cpu["offered"] = ["CPU_REPACK"]
    manifest = known_models()[FAST]
    shipped, copy = _files(manifest)
    assert fit.weight_options(manifest, prepare=False) == [shipped]  # a look, as `doctor` takes
    assert fit.weight_options(manifest, prepare=True) == [shipped, copy]
    assert fit.weight_options(manifest, prepare=False) == [shipped, copy]


def _adapter_for(path, base_sha256: str):
    return str(write_gguf(path, adapter_metadata(base_sha256), {}))


def test_with_an_adapter_auto_loads_the_model_it_was_trained_on(machine, tmp_path):
    machine.update({BEST: fit.Speed(135, 27), FAST: fit.Speed(250, 40)})
    adapter = _adapter_for(tmp_path / "mine.gguf", known_models()[FAST].sha256)
    choice = fit.choose_model(Settings(adapter=adapter))
    assert choice.model == FAST and "the adapter mine.gguf was trained on it" in choice.reason


def test_an_adapter_no_installed_model_fits_leaves_the_choice_to_the_engine_check(machine, tmp_path):
    machine.update({BEST: fit.Speed(135, 27), FAST: fit.Speed(250, 40)})
    choice = fit.choose_model(Settings(adapter=_adapter_for(tmp_path / "other.gguf", "ab" * 32)))
    assert choice.model == BEST and "adapter" not in choice.reason
