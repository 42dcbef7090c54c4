"""Settings from the client: camelCase JSON in, typed settings out, bad values reported and defaulted."""

import pytest

from fim_lsp.config import EngineSettings, Settings, parse_settings, settings_to_wire


def test_defaults_when_nothing_is_sent():
    settings, problems = parse_settings(None)
    assert settings == Settings()
    assert problems == []


def test_camel_case_fields_are_read():
    settings, problems = parse_settings(
        {
            "model": "qwen2.5-coder-0.5b",
            "maxNewTokens": 96,
            "enabledLanguages": ["python", "go"],
            "engine": {"kind": "openai", "url": "http://127.0.0.1:8080/v1", "apiKeyEnv": "KEY"},
        }
    )
    assert problems == []
    assert settings.model == "qwen2.5-coder-0.5b"
    assert settings.max_new_tokens == 96
    assert settings.enabled_languages == ("python", "go")
    assert settings.engine == EngineSettings(kind="openai", url="http://127.0.0.1:8080/v1", api_key_env="KEY")


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        pytest.param({"threads": 0}, "threads", "must be positive", id="threads-zero"),
        pytest.param({"threads": "four"}, "threads", "whole number", id="threads-string"),
        pytest.param({"suffixShare": 1.5}, "suffix_share", "between 0 and 1", id="share-above-one"),
        pytest.param({"fimOrder": "msp"}, "fim_order", "one of auto, psm, psm-line, spm", id="unknown-order"),
        pytest.param({"workspaceContext": "yes"}, "workspace_context", "true or false", id="bool-as-string"),
        pytest.param({"maxNewTokens": True}, "max_new_tokens", "whole number", id="bool-as-int"),
        pytest.param({"cacheMemoryMb": -1}, "cache_memory_mb", "must not be negative", id="cache-negative"),
        pytest.param({"cacheMemoryMb": 1.5}, "cache_memory_mb", "whole number", id="cache-fraction"),
    ],
)
def test_a_bad_value_is_reported_and_the_default_kept(raw, field, message):
    settings, problems = parse_settings(raw)
    assert getattr(settings, field) == getattr(Settings(), field)
    assert len(problems) == 1
    assert message in problems[0]


def test_one_bad_value_does_not_discard_the_good_ones():
    settings, problems = parse_settings({"threads": -1, "maxNewTokens": 32, "typo": 1})
    assert settings.max_new_tokens == 32
    assert [p.split(":")[0] for p in problems] == ["threads", "typo"]


def test_a_change_keeps_what_it_does_not_mention():
    base, _ = parse_settings({"model": "qwen2.5-coder-0.5b", "threads": 2})
    changed, _ = parse_settings({"maxNewTokens": 40}, base)
    assert (changed.model, changed.threads, changed.max_new_tokens) == ("qwen2.5-coder-0.5b", 2, 40)


def test_nested_engine_errors_name_their_path():
    settings, problems = parse_settings({"engine": {"kind": "gpt", "timeout": -2}})
    assert settings.engine == EngineSettings()
    assert {p.split(":")[0] for p in problems} == {"engine.kind", "engine.timeout"}


def test_not_an_object():
    settings, problems = parse_settings(["model"])
    assert settings == Settings()
    assert "expected an object" in problems[0]


def test_wire_form_round_trips():
    settings = Settings(model="x.gguf", enabled_languages=("rust",))
    assert parse_settings(settings_to_wire(settings)) == (settings, [])


@pytest.mark.parametrize(
    ("enabled", "language", "expected"),
    [(("*",), "cobol", True), (("python",), "python", True), (("python",), "go", False)],
    ids=["star-enables-all", "listed", "unlisted"],
)
def test_enabled_languages(enabled, language, expected):
    assert Settings(enabled_languages=enabled).enables(language) is expected
