"""`check_remote` for an OpenAI-compatible server: reachable, which model, FIM-capable, the API key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fim_lsp.config import EngineSettings, Settings
from fim_lsp.engine.remote import check_remote
from tests.fakes.fault_server import MODEL, FaultServer, Status, Stream
from tests.fakes.http import Exchange, free_port


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def settings_for(url: str, **engine: object) -> Settings:
    return Settings(engine=EngineSettings(kind="openai", url=url, **engine))  # type: ignore[arg-type]


def test_a_server_without_a_tokenizer_gets_a_tiny_fim_request(fault):
    fault.then(Stream(("return a + b",)))
    checks = check_remote(settings_for(fault.url + "/v1", model=MODEL))
    assert [(v, w) for v, w, _ in checks] == [
        ("ok", "server"),
        ("ok", "model"),
        ("warn", "fill-in-the-middle"),
    ]
    assert "got 'return a + b'" in checks[-1][2]
    probe = fault.requests_to("/v1/completions")[-1].body
    assert probe["prompt"].startswith("<|fim_prefix|>") and "def add(a, b):" in probe["prompt"]


def test_the_vocabulary_decides_fim_where_the_server_tokenizes(fault):
    # The shape of llama-cpp-python's /extras/tokenize: Qwen's FIM markers are one token each.
    @fault.route("POST", "/extras/tokenize")
    def tokenize(exchange: Exchange) -> None:
        text = exchange.body["input"]
        exchange.send_json(200, {"tokens": [151659] if text.startswith("<|fim_") else [1, 2, 3]})

    checks = check_remote(settings_for(fault.url + "/v1", model=MODEL))
    assert checks[-1] == (
        "ok",
        "fill-in-the-middle",
        "the qwen2.5-coder FIM tokens are in the model's vocabulary",
    )


def test_a_vocabulary_without_the_templates_tokens_fails(fault):
    @fault.route("POST", "/extras/tokenize")
    def tokenize(exchange: Exchange) -> None:
        exchange.send_json(200, {"tokens": [27, 91, 5] if "fim" in exchange.body["input"] else [7]})

    verdict, what, detail = check_remote(settings_for(fault.url + "/v1", model="starcoder2-3b"))[-1]
    assert (verdict, what) == ("FAIL", "fill-in-the-middle")
    assert "<fim_prefix>" in detail and "not a starcoder model" in detail


@pytest.mark.parametrize(
    ("model", "verdict", "words"),
    [
        pytest.param(MODEL, "ok", "template qwen2.5-coder", id="listed"),
        pytest.param(
            "other-model", "warn", "is not among the models the server lists: fake-coder", id="not-listed"
        ),
        pytest.param(None, "warn", "engine.model is not set; the server offers: fake-coder", id="unset"),
    ],
)
def test_the_model_check(fault, model, verdict, words):
    checks = check_remote(settings_for(fault.url + "/v1", model=model))
    assert checks[1][0] == verdict and words in checks[1][2]


def test_a_server_that_is_down():
    checks = check_remote(settings_for(f"http://127.0.0.1:{free_port()}/v1"))
    assert len(checks) == 1
    verdict, what, detail = checks[0]
    assert (verdict, what) == ("FAIL", "server") and "connection refused" in detail


def test_a_url_that_is_not_an_openai_server(fault):
    (check,) = check_remote(settings_for(fault.url + "/api"))
    assert check[0] == "FAIL" and "HTTP 404" in check[2] and "check engine.url" in check[2]


def test_a_missing_key_and_a_refused_one(monkeypatch):
    monkeypatch.delenv("FIM_TEST_KEY", raising=False)
    with FaultServer(api_key="right") as server:
        checks = check_remote(settings_for(server.url, api_key_env="FIM_TEST_KEY"))
        assert checks[0] == ("FAIL", "api key", "$FIM_TEST_KEY is not set or empty")
        assert checks[1][0] == "FAIL" and "refused our API key (HTTP 401" in checks[1][2]

        monkeypatch.setenv("FIM_TEST_KEY", "right")
        checks = check_remote(settings_for(server.url, api_key_env="FIM_TEST_KEY", model=MODEL))
        assert checks[0] == ("ok", "api key", "read from $FIM_TEST_KEY")
        assert [v for v, _, _ in checks[1:3]] == ["ok", "ok"]


def test_a_server_failing_the_fim_probe(fault):
    fault.then(Status(500))
    verdict, what, detail = check_remote(settings_for(fault.url + "/v1", model=MODEL))[-1]
    assert (verdict, what) == ("FAIL", "fill-in-the-middle") and "HTTP 500" in detail


def test_bad_settings_are_reported_not_raised():
    (check,) = check_remote(settings_for("localhost:8000"))
    assert check[:2] == ("FAIL", "engine settings") and "http://" in check[2]
