"""The Neovim plugin's pure Lua parts, run inside real Neovim: partial-accept splitting, LSP column
conversion, option validation, and that every module loads and the help file's tags resolve."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nvim_session import PLUGIN_DIR, NvimSession


@pytest.fixture
def nvim(nvim_binary: Path, open_nvim: Callable[..., NvimSession]) -> Iterator[NvimSession]:
    yield open_nvim(nvim_binary)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        pytest.param("result = compute(a)", "result", id="identifier"),
        pytest.param(" = compute(a)", " =", id="blank-then-operator"),
        pytest.param(" compute(a)", " compute", id="blank-then-word"),
        pytest.param("(a, b)", "(", id="punctuation-run"),
        pytest.param("\n    return x", "\n    ", id="line-break-and-indent"),
        pytest.param("   ", "   ", id="only-blanks"),
        pytest.param("", "", id="empty"),
        # Lua patterns are byte-wise: a non-ASCII letter counts as punctuation, taken whole.
        pytest.param("é_x + 1", "é", id="non-ascii-letter"),
    ],
)
def test_next_word(nvim: NvimSession, text: str, word: str) -> None:
    assert nvim.lua("return require('fim_lsp.text').next_word(...)", text) == word


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("a * b\n    return c", "a * b", id="rest-of-line"),
        pytest.param("\n    return c\n", "\n    return c", id="at-a-break-the-next-line"),
        pytest.param("\n\nx", "\n", id="blank-next-line"),
        pytest.param("tail", "tail", id="no-break"),
    ],
)
def test_next_line(nvim: NvimSession, text: str, line: str) -> None:
    assert nvim.lua("return require('fim_lsp.text').next_line(...)", text) == line


@pytest.mark.parametrize(
    ("line", "character", "encoding", "byte"),
    [
        pytest.param("abc", 2, "utf-16", 2, id="ascii"),
        pytest.param("é = 1", 1, "utf-16", 2, id="two-byte-char"),
        pytest.param("😀x", 2, "utf-16", 4, id="surrogate-pair"),
        pytest.param("😀x", 1, "utf-32", 4, id="utf-32"),
        pytest.param("abc", 9, "utf-16", 3, id="past-the-end-clamped"),
        pytest.param("é", 2, "utf-8", 2, id="utf-8-is-bytes"),
    ],
)
def test_byte_col(nvim: NvimSession, line: str, character: int, encoding: str, byte: int) -> None:
    assert nvim.lua("return require('fim_lsp.text').byte_col(...)", line, character, encoding) == byte


def test_snippet_insert_text_becomes_plain_text(nvim: NvimSession) -> None:
    snippet = {"kind": "snippet", "value": "foo(${1:bar}, $2)$0"}
    assert nvim.lua("return require('fim_lsp.text').plain(...)", snippet) == "foo(bar, )"


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        pytest.param({"ghost_text": "sometimes"}, "ghost_text", id="bad-enum"),
        pytest.param({"debounce_ms": "fast"}, "debounce_ms", id="bad-type"),
        pytest.param({"colour": "blue"}, "unknown option", id="unknown-option"),
    ],
)
def test_setup_rejects_bad_options_clearly(nvim: NvimSession, opts: dict, message: str) -> None:
    ok, err = nvim.lua(
        "local ok, err = pcall(require('fim_lsp').setup, ...) return { ok, tostring(err) }", opts
    )
    assert not ok and message in err, err


def test_every_module_loads_and_health_runs(nvim: NvimSession) -> None:
    modules = sorted(p.stem for p in (PLUGIN_DIR / "lua" / "fim_lsp").glob("*.lua") if p.stem != "init")
    for module in ["fim_lsp", *(f"fim_lsp.{m}" for m in modules)]:
        assert nvim.lua("return type(require(...))", module) == "table", module
    nvim.nvim.command("checkhealth fim_lsp")
    report = "\n".join(nvim.lines())
    assert "fim-lsp: Neovim" in report and "fim-lsp: server" in report, report


def test_help_tags_resolve(nvim: NvimSession, tmp_path: Path) -> None:
    doc = tmp_path / "doc"
    doc.mkdir()
    (doc / "fim_lsp.txt").write_text((PLUGIN_DIR / "doc" / "fim_lsp.txt").read_text())
    nvim.nvim.command(f"helptags {doc}")
    nvim.nvim.command(f"set rtp^={tmp_path}")
    for tag in ["fim_lsp", "fim_lsp.setup()", ":FimLsp", "<Plug>(fim-lsp-accept)", "fim_lsp-health"]:
        nvim.nvim.command(f"help {tag}")
        assert nvim.lua("return vim.bo.filetype") == "help", tag
