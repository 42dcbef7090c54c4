"""FIM templates: read as data, recognised from a vocabulary, rendered in PSM and SPM order."""

import pytest

from fim_lsp.errors import ConfigurationError
from fim_lsp.prompt import FimPrompt, RepoFile, detect_template, known_templates, template_for_family

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
        prompt = template.render(FimPrompt("PRE", "SUF", template.order))
        assert "PRE" in prompt and "SUF" in prompt, template.family


def test_qwen_psm_and_spm():
    qwen = template_for_family("qwen2.5-coder")
    psm, spm = FimPrompt("def f(", "):\n", "psm"), FimPrompt("def f(", "):\n", "spm")
    assert qwen.render(psm) == "<|fim_prefix|>def f(<|fim_suffix|>):\n<|fim_middle|>"
    assert qwen.render(spm) == "<|fim_prefix|><|fim_suffix|>):\n<|fim_middle|>def f("


def test_psm_line_moves_the_cursor_line_after_the_middle_token():
    qwen = template_for_family("qwen2.5-coder")
    prefix, suffix = "import os\n\ndef f():\n    return os.", "\n\nf()\n"
    assert qwen.render(FimPrompt(prefix, suffix, "psm-line")) == (
        "<|fim_prefix|>import os\n\ndef f():\n<|fim_suffix|>\n\nf()\n<|fim_middle|>    return os."
    )


def test_psm_line_prompts_of_two_keystrokes_share_all_but_the_typed_characters():
    qwen = template_for_family("qwen2.5-coder")
    before = qwen.render(FimPrompt("def f():\n    ret", "\n", "psm-line"))
    after = qwen.render(FimPrompt("def f():\n    retu", "\n", "psm-line"))
    assert after == before + "u"


def test_qwen_repository_format_puts_files_before_the_fim_tokens():
    qwen = template_for_family("qwen2.5-coder")
    files = (RepoFile("util.py", "def g(): ..."),)
    head = "<|repo_name|>shop\n<|file_sep|>util.py\ndef g(): ...\n<|file_sep|>app.py\n"
    prompt = qwen.render(FimPrompt("x = ", "\n", "psm", repo="shop", path="app.py", files=files))
    assert prompt == head + "<|fim_prefix|>x = <|fim_suffix|>\n<|fim_middle|>"
    prompt = qwen.render(FimPrompt("x = ", "\n", "spm", repo="shop", path="app.py", files=files))
    assert prompt == head + "<|fim_prefix|><|fim_suffix|>\n<|fim_middle|>x = "


@pytest.mark.parametrize(
    ("order", "stable"),
    [
        pytest.param("psm", "<|fim_prefix|>a = 1\n", id="psm-the-suffix-follows-the-cursor"),
        pytest.param("spm", "<|fim_prefix|><|fim_suffix|>\nc = 3\n<|fim_middle|>a = 1\n", id="spm"),
        pytest.param("psm-line", "<|fim_prefix|>a = 1\n<|fim_suffix|>\nc = 3\n<|fim_middle|>", id="psm-line"),
    ],
)
def test_the_start_of_a_prompt_that_typing_on_the_cursor_line_keeps(order, stable):
    qwen = template_for_family("qwen2.5-coder")
    prompt = FimPrompt("a = 1\nb = ", "\nc = 3\n", order)
    assert "".join(qwen.pieces(prompt, before_line=True)) == stable
    typed = FimPrompt("a = 1\nb = 2", "\nc = 3\n", order)
    assert qwen.render(typed).startswith(stable)


@pytest.mark.parametrize(
    ("suffix", "first", "rest"),
    [
        pytest.param("1\ny = 2\n", "1\n", "y = 2\n", id="next-line"),
        pytest.param("1  \n\n  \ny = 2\n", "1  \n\n  \n", "y = 2\n", id="over-blank-lines"),
        pytest.param("1\n    y = 2\n", "1\n", "    y = 2\n", id="with-its-indentation"),
    ],
)
def test_the_suffix_from_its_next_line_with_text_is_a_piece_of_its_own(suffix, first, rest):
    qwen = template_for_family("qwen2.5-coder")
    pieces = qwen.pieces(FimPrompt("x = ", suffix, "psm"))
    assert pieces == (f"<|fim_prefix|>x = <|fim_suffix|>{first}", f"{rest}<|fim_middle|>")


@pytest.mark.parametrize("suffix", ["1\n", "1\n\n  \n", "1"], ids=["one-line", "then-blank", "no-break"])
def test_a_suffix_without_a_second_line_with_text_is_not_cut(suffix):
    qwen = template_for_family("qwen2.5-coder")
    assert len(qwen.pieces(FimPrompt("x = ", suffix, "psm"))) == 1


def test_codestral_has_no_psm_layout():
    with pytest.raises(ConfigurationError):
        template_for_family("codestral").render(FimPrompt("a", "b", "psm"))


def test_unknown_family():
    with pytest.raises(ConfigurationError, match="known:"):
        template_for_family("gpt-2")
