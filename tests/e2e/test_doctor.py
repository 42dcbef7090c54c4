"""`fim-lsp doctor` with the real model: every check passes and the speed of this machine is measured."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.e2e.conftest import FAST_MODEL

pytestmark = pytest.mark.model


def test_doctor_checks_the_set_up_and_times_the_model():
    result = subprocess.run(
        [sys.executable, "-m", "fim_lsp", "doctor", "--model", FAST_MODEL],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("llama-cpp-python", "weight buffers", "model", "tree-sitter grammars", "model loads"):
        assert re.search(rf"^\s*ok  {check}\s{{2}}", result.stdout, re.MULTILINE), (check, result.stdout)
    line = re.search(r"^\s*(?:ok|warn)  speed\s{2}(.*)$", result.stdout, re.MULTILINE)
    assert line is not None, result.stdout
    speed = re.search(r"prompt (\d+) tokens/s, writing (\d+) tokens/s", line[1])
    assert speed is not None, line[1]
    assert int(speed[1]) > 0 and int(speed[2]) > 0
    # The 0.5B is the fast model: a slow machine is not told to switch to it.
    assert "the fast model" not in line[1]
