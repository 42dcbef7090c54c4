"""`fim-lsp demo` (what `make run` runs) with the real small model: every hole is asked for over the
protocol, and every answer that comes back is judged. Which answers are right is the model's and the
CPU's business; that the demo says so, for each, is ours."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.e2e.conftest import FAST_MODEL

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_the_demo_judges_each_answer_and_counts_the_right_ones():
    result = subprocess.run(
        [sys.executable, "-m", "fim_lsp", "demo", "--model", FAST_MODEL],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = re.search(r"(\d+) of 7 holes answered, (\d+) right", result.stdout)
    assert summary is not None, result.stdout
    answered, right = int(summary[1]), int(summary[2])
    verdicts = re.findall(r"^    (right|wrong): ", result.stdout, re.MULTILINE)
    assert len(verdicts) == answered >= 1, result.stdout
    assert verdicts.count("right") == right, result.stdout
