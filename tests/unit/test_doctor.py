"""doctor's speed line: rates from one timed generation, and what they mean for the default settings."""

from __future__ import annotations

import pytest

from fim_lsp.config import Settings
from fim_lsp.doctor import speed_estimate

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
