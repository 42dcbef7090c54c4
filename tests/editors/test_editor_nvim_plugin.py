"""The Neovim plugin's behaviour in real Neovim 0.12 and 0.11, against a server with scripted answers.

What the suggestion says is fixed here, so each keystroke's effect on the buffer is exact: accept,
accept a word or a line, cycle, dismiss, toggle, and one clear message (no more) when the server
command is missing or the server dies. The real model is exercised in test_editor_nvim_real.py.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from editor_support import REPO
from nvim_session import NvimSession

pytestmark = pytest.mark.slow

WAIT = 20.0
SCRIPTED_FIM_LSP = REPO / "tests" / "fakes" / "scripted_fim_lsp.py"


def namespace_for(nvim: NvimSession) -> str:
    """Where the ghost text is drawn: Neovim's own namespace on 0.12, the plugin's on 0.11."""
    builtin = nvim.lua("return require('fim_lsp.config').uses_builtin()")
    return "nvim.lsp.inline_completion" if builtin else "fim_lsp.ghost"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def scripted_nvim(
    nvim_binary: Path,
    open_nvim: Callable[..., NvimSession],
    scripted_cmd: Callable[..., list[str]],
    tmp_path: Path,
) -> Callable[..., NvimSession]:
    """A Neovim editing a Python file whose second line is `    `, with the scripted server's suggestions."""

    def start(*suggestions: str, text: str = "def total(a, b):\n    \n") -> NvimSession:
        nvim = open_nvim(nvim_binary)
        args = [a for s in suggestions for a in ("--suggest", s)]
        nvim.setup(cmd=scripted_cmd(*args))
        nvim.edit(write(tmp_path / "sample.py", text))
        nvim.wait_for("the scripted server to be ready", lambda: nvim.status()["state"] == "ready", WAIT)
        return nvim

    return start


def ghost(nvim: NvimSession, expected: str) -> None:
    ns = namespace_for(nvim)
    nvim.wait_for(f"ghost text {expected!r}", lambda: nvim.ghost_text(ns) == expected, WAIT)


def test_accept_inserts_the_whole_suggestion(scripted_nvim: Callable[..., NvimSession]) -> None:
    nvim = scripted_nvim("return a + b")
    nvim.keys("2GA")
    ghost(nvim, "return a + b")
    nvim.keys("<Tab>")
    nvim.wait_for("the accepted line", lambda: nvim.lines()[1] == "    return a + b", WAIT)
    assert nvim.cursor() == (2, len("    return a + b"))
    assert nvim.status()["latency_ms"] == 42


def test_typing_along_the_suggestion_keeps_its_rest(scripted_nvim: Callable[..., NvimSession]) -> None:
    nvim = scripted_nvim("return a + b")
    nvim.keys("2GA")
    ghost(nvim, "return a + b")
    nvim.keys("ret")
    ghost(nvim, "urn a + b")
    nvim.keys("<Tab>")
    nvim.wait_for("the accepted line", lambda: nvim.lines()[1] == "    return a + b", WAIT)


def test_accept_word_then_line(scripted_nvim: Callable[..., NvimSession]) -> None:
    nvim = scripted_nvim("result = compute(a, b)\n    return result")
    nvim.keys("2GA")
    ghost(nvim, "result = compute(a, b)\n    return result")
    nvim.keys("<M-Right>")
    nvim.wait_for("one word accepted", lambda: nvim.lines()[1] == "    result", WAIT)
    ghost(nvim, " = compute(a, b)\n    return result")
    nvim.keys("<M-C-Right>")
    nvim.wait_for("the line accepted", lambda: nvim.lines()[1] == "    result = compute(a, b)", WAIT)
    ghost(nvim, "\n    return result")
    nvim.keys("<M-C-Right>")
    nvim.wait_for(
        "the next line accepted",
        lambda: nvim.lines()[1:3] == ["    result = compute(a, b)", "    return result"],
        WAIT,
    )
    assert nvim.mode() == "i"


def test_next_and_previous_cycle_suggestions(scripted_nvim: Callable[..., NvimSession]) -> None:
    nvim = scripted_nvim("return alpha()", "return beta()")
    nvim.keys("2GA")
    ghost(nvim, "return alpha()")
    nvim.keys("<M-]>")
    ghost(nvim, "return beta()")
    nvim.keys("<M-[>")
    ghost(nvim, "return alpha()")
    nvim.keys("<M-]><Tab>")
    nvim.wait_for("the second suggestion accepted", lambda: nvim.lines()[1] == "    return beta()", WAIT)


def test_dismiss_hides_it_and_tab_is_tab_again(scripted_nvim: Callable[..., NvimSession]) -> None:
    nvim = scripted_nvim("return a + b")
    nvim.keys("2GA")
    ghost(nvim, "return a + b")
    nvim.keys("<C-]>")
    ns = namespace_for(nvim)
    nvim.wait_for("the ghost text to go", lambda: nvim.ghost_text(ns) is None, WAIT)
    nvim.keys("<Tab>")
    # The python ftplugin sets expandtab and softtabstop=4: a tab is four spaces here.
    nvim.wait_for("a plain tab", lambda: nvim.lines()[1] in ("    \t", "        "), WAIT)


