"""VS Code (code-server 4.99.4 = VS Code 1.99.3, in Debian's Chromium through puppeteer-core) with the
packed extension and the real `fim-lsp` serving the 0.5B model: ghost text appears, Tab accepts it,
the saved file holds it and parses. The screenshot of the ghost text lands in test-artifacts/.

Also here, without a browser: the extension lints and type-checks, and the settings package.json
declares match the server's settings tree (names, types and defaults).
"""

from __future__ import annotations

import ast
import json
import os
import socket
import subprocess
import sys
import time
import typing
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from editor_support import ARTIFACTS, REPO, TEST_MODEL, install, tool_path

from fim_lsp.config import Settings, settings_to_wire

VSCODE_DIR = REPO / "editors" / "vscode"
DRIVER = Path(__file__).with_name("vscode_drive.cjs")

SAMPLE = "\n".join(
    [
        "def add(a: int, b: int) -> int:",
        '    """Return the sum of a and b."""',
        "    return a + b",
        "",
        "",
        "def multiply(a: int, b: int) -> int:",
        '    """Return the product of a and b."""',
        "    return ",  # the cursor goes at the end of this line
        "",
        "",
        'if __name__ == "__main__":',
        "    print(add(2, 3), multiply(2, 3))",
        "",
    ]
)
LINE = 8
# Typed at the end of line 8; VS Code asks for an inline completion on each keystroke. It ends in a
# space because after a word character VS Code's suggest widget opens (word-based suggestions), and
# while it is open VS Code shows only ghost text that extends the selected item.
TYPED = "a "


# -- static checks ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extension_deps() -> Path:
    """editors/vscode with its node_modules (npm ci from the lock file, once)."""
    if not (VSCODE_DIR / "node_modules" / ".package-lock.json").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=VSCODE_DIR, check=True)
    return VSCODE_DIR


