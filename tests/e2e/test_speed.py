"""Timing the real small model as `auto` does: the rates it measures, and the share of its threads' time
the process had meanwhile, which says whether the timing may stand (`fit.Measurement.busy`)."""

from __future__ import annotations

import pytest

from fim_lsp import fit
from fim_lsp.models import resolve_model
from tests.e2e.conftest import FAST_MODEL

pytestmark = pytest.mark.model


def test_a_timing_measures_both_rates_and_the_cpu_the_process_had() -> None:
    measured = fit.measure_speed(resolve_model(FAST_MODEL), threads=None)
    assert measured.speed.prompt > measured.speed.writing > 0
    # The process's CPU time over the wall time of all its threads: a share, and on a CPU-only build
    # never missing (a GPU build's timing has none).
    assert measured.cpu_share is not None
    assert 0.0 < measured.cpu_share <= 1.05
