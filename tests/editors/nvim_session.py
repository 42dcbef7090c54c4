"""A real Neovim, embedded through pynvim, with the fim-lsp plugin loaded from editors/nvim.

Keystrokes go in through `nvim_input` as if typed; what the tests check is read back from the
editor itself (buffer lines, extmarks, the plugin's status). Messages the plugin or Neovim show
with `vim.notify` are recorded so a test can count them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pynvim
from editor_support import REPO

PLUGIN_DIR = REPO / "editors" / "nvim"

# Runs before any plugin loads: record every vim.notify instead of echoing it.
_RECORD_NOTIFY = (
    "lua _G.test_notes = {}; vim.notify = function(msg, level) "
    "table.insert(_G.test_notes, { msg = tostring(msg), level = level or 2 }) end"
)


class NvimSession:
    """One embedded Neovim process."""

    def __init__(self, binary: Path, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        state = workdir / ".nvim-state"
        state.mkdir(parents=True, exist_ok=True)
        saved = dict(os.environ)
        # pynvim's child transport inherits this process's environment; set it for the spawn only.
        os.environ.update(
            {
                "XDG_STATE_HOME": str(state / "state"),
                "XDG_CONFIG_HOME": str(state / "config"),
                "XDG_DATA_HOME": str(state / "data"),
                **(env or {}),
            }
        )
        try:
            argv = [
                str(binary),
                "--embed",
                "--headless",
                "--clean",
                "-n",
                "-i",
                "NONE",
                "--cmd",
                f"set rtp^={PLUGIN_DIR}",
                "--cmd",
                _RECORD_NOTIFY,
            ]
            self.nvim = pynvim.attach("child", argv=argv)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.nvim.command(f"cd {workdir}")
        self.nvim.command("set noswapfile")

    # -- driving ----------------------------------------------------------------------------------------

    def lua(self, code: str, *args: Any) -> Any:
        """Run Lua in the editor (`...` holds `args`) and return its result."""
        return self.nvim.exec_lua(code, *args)

    def setup(self, **opts: Any) -> None:
        self.lua("require('fim_lsp').setup(...)", opts)

    def edit(self, path: Path) -> None:
        self.nvim.command(f"edit {path}")

    def keys(self, keys: str) -> None:
        """Type keys (Neovim key notation, e.g. `A`, `<Tab>`, `<Esc>`)."""
        self.nvim.input(keys)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
        """Poll `check` until it returns something truthy; fail with the editor's state if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {what}\n{self.diagnostics()}"
                )
            time.sleep(interval)

    # -- reading back -----------------------------------------------------------------------------------

    def lines(self) -> list[str]:
        return list(self.nvim.current.buffer[:])

    def text(self) -> str:
        return "\n".join(self.lines()) + "\n"

    def cursor(self) -> tuple[int, int]:
        row, col = self.nvim.current.window.cursor
        return row, col

    def mode(self) -> str:
        return self.nvim.api.get_mode()["mode"]

    def status(self) -> dict[str, Any]:
        return self.lua("return require('fim_lsp').status()")

    def notes(self) -> list[dict[str, Any]]:
        """Every vim.notify message so far, as `{msg, level}`."""
        return self.lua("return _G.test_notes")

    def clients(self) -> list[dict[str, Any]]:
        return self.lua(
            "local out = {} for _, c in ipairs(vim.lsp.get_clients({ name = 'fim-lsp' })) do "
            "out[#out + 1] = { id = c.id, initialized = c.initialized, root = c.root_dir } "
            "end return out"
        )

    def ghost_text(self, namespace: str) -> str | None:
        """The ghost text drawn as extmarks in `namespace`: inline text, then virtual lines."""
        return self.lua(
            """
            local ns = vim.api.nvim_get_namespaces()[...]
            if not ns then return vim.NIL end
            local marks = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
            for _, mark in ipairs(marks) do
              local d = mark[4]
              local function join(chunks)
                local parts = {}
                for _, chunk in ipairs(chunks or {}) do
                  -- Hints like ' (1/2)' use their own highlight group; they are not suggestion text.
                  if chunk[2] ~= 'FimLspGhostHint' and chunk[2] ~= 'ComplHintMore' then
                    parts[#parts + 1] = chunk[1]
                  end
                end
                return table.concat(parts)
              end
              local lines = { join(d.virt_text) }
              for _, l in ipairs(d.virt_lines or {}) do lines[#lines + 1] = join(l) end
              local text = table.concat(lines, '\\n')
              if text ~= '' then return text end
            end
            return vim.NIL
            """,
            namespace,
        )

    def server_pids(self) -> list[int]:
        """Process ids of the language servers this editor spawned (its children)."""
        nvim_pid = self.lua("return vim.fn.getpid()")
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue
            if ppid == nvim_pid and "--stdio" in cmdline:
                pids.append(int(proc.name))
        return pids

    def diagnostics(self) -> str:
        """The editor's state and the tail of Neovim's LSP log, for a failure message."""
        try:
            lines = self.lines()
            status = self.status()
            notes = self.notes()
            mode = self.mode()
            log_path = self.lua("return vim.lsp.get_log_path()")
        except Exception as exc:  # a dead editor is itself the diagnosis
            return f"(editor unreachable: {exc})"
        log_tail = ""
        if log_path and Path(log_path).exists():
            log_tail = "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-25:])
        return (
            f"mode={mode} status={status}\nnotes={notes}\nbuffer:\n"
            + "\n".join(lines)
            + f"\n--- lsp.log tail ---\n{log_tail}"
        )

    def close(self) -> None:
        # Closing after a failure must not hide the failure; and nvim exits before answering `qa!`.
        with contextlib.suppress(Exception):
            self.lua("require('fim_lsp.client').stop(function() end)")
        with contextlib.suppress(Exception):
            self.nvim.command("qa!")
        with contextlib.suppress(Exception):
            self.nvim.close()