@pytest.mark.parametrize("script", ["typecheck", "lint"])
def test_extension_type_checks_and_lints(extension_deps: Path, script: str) -> None:
    out = subprocess.run(
        ["npm", "run", "--silent", script], cwd=extension_deps, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def declared_settings() -> dict[str, Any]:
    manifest = json.loads((VSCODE_DIR / "package.json").read_text())
    return manifest["contributes"]["configuration"]["properties"]


def flatten(wire: dict[str, Any], prefix: str = "fimLsp.") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in wire.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


SERVER_DEFAULTS = flatten(settings_to_wire(Settings()))


@pytest.mark.parametrize("key", sorted(SERVER_DEFAULTS))
def test_package_json_declares_each_server_setting_with_its_default(key: str) -> None:
    declared = declared_settings()
    assert key in declared, f"{key} is a server setting but package.json does not declare it"
    default = SERVER_DEFAULTS[key]
    if isinstance(default, tuple):
        default = list(default)
    assert declared[key]["default"] == default, (
        f"{key}: package.json {declared[key]['default']!r}, server {default!r}"
    )
    assert declared[key].get("description") or declared[key].get("markdownDescription")


def literal_fields(cls: type, prefix: str = "fimLsp.") -> dict[str, tuple[str, ...]]:
    """Wire name -> allowed values, for every field typed as a Literal of strings."""
    out: dict[str, tuple[str, ...]] = {}
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        hint = hints[field.name]
        wire = prefix + "".join(p if i == 0 else p.capitalize() for i, p in enumerate(field.name.split("_")))
        if attrs.has(hint):
            out.update(literal_fields(hint, wire + "."))
        elif typing.get_origin(hint) is typing.Literal:
            out[wire] = typing.get_args(hint)
    return out


@pytest.mark.parametrize(("key", "choices"), sorted(literal_fields(Settings).items()))
def test_package_json_offers_exactly_the_servers_choices(key: str, choices: tuple[str, ...]) -> None:
    declared = declared_settings()[key]
    assert declared.get("enum") == list(choices), (
        f"{key}: package.json {declared.get('enum')}, server {choices}"
    )
    assert len(declared.get("enumDescriptions", choices)) == len(choices)


def test_package_json_declares_no_unknown_server_setting() -> None:
    extension_only = {"fimLsp.enable", "fimLsp.server.command", "fimLsp.server.args"}
    unknown = set(declared_settings()) - set(SERVER_DEFAULTS) - extension_only
    assert not unknown, f"declared but unknown to the server: {sorted(unknown)}"


def test_settings_module_sends_every_server_key() -> None:
    """src/settings.ts lists the keys it sends; it must list exactly the server's."""
    source = (VSCODE_DIR / "src" / "settings.ts").read_text()
    top = {k.split(".")[1] for k in SERVER_DEFAULTS if k.count(".") == 1}
    engine = {k.split(".")[2] for k in SERVER_DEFAULTS if k.startswith("fimLsp.engine.")}
    for key in top | engine:
        assert f'"{key}"' in source, f"settings.ts does not send {key}"


# -- the real editor -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vsix() -> Path:
    install("vsix")
    path = VSCODE_DIR / "fim-lsp.vsix"
    assert path.exists()
    return path


@pytest.fixture(scope="module")
def code_server_tools() -> dict[str, Path]:
    install("vscode")
    return {
        "code_server": tool_path("code-server"),
        "node_modules": tool_path("node-modules"),
        "chromium": tool_path("chromium"),
    }


class CodeServer:
    """A running code-server with the packed extension installed and a workspace holding arith.py."""

    def __init__(self, tools: dict[str, Path], vsix: Path, root: Path, settings: dict[str, Any]) -> None:
        exe = tools["code_server"]
        self.tools = tools
        self.user_data, extensions, self.workspace = (
            root / "user-data",
            root / "extensions",
            root / "workspace",
        )
        self.workspace.mkdir()
        (self.workspace / "arith.py").write_text(SAMPLE)
        common = ["--user-data-dir", str(self.user_data), "--extensions-dir", str(extensions)]
        install = [str(exe), *common, "--install-extension", str(vsix), "--force"]
        subprocess.run(install, check=True, capture_output=True)
        self.settings_path = self.user_data / "User" / "settings.json"
        self.settings_path.parent.mkdir(parents=True, exist_ok=True)
        self.settings_path.write_text(json.dumps({**EDITOR_SETTINGS, **settings}))
        config = root / "code-server.yaml"
        config.write_text("auth: none\n")
        port = free_port()
        self.log_path = root / "code-server.log"
        self._log = self.log_path.open("w")
        args = ["--config", str(config), "--bind-addr", f"127.0.0.1:{port}", "--auth", "none"]
        quiet = ["--disable-workspace-trust", "--disable-telemetry", "--disable-update-check"]
        self.proc = subprocess.Popen(
            [str(exe), *common, *args, *quiet, "--disable-getting-started-override", str(self.workspace)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}/?folder={self.workspace}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"code-server did not start: {self.log_path.read_text()}") from None
                time.sleep(0.5)

    def drive(self, screenshot: Path, **env: str) -> dict[str, Any]:
        """Run vscode_drive.cjs against this code-server; its JSON result, with logs on failure."""
        screenshot.with_name(screenshot.stem + "-failure.png").unlink(missing_ok=True)
        full_env = {
            **os.environ,
            "PUPPETEER_MODULE": str(self.tools["node_modules"] / "puppeteer-core"),
            "CHROMIUM": str(self.tools["chromium"]),
            "URL": self.url,
            "SCREENSHOT": str(screenshot),
            "WORKSPACE_SETTINGS": str(self.workspace / ".vscode" / "settings.json"),
            "TIMEOUT_MS": "120000",
            **env,
        }
        out = subprocess.run(["node", str(DRIVER)], env=full_env, capture_output=True, text=True, timeout=420)
        lines = out.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines else {"error": "no output"}
        result["context"] = (
            f"driver: {json.dumps(result, indent=1)}\nstderr: {out.stderr[-3000:]}\n"
            + extension_logs(self.user_data)
        )
        return result

    def close(self) -> None:
        os.killpg(self.proc.pid, 15)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
        self._log.close()


EDITOR_SETTINGS = {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "security.workspace.trust.enabled": False,
    "extensions.autoCheckUpdates": False,
    "extensions.ignoreRecommendations": True,
    "telemetry.telemetryLevel": "off",
    "editor.inlineSuggest.enabled": True,
    "files.autoSave": "off",
}
SERVER = REPO / ".venv" / "bin" / "fim-lsp"


@pytest.fixture
def start_code_server(
    code_server_tools: dict[str, Path], vsix: Path, tmp_path: Path
) -> Iterator[Callable[..., CodeServer]]:
    servers: list[CodeServer] = []

    def start(**settings: Any) -> CodeServer:
        server = CodeServer(code_server_tools, vsix, tmp_path, settings)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def extension_logs(user_data: Path) -> str:
    """The extension's output channel and the extension host's log, for a failure message."""
    parts = []
    for path in sorted(user_data.glob("logs/**/*.log")):
        if "fim-lsp" in path.name or path.name in ("exthost.log", "remoteexthost.log"):
            parts.append(
                f"--- {path.relative_to(user_data)} ---\n" + "\n".join(path.read_text().splitlines()[-30:])
            )
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.model
def test_ghost_text_in_vscode_is_accepted_with_tab(start_code_server: Callable[..., CodeServer]) -> None:
    vscode = start_code_server(**{"fimLsp.server.command": str(SERVER), "fimLsp.model": TEST_MODEL})
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "vscode-ghost-text.png"
    result = vscode.drive(screenshot, FILE_NAME="arith.py", LINE=str(LINE), TYPE=TYPED)
    context = result["context"]
    assert "error" not in result, context
    ghost = result["ghost"]
    assert ghost.strip(), context
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
    saved = (vscode.workspace / "arith.py").read_text()
    line = saved.splitlines()[LINE - 1]
    assert line.startswith("    return " + TYPED + ghost.split("\n")[0].rstrip()), (line, context)
    ast.parse(saved)
    assert any("ms" in s for s in result["statusAfterCompletion"]), context  # the latency is shown


@pytest.mark.slow
@pytest.mark.model
def test_bad_input_in_vscode_gives_one_message_each_and_recovers(
    start_code_server: Callable[..., CodeServer],
) -> None:
    vscode = start_code_server(**{"fimLsp.server.command": "/nonexistent/fim-lsp"})
    ARTIFACTS.mkdir(exist_ok=True)
    result = vscode.drive(
        ARTIFACTS / "vscode-bad-input.png",
        MODE="bad-input",
        TIMEOUT_MS="60000",
        SERVER=str(SERVER),
        BAD_MODEL="/nonexistent/model.gguf",
        GOOD_MODEL=TEST_MODEL,
    )
    context = result["context"]
    assert "error" not in result, context
    # Server command not found: the status item says so, and one message (with a way to the setting).
    assert "not found" in result["missingStatus"]["label"], context
    missing = {m: n for m, n in result["missingToasts"].items() if "fim-lsp" in m}
    assert len(missing) == 1 and set(missing.values()) == {1}, context
    assert "/nonexistent/fim-lsp" in next(iter(missing)), context
    # Model missing: an error status, and the server's one message naming the model.
    model = {m: n for m, n in result["modelToasts"].items() if "model" in m.lower()}
    assert len(model) == 1 and set(model.values()) == {1}, context
    assert "/nonexistent/model.gguf" in next(iter(model)), context
    assert "error" in result["modelStatus"]["label"], context
    # A settings change reaches the running server: the good model loads without a restart.
    assert result["readyStatus"]["icon"] == "codicon-sparkle", context


SCRIPTED_FIM_LSP = REPO / "tests" / "fakes" / "scripted_fim_lsp.py"
# After `a ` is typed on the `return` line, the real server (its pipeline scripted) answers the rests of
# these: `* b`, then `* b * 1` with a second line.
CANDIDATES = ["a * b", "a * b * 1\n    print(a)"]


@pytest.mark.slow
def test_vscode_cycles_accepts_a_word_and_a_line_and_counts_them(
    start_code_server: Callable[..., CodeServer],
) -> None:
    suggest = [a for c in CANDIDATES for a in ("--suggest", c)]
    # Only on the `return` line: after the acceptance, nothing new is suggested (and counted as shown).
    args = [str(SCRIPTED_FIM_LSP), *suggest, "--line-has", "return a", "--stdio"]
    vscode = start_code_server(**{"fimLsp.server.command": sys.executable, "fimLsp.server.args": args})
    ARTIFACTS.mkdir(exist_ok=True)
    expected = ["* b", "* b * 1\n    print(a)"]
    result = vscode.drive(
        ARTIFACTS / "vscode-cycle.png",
        MODE="cycle",
        FILE_NAME="arith.py",
        LINE=str(LINE),
        TYPE="a ",
        EXPECT=json.dumps(expected),
    )
    context = result["context"]
    assert "error" not in result, context
    assert (result["first"], result["second"]) == (expected[0], expected[1]), context
    # A word, then the rest of the line: each left less of the second candidate on screen.
    assert expected[1].endswith(result["afterWord"]) and len(result["afterWord"]) < len(expected[1]), context
    assert result["afterLine"] == "    print(a)", context  # VS Code's line accept takes the line break
    saved = (vscode.workspace / "arith.py").read_text().splitlines()
    assert saved[LINE - 1 : LINE + 1] == ["    return a * b * 1", "    print(a)"], (saved, context)
    (counts,) = [row for row in result["menu"] if "shown" in row]
    assert "1 shown" in counts and "1 accepted" in counts and "1 partly accepted" in counts, (counts, context)
    # `* ` and `b * 1` with its line break by the partial accepts, `print(a)` by Tab (the indentation
    # before it Tab typed, as VS Code does where a suggestion starts with less than a tab of it).
    accepted_chars = len("* ") + len("b * 1\n") + len("print(a)")
    assert f"{accepted_chars} characters accepted" in counts, (counts, context)