def test_trigger_asks_again_after_a_dismiss(scripted_nvim: Callable[..., NvimSession]) -> None:
    nvim = scripted_nvim("return a + b")
    nvim.keys("2GA")
    ghost(nvim, "return a + b")
    nvim.keys("<C-]>")
    ns = namespace_for(nvim)
    nvim.wait_for("the ghost text to go", lambda: nvim.ghost_text(ns) is None, WAIT)
    nvim.keys("<M-\\>")
    ghost(nvim, "return a + b")


def test_disable_stops_ghost_text_and_enable_brings_it_back(
    scripted_nvim: Callable[..., NvimSession],
) -> None:
    nvim = scripted_nvim("return a + b")
    nvim.nvim.command("FimLsp disable")
    nvim.keys("2GAx")
    time.sleep(1.5)  # several debounce periods: a request, had one been sent, would have been answered
    assert nvim.ghost_text(namespace_for(nvim)) is None
    nvim.keys("<BS><Esc>")
    nvim.nvim.command("FimLsp enable")
    nvim.keys("A")
    ghost(nvim, "return a + b")


def test_statusline_reports_the_servers_status(scripted_nvim: Callable[..., NvimSession]) -> None:
    nvim = scripted_nvim("return a + b")
    nvim.keys("2GA")
    ghost(nvim, "return a + b")
    assert nvim.lua("return require('fim_lsp').statusline()") == "fim-lsp ✓ 42ms"


# -- bad input: one clear message, no spam, no freeze ----------------------------------------------------


def messages(nvim: NvimSession, needle: str) -> list[str]:
    return [n["msg"] for n in nvim.notes() if needle in n["msg"]]


def test_missing_command_is_reported_once(
    nvim_binary: Path, open_nvim: Callable[..., NvimSession], tmp_path: Path, path_without_fim_lsp: str
) -> None:
    nvim = open_nvim(nvim_binary, env={"PATH": path_without_fim_lsp})
    # No setup(): the plugin looks for `fim-lsp` on PATH and in the project's .venv, and finds neither.
    for name in ("one.py", "two.py", "three.lua"):
        nvim.edit(write(tmp_path / name, "x = 1\n"))
    notes = nvim.wait_for("the message", lambda: messages(nvim, "fim-lsp"), WAIT)
    time.sleep(0.5)
    notes = messages(nvim, "fim-lsp")
    assert len(notes) == 1, notes
    assert "not found" in notes[0] and ":checkhealth fim_lsp" in notes[0]
    assert nvim.status()["state"] == "missing"
    assert nvim.clients() == []
    nvim.keys("ox = 2<Esc>")
    nvim.wait_for("typing to still work", lambda: nvim.lines()[-1] == "x = 2", WAIT)
    nvim.nvim.command("checkhealth fim_lsp")
    health = "\n".join(nvim.lines())
    assert "ERROR server command not found" in health, health
    assert "setup({ cmd" in health


def test_unexecutable_command_from_setup_is_reported_once(
    nvim_binary: Path, open_nvim: Callable[..., NvimSession], tmp_path: Path
) -> None:
    nvim = open_nvim(nvim_binary)
    nvim.setup(cmd=["/nonexistent/fim-lsp", "--stdio"])
    for name in ("one.py", "two.py"):
        nvim.edit(write(tmp_path / name, "x = 1\n"))
    nvim.wait_for("the message", lambda: messages(nvim, "fim-lsp"), WAIT)
    time.sleep(0.5)
    notes = messages(nvim, "fim-lsp")
    assert len(notes) == 1 and "/nonexistent/fim-lsp" in notes[0], notes


def test_server_dying_at_start_is_reported_once_and_not_restarted(
    nvim_binary: Path,
    open_nvim: Callable[..., NvimSession],
    scripted_cmd: Callable[..., list[str]],
    tmp_path: Path,
) -> None:
    nvim = open_nvim(nvim_binary)
    nvim.setup(cmd=scripted_cmd("--exit-at-start", "3"))
    nvim.edit(write(tmp_path / "one.py", "x = 1\n"))
    nvim.wait_for("the crash message", lambda: messages(nvim, "stopped"), WAIT)
    nvim.edit(write(tmp_path / "two.py", "y = 2\n"))
    time.sleep(1.5)  # Neovim's own exit notice, were it not swallowed, comes on the next loop turns
    notes = [n["msg"] for n in nvim.notes()]
    assert len(notes) == 1, notes
    assert "exit code 3" in notes[0] and ":FimLsp restart" in notes[0]
    assert nvim.clients() == [], "a crashed server must not be started again for every new buffer"
    assert nvim.status()["state"] == "stopped"
    assert nvim.lua("return require('fim_lsp').statusline()") == "fim-lsp ✗"


