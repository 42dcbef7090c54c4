"""Paths and installers shared by the real-editor tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "scripts" / "install-editors.sh"
ARTIFACTS = REPO / "test-artifacts"

# The fast model keeps the editor tests short; its quality is not what they test.
TEST_MODEL = "qwen2.5-coder-0.5b"


def install(what: str) -> None:
    """Run the installer (a no-op once its stamp matches); its output goes to the test log."""
    subprocess.run([str(INSTALL), what], check=True, stdout=sys.stderr)


def tool_path(tool: str) -> Path:
    """Where the installer puts `tool` (see `scripts/install-editors.sh path`)."""
    out = subprocess.run([str(INSTALL), "path", tool], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())
