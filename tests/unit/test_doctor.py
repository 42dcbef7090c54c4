"""doctor's speed line: rates from one timed generation, and what they mean for the default settings;
and the model it checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from fim_lsp import fit, models
from fim_lsp.config import AUTO_MODEL, Settings
from fim_lsp.doctor import _check_choice, _check_model, _check_weight_buffers, speed_estimate

FAST = "qwen2.5-coder-0.5b"
DEFAULT = "qwen2.5-coder-1.5b"


def test_a_fast_machine_gets_the_whole_budget_and_is_ok():
    # 300 prompt tokens in 1.0 s (300/s); 24 tokens in 0.5 s after the first (46/s).
    settings = Settings(workspace_context=False)
    verdict, what, detail = speed_estimate(300, 1000, 24, 500, settings, FAST, DEFAULT)
    assert (verdict, what) == ("ok", "speed")
    assert "prompt 300 tokens/s, writing 46 tokens/s" in detail
    # 300/s for 60% of 15 s would be 2,700 tokens: the budget's bound, 1,536, is what a prompt takes.
    assert "(1,536 tokens of file, cut to fit the time budget at this speed; 1,536 with" in detail
    assert "takes ~5.1 s, a one-line answer ~0.3 s more" in detail


def test_a_slower_machine_gets_prompts_cut_to_what_fits_the_time_budget():
    # 120 tokens/s: 60% of 15 s holds 1,080 tokens, 768 of file once the snippets' 30% is on top.
    verdict, _, detail = speed_estimate(300, 2500, 24, 500, Settings(workspace_context=True), FAST, DEFAULT)
    assert verdict == "ok"
    assert "(768 tokens of file, cut to fit the time budget at this speed; 998 with workspace" in detail


def test_a_machine_too_slow_for_a_useful_prompt_is_told_what_helps():
    verdict, _, detail = speed_estimate(300, 7500, 24, 2300, Settings(), FAST, DEFAULT)
    assert verdict == "warn"
    assert "(256 tokens of file" in detail and "prompts this short" in detail
    assert f"the fast model ({FAST})" in detail


def test_a_budget_set_by_hand_over_the_time_budget_is_a_warning():
    settings = Settings(context_budget=1536, workspace_context=False)
    verdict, _, detail = speed_estimate(300, 7500, 24, 2300, settings, FAST, FAST)
    assert verdict == "warn"
    assert "the contextBudget setting's" in detail and "over the 15 s time budget" in detail
    assert "the fast model" not in detail
    assert "a GPU or a remote engine, or a smaller contextBudget" in detail


def test_the_estimate_follows_the_settings_given():
    settings = Settings(context_budget=500, workspace_context_share=0.0, time_budget_ms=3000)
    verdict, _, detail = speed_estimate(300, 1500, 24, 500, settings, FAST, DEFAULT)
    assert (
        "(500 tokens of file, the contextBudget setting's; 500 with workspace snippets) takes ~2.5 s"
        in detail
    )
    assert verdict == "warn"  # 500 tokens are a short prompt


@pytest.mark.parametrize(
    "evaluated,prompt_ms,generated,generate_ms",
    [(0, 0.0, 0, 0.0), (300, 1500, 1, 0.0), (300, 1500, 0, 0.0)],
    ids=["nothing timed", "one token written", "ended at once"],
)
def test_a_generation_too_short_to_time_is_a_warning_not_a_division_by_zero(
    evaluated, prompt_ms, generated, generate_ms
):
    verdict, _, detail = speed_estimate(
        evaluated, prompt_ms, generated, generate_ms, Settings(), FAST, DEFAULT
    )
    assert verdict == "warn" and "could not be timed" in detail


def test_on_a_new_machine_the_model_checked_is_the_one_auto_chooses(monkeypatch):
    # No speed kept yet, and a machine where the best model reads too little in time: the model line
    # times the models before naming one, so it names the model the choice's line names.
    manifests = models.known_models()
    timed = {DEFAULT: fit.Speed(33, 7), FAST: fit.Speed(80, 18)}
    kept: dict[str, fit.Speed] = {}

    def timed_weights(manifest, threads, measure=True):
        if measure and manifest.name not in kept:
            kept[manifest.name] = timed[manifest.name]
        return [(fit.Weights(manifest.sha256, None), kept.get(manifest.name))]

    monkeypatch.setattr(fit, "installed_models", lambda: [manifests[DEFAULT], manifests[FAST]])
    monkeypatch.setattr(fit, "timed_weights", timed_weights)
    monkeypatch.setattr(models, "resolve_model", lambda name: Path(f"/models/{name}.gguf"))

    loaded, [(verdict, what, detail)] = _check_model(AUTO_MODEL, measure=True)
    assert loaded == FAST
    assert (verdict, what) == ("ok", "model") and detail.startswith(f"{FAST}: /models/{FAST}.gguf")
    [(_, _, choice)] = _check_choice(AUTO_MODEL)
    assert choice.startswith(f"{FAST} chosen for this machine")


def test_without_llama_cpp_to_time_them_the_best_installed_model_is_checked(monkeypatch):
    manifests = models.known_models()
    monkeypatch.setattr(fit, "installed_models", lambda: [manifests[DEFAULT], manifests[FAST]])
    monkeypatch.setattr(
        fit,
        "timed_weights",
        lambda manifest, threads, measure=True: [(fit.Weights(manifest.sha256, None), None)],
    )
    monkeypatch.setattr(models, "resolve_model", lambda name: Path(f"/models/{name}.gguf"))

    loaded, [(_, _, detail)] = _check_model(AUTO_MODEL, measure=False)
    assert loaded == DEFAULT and detail.startswith(f"{DEFAULT}: ")


@pytest.mark.parametrize(("gpu", "verdict"), [(False, "warn"), (True, "ok")])
def test_amx_that_crashed_is_a_warning_only_where_the_layers_stay_on_the_cpu(monkeypatch, gpu, verdict):
    from fim_lsp.engine import llama_library

    monkeypatch.setattr(llama_library, "cpu_extra_buffer_types", lambda: ["AMX", "CPU_REPACK"])
    monkeypatch.setattr(llama_library, "tried_verdict", lambda: False)
    level, what, detail = _check_weight_buffers(gpu)
    assert (level, what) == (verdict, "weight buffers")
    assert "AMX kernels crashed here" in detail
    assert ("`make setup`" in detail) is not gpu
