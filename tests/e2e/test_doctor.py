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
    checks = [line.split(maxsplit=2) for line in result.stdout.splitlines()]
    lines = {parts[1]: parts[2] for parts in checks if len(parts) == 3 and parts[0] in ("ok", "warn")}
    for check in ("llama-cpp-python", "model", "tree-sitter", "speed"):
        assert check in lines, result.stdout
    speed = re.search(r"prompt (\d+) tokens/s, writing (\d+) tokens/s", lines["speed"])
    assert speed is not None, lines["speed"]
    assert int(speed[1]) > 0 and int(speed[2]) > 0
    # The 0.5B is the fast model: a slow machine is not told to switch to it.
    assert "the fast model" not in lines["speed"]
