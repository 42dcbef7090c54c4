"""doctor's speed line: rates from one timed generation, and what they mean for the default settings."""

from __future__ import annotations

import pytest

from fim_lsp.config import Settings
from fim_lsp.doctor import speed_estimate

FAST = "qwen2.5-coder-0.5b"
DEFAULT = "qwen2.5-coder-1.5b"


def test_a_machine_that_evaluates_a_cold_prompt_within_the_time_budget_is_ok():
    # 300 prompt tokens in 1.5 s (200/s); 24 tokens in 0.5 s after the first (46/s).
    verdict, what, detail = speed_estimate(300, 1500, 24, 500, Settings(), FAST, DEFAULT)
    assert (verdict, what) == ("ok", "speed")
    assert "prompt 200 tokens/s, writing 46 tokens/s" in detail
    # The default budget, 1,536 tokens, plus the workspace share on top (30%): 1,997 at 200/s.
    assert "(up to 1,997 tokens with the default settings) takes ~10.0 s" in detail
    assert "a one-line answer ~0.3 s more" in detail


def test_a_slow_machine_is_told_the_cold_prompt_misses_the_time_budget_and_what_helps():
    verdict, _, detail = speed_estimate(300, 7500, 24, 2300, Settings(), FAST, DEFAULT)
    assert verdict == "warn"
    assert "~49.9 s" in detail and "over the 15 s time budget" in detail
    assert f"the fast model ({FAST})" in detail


def test_the_fast_model_too_slow_is_pointed_elsewhere():
    _, _, detail = speed_estimate(300, 7500, 24, 2300, Settings(), FAST, FAST)
    assert "the fast model" not in detail
    assert "a GPU, a remote engine, or a smaller contextBudget" in detail


def test_the_estimate_follows_the_settings_given():
    settings = Settings(context_budget=500, workspace_context_share=0.0, time_budget_ms=3000)
    verdict, _, detail = speed_estimate(300, 1500, 24, 500, settings, FAST, DEFAULT)
    assert verdict == "ok" and "(up to 500 tokens with the default settings) takes ~2.5 s" in detail


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
