"""The command line as a shell pipeline uses it: a reader that stops early (`| head`) ends the command
quietly, without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param(["models", "--json"], id="models-json"),
        pytest.param(["models"], id="models-table"),
        pytest.param(["models", "requirements", "qwen2.5-coder-0.5b"], id="models-requirements"),
        pytest.param(["bench", "latency", "--dry-run", "--limit-requests", "2"], id="bench-latency-dry-run"),
    ],
)
def test_a_reader_that_goes_away_ends_the_command_quietly(arguments: list[str]) -> None:
    command = subprocess.Popen(
        [sys.executable, "-m", "fim_lsp", *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert command.stdout is not None and command.stderr is not None
    command.stdout.close()  # before the command writes anything: every write meets a closed pipe
    errors = command.stderr.read().decode()
    assert command.wait(60) in (0, 1)
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors
