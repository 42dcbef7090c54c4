"""Fixtures for the real-editor tests: the editors (installed once by scripts/install-editors.sh, cached
outside the repository), the fim-lsp server command, and embedded Neovim sessions."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from editor_support import REPO, install, tool_path
from nvim_session import NvimSession

SCRIPTED_SERVER = Path(__file__).with_name("scripted_server.py")

NVIM_VERSIONS = ["nvim-0.12", "nvim-0.11"]


@pytest.fixture(scope="session", params=NVIM_VERSIONS)
def nvim_binary(request: pytest.FixtureRequest) -> Path:
    """Each Neovim the plugin supports: 0.12 (vim.lsp.inline_completion) and 0.11 (its own ghost text)."""
    install(request.param)
    binary = tool_path(request.param)
    assert binary.exists(), f"{request.param} is not installed at {binary}"
    return binary


@pytest.fixture(scope="session")
def nvim_012() -> Path:
    install("nvim-0.12")
    return tool_path("nvim-0.12")


@pytest.fixture(scope="session")
def fim_lsp_bin() -> Path:
    """The real server, as `make setup` installs it."""
    path = REPO / ".venv" / "bin" / "fim-lsp"
    assert path.exists(), f"{path} missing: run `make setup` first"
    return path


@pytest.fixture
def scripted_cmd() -> Callable[..., list[str]]:
    """The command line of the scripted server, with its arguments."""

    def cmd(*args: str) -> list[str]:
        return [sys.executable, str(SCRIPTED_SERVER), *args]

    return cmd


@pytest.fixture
def open_nvim(tmp_path: Path) -> Iterator[Callable[..., NvimSession]]:
    """Start embedded Neovims in a scratch directory; all are closed after the test."""
    sessions: list[NvimSession] = []

    def start(binary: Path, env: dict[str, str] | None = None) -> NvimSession:
        session = NvimSession(binary, tmp_path, env)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()


@pytest.fixture
def path_without_fim_lsp() -> str:
    """PATH with no `fim-lsp` on it, so only what a test names is found."""
    keep = []
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and not (Path(entry) / "fim-lsp").exists():
            keep.append(entry)
    return os.pathsep.join(keep)