def test_restart_after_a_crash_with_a_working_command(
    nvim_binary: Path,
    open_nvim: Callable[..., NvimSession],
    scripted_cmd: Callable[..., list[str]],
    tmp_path: Path,
) -> None:
    nvim = open_nvim(nvim_binary)
    nvim.setup(cmd=scripted_cmd("--exit-at-start", "3"))
    nvim.edit(write(tmp_path / "sample.py", "def total(a, b):\n    \n"))
    nvim.wait_for("the crash", lambda: nvim.status()["state"] == "stopped", WAIT)
    nvim.setup(cmd=scripted_cmd("--suggest", "return a + b"))
    nvim.nvim.command("FimLsp restart")
    nvim.wait_for("the restarted server", lambda: nvim.status()["state"] == "ready", WAIT)
    nvim.keys("2GA")
    ghost(nvim, "return a + b")


def test_server_dying_mid_session_leaves_the_editor_usable(
    nvim_binary: Path,
    open_nvim: Callable[..., NvimSession],
    scripted_cmd: Callable[..., list[str]],
    tmp_path: Path,
) -> None:
    nvim = open_nvim(nvim_binary)
    nvim.setup(cmd=scripted_cmd("--crash-on-request"))
    nvim.edit(write(tmp_path / "sample.py", "def total(a, b):\n    \n"))
    nvim.wait_for("the server", lambda: nvim.status()["state"] == "ready", WAIT)
    nvim.keys("2GAreturn")
    nvim.wait_for("the crash message", lambda: messages(nvim, "stopped"), WAIT)
    nvim.keys(" a + b<Esc>")
    nvim.wait_for("typing to still work", lambda: nvim.lines()[1] == "    return a + b", WAIT)
    time.sleep(1.0)
    notes = [n["msg"] for n in nvim.notes()]
    assert len(notes) == 1 and "exit code 7" in notes[0], notes


# -- several candidates and what became of them, with the real server around scripted candidates --------

CANDIDATES = ("sum(values)", "max(values)", "max(values, default=0)")


@pytest.fixture
def counting_nvim(
    nvim_binary: Path, open_nvim: Callable[..., NvimSession], tmp_path: Path
) -> Callable[..., NvimSession]:
    """A Neovim editing `return ` in a function, served by the real fim-lsp whose pipeline answers
    CANDIDATES or the given ones (tests/fakes/scripted_fim_lsp.py): typed-through answers and the counts
    are the server's."""

    def start(*candidates: str) -> NvimSession:
        nvim = open_nvim(nvim_binary)
        args = [a for s in candidates or CANDIDATES for a in ("--suggest", s)]
        nvim.setup(cmd=[sys.executable, str(SCRIPTED_FIM_LSP), *args, "--stdio"])
        nvim.edit(write(tmp_path / "largest.py", "def largest(values):\n    return \n"))
        nvim.wait_for("the server to be ready", lambda: nvim.status()["state"] == "ready", WAIT)
        return nvim

    return start


def stats(nvim: NvimSession) -> dict[str, int]:
    return nvim.lua("return require('fim_lsp').stats()")


def test_cycling_word_and_whole_accepts_are_counted(counting_nvim: Callable[..., NvimSession]) -> None:
    nvim = counting_nvim()
    nvim.keys("2GA")
    ghost(nvim, "sum(values)")
    nvim.keys("<M-]>")
    ghost(nvim, "max(values)")
    nvim.keys("<M-]>")
    ghost(nvim, "max(values, default=0)")
    # Typing what two candidates begin with: the server's typed-through answer follows the one on
    # screen (without the plugin saying which, it would answer the first that agrees, `values)`).
    nvim.keys("max(")
    ghost(nvim, "values, default=0)")
    time.sleep(0.5)  # the request after the keystrokes, answered by typing through
    ghost(nvim, "values, default=0)")
    nvim.keys("<M-Right>")
    nvim.wait_for("a word accepted", lambda: nvim.lines()[1] == "    return max(values", WAIT)
    ghost(nvim, ", default=0)")
    nvim.keys("<Tab>")
    nvim.wait_for("the rest accepted", lambda: nvim.lines()[1] == "    return max(values, default=0)", WAIT)
    expected = {
        "shown": 1,
        "accepted": 1,
        "partly_accepted": 1,
        "accepted_chars": len("values, default=0)"),
        "accepted_alternatives": 1,
    }
    nvim.wait_for("the counts", lambda: stats(nvim) == expected, WAIT)
    said = nvim.nvim.api.exec2("FimLsp stats", {"output": True})["output"]
    assert "1 shown, 1 accepted (100%), 1 partly accepted, 18 characters accepted" in said, said


def test_a_line_accept_is_counted_as_partial(counting_nvim: Callable[..., NvimSession]) -> None:
    nvim = counting_nvim("biggest = max(values)\n    return biggest")
    nvim.keys("2GA")
    ghost(nvim, "biggest = max(values)\n    return biggest")
    nvim.keys("<M-C-Right>")
    nvim.wait_for("the line accepted", lambda: nvim.lines()[1] == "    return biggest = max(values)", WAIT)
    expected = {
        "shown": 1,
        "partly_accepted": 1,
        "accepted": 0,
        "accepted_chars": len("biggest = max(values)"),
    }
    nvim.wait_for("the counts", lambda: expected.items() <= (stats(nvim) or {}).items(), WAIT)
