"""Scoring a benchmark's middles: run human-eval-infilling programs in a sandbox, or compare lines.

Generated code is untrusted: it runs in a fresh `python -I` process, never in ours, in an empty
temporary directory, with limits on memory, CPU time, file size and processes, a wall-clock limit, no
standard input, and no network (under `unshare -n` when the system lets us; otherwise we say so once).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from math import comb

logger = logging.getLogger(__name__)

#: Wall-clock seconds a program may run (human-eval-infilling's own limit).
WALL_LIMIT_S = 3.0
#: CPU seconds, address space and output file size a program may use.
CPU_LIMIT_S = 5
MEMORY_LIMIT_BYTES = 1 << 30
FILE_SIZE_LIMIT_BYTES = 16 << 20
#: How much of a failed program's output we keep, for the report.
_OUTPUT_KEPT = 2000


@dataclass(frozen=True)
class ExecutionResult:
    """How one program ended."""

    passed: bool
    outcome: str
    """`passed`, `failed` (it raised or exited non-zero), `timeout`, or `error` (we could not run it)."""
    detail: str = ""
    """The end of its standard error, when it failed."""


def build_program(prompt: str, completion: str, suffix: str, test: str, entry_point: str) -> str:
    """The human-eval-infilling program: the completion inserted verbatim, then the tests."""
    return prompt + completion + suffix + "\n" + test + "\n" + f"check({entry_point})"


@cache
def network_isolation() -> list[str]:
    """The command prefix that cuts the network for a child (`unshare -n`), or [] where we cannot."""
    unshare = shutil.which("unshare")
    if unshare:
        try:
            probe = subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = str(exc)
        else:
            if probe.returncode == 0:
                return [unshare, "-n"]
            reason = probe.stderr.decode(errors="replace").strip() or f"exit status {probe.returncode}"
    else:
        reason = "unshare(1) is not installed"
    logger.warning("benchmark programs run WITH network access: cannot cut it (%s)", reason)
    return []


def _limit_resources() -> None:  # runs in the child, between fork and exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_LIMIT_S, CPU_LIMIT_S))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT_BYTES, FILE_SIZE_LIMIT_BYTES))


def run_program(program: str, *, wall_limit_s: float = WALL_LIMIT_S) -> ExecutionResult:
    """Run a Python program in the sandbox; passed when it exits with status 0 within the limits."""
    with tempfile.TemporaryDirectory(prefix="fim-lsp-bench-") as workdir:
        path = os.path.join(workdir, "program.py")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(program)
        command = [*network_isolation(), sys.executable, "-I", "-B", path]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}
        try:
            child = subprocess.Popen(
                command,
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=_limit_resources,
                start_new_session=True,  # its own process group, so a timeout kills what it started too
            )
        except OSError as exc:
            return ExecutionResult(False, "error", str(exc))
        try:
            _, stderr = child.communicate(timeout=wall_limit_s)
        except subprocess.TimeoutExpired:
            _kill_group(child)
            return ExecutionResult(False, "timeout", f"over {wall_limit_s:g} s")
        finally:
            _kill_group(child)  # anything it left running in its group
    if child.returncode == 0:
        return ExecutionResult(True, "passed")
    detail = stderr.decode("utf-8", errors="replace")[-_OUTPUT_KEPT:]
    return ExecutionResult(False, "failed", detail)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    if child.returncode is None:
        child.wait()


def check_infilling(problem: Mapping[str, str], completion: str | None) -> ExecutionResult:
    """Run the tests of a human-eval-infilling `problem` with `completion` as its middle (None fails)."""
    if completion is None:
        return ExecutionResult(False, "failed", "no completion")
    program = build_program(
        problem["prompt"], completion, problem["suffix"], problem["test"], problem["entry_point"]
    )
    return run_program(program)


def pass_at_k(samples: int, correct: int, k: int) -> float:
    """The unbiased pass@k estimate from `samples` samples of which `correct` passed."""
    if samples - correct < k:
        return 1.0
    return 1.0 - comb(samples - correct, k) / comb(samples, k)


def evaluate_samples(
    problems: Mapping[str, Mapping[str, str]], samples: Iterable[Mapping[str, str]], k: int = 1
) -> dict[str, float]:
    """pass@k over `samples` ({task_id, completion} records) of `problems` (by task_id), as
    human-eval-infilling's own harness computes it: the mean over problems of each one's estimate."""
    counts: dict[str, list[int]] = {}
    for sample in samples:
        result = check_infilling(problems[sample["task_id"]], sample["completion"])
        tally = counts.setdefault(sample["task_id"], [0, 0])
        tally[0] += 1
        tally[1] += result.passed
    estimates = [pass_at_k(n, c, k) for n, c in counts.values() if n >= k]
    return {f"pass@{k}": sum(estimates) / len(estimates) if estimates else 0.0}


def first_line(generation: str) -> str:
    """The line the SantaCoder-FIM scorer reads: the first, or the second when the output starts with
    a newline (the prefix ends before the hole's line break)."""
    lines = generation.split("\n")
    if generation.startswith("\n") and len(lines) > 1:
        return lines[1]
    return lines[0]


def exact_match(generation: str | None, canonical: str) -> bool:
    """SantaCoder-FIM exact match, as in the Qwen2.5-Coder report: the line read, stripped, equals the
    stripped canonical solution."""
    if generation is None:
        return False
    return first_line(generation).strip() == canonical.strip()
