"""FIM templates: read as data, recognised from a vocabulary, rendered in PSM and SPM order."""

import pytest

from fim_lsp.errors import ConfigurationError
from fim_lsp.prompt import RepoFile, detect_template, known_templates, template_for_family

QWEN_VOCABULARY = [
    "<|fim_prefix|>",
    "<|fim_suffix|>",
    "<|fim_middle|>",
    "<|fim_pad|>",
    "<|file_sep|>",
    "<|repo_name|>",
    "<|endoftext|>",
]


@pytest.mark.parametrize(
    ("vocabulary", "family"),
    [
        pytest.param(QWEN_VOCABULARY, "qwen2.5-coder", id="qwen"),
        pytest.param(
            ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_separator|>"],
            "codegemma",
            id="codegemma-shares-three-spellings-with-qwen",
        ),
        pytest.param(
            ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>"], "starcoder", id="starcoder"
        ),
        pytest.param(["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"], "deepseek-coder", id="deepseek"),
        pytest.param(["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"], "codellama", id="codellama-sentencepiece"),
        pytest.param(["[SUFFIX]", "[PREFIX]"], "codestral", id="codestral"),
        pytest.param(["<s>", "</s>", "hello"], None, id="no-fim-tokens"),
    ],
)
def test_detect_template(vocabulary, family):
    template = detect_template(vocabulary)
    assert (template.family if template else None) == family


def test_every_template_renders_its_default_order():
    for template in known_templates().values():
        prompt = template.render("PRE", "SUF")
        assert "PRE" in prompt and "SUF" in prompt, template.family


def test_qwen_psm_and_spm():
    qwen = template_for_family("qwen2.5-coder")
    assert qwen.render("def f(", "):\n", "psm") == "<|fim_prefix|>def f(<|fim_suffix|>):\n<|fim_middle|>"
    assert qwen.render("def f(", "):\n", "spm") == "<|fim_prefix|><|fim_suffix|>):\n<|fim_middle|>def f("


def test_psm_line_moves_the_cursor_line_after_the_middle_token():
    qwen = template_for_family("qwen2.5-coder")
    prefix, suffix = "import os\n\ndef f():\n    return os.", "\n\nf()\n"
    assert qwen.render(prefix, suffix, "psm-line") == (
        "<|fim_prefix|>import os\n\ndef f():\n<|fim_suffix|>\n\nf()\n<|fim_middle|>    return os."
    )


def test_psm_line_prompts_of_two_keystrokes_share_all_but_the_typed_characters():
    qwen = template_for_family("qwen2.5-coder")
    before = qwen.render("def f():\n    ret", "\n", "psm-line")
    after = qwen.render("def f():\n    retu", "\n", "psm-line")
    assert after == before + "u"


def test_qwen_repository_format_puts_files_before_the_fim_tokens():
    qwen = template_for_family("qwen2.5-coder")
    files = [RepoFile("util.py", "def g(): ...")]
    head = "<|repo_name|>shop\n<|file_sep|>util.py\ndef g(): ...\n<|file_sep|>app.py\n"
    prompt = qwen.render("x = ", "\n", "psm", repo="shop", path="app.py", repo_files=files)
    assert prompt == head + "<|fim_prefix|>x = <|fim_suffix|>\n<|fim_middle|>"
    prompt = qwen.render("x = ", "\n", "spm", repo="shop", path="app.py", repo_files=files)
    assert prompt == head + "<|fim_prefix|><|fim_suffix|>\n<|fim_middle|>x = "


def test_codestral_has_no_psm_layout():
    with pytest.raises(ConfigurationError):
        template_for_family("codestral").render("a", "b", "psm")


def test_unknown_family():
    with pytest.raises(ConfigurationError, match="known:"):
        template_for_family("gpt-2")
