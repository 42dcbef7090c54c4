"""The `ollama` engine against a contract fake of Ollama's `/api/generate`, `/api/tags` and `/api/show`."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from fim_lsp.config import EngineSettings, Settings
from fim_lsp.engine.base import GenerationRequest
from fim_lsp.engine.http import RemoteUnavailableError
from fim_lsp.engine.remote import RemoteEngine, check_remote, create_remote_engine
from fim_lsp.prompt import FimPrompt
from tests.fakes.ollama import CHAT_MODEL, FIM_MODEL, OllamaFake


@pytest.fixture
def fake() -> Iterator[OllamaFake]:
    with OllamaFake(middle="return a + b") as server:
        yield server


def settings_for(url: str, model: str = FIM_MODEL) -> Settings:
    return Settings(engine=EngineSettings(kind="ollama", url=url, model=model, timeout=10.0))


def generate(engine: RemoteEngine, max_tokens: int = 32, order: str = "auto"):
    prompt = FimPrompt("def add(a, b):\n    ", "\n\nprint(add(1, 2))\n", order)
    return engine.generate(GenerationRequest(prompt, max_tokens, deadline=time.monotonic() + 10))


@pytest.mark.parametrize("order", ["psm", "psm-line", "spm"])
def test_generate_with_a_suffix(fake, order):
    engine = create_remote_engine(settings_for(fake.url))
    generation = generate(engine, order=order)
    assert (generation.text, generation.stop_reason) == ("return a + b", "eot")
    assert generation.generated_tokens == 4 and generation.evaluated_tokens > 0
    (request,) = fake.requests_to("/api/generate")
    assert request.body["prompt"] == "def add(a, b):\n    "
    assert request.body["suffix"] == "\n\nprint(add(1, 2))\n"
    assert request.body["options"]["num_predict"] == 32
    engine.close()


def test_the_token_limit(fake):
    engine = create_remote_engine(settings_for(fake.url))
    generation = generate(engine, max_tokens=2)
    assert (generation.text, generation.stop_reason) == ("return a ", "length")
    engine.close()


def test_a_model_that_is_not_pulled(fake):
    engine = create_remote_engine(settings_for(fake.url, "starcoder2:3b"))
    with pytest.raises(RemoteUnavailableError, match=r"HTTP 404: model \"starcoder2:3b\" not found"):
        generate(engine)
    engine.close()


def test_a_model_that_cannot_fill_in_the_middle(fake):
    engine = create_remote_engine(settings_for(fake.url, CHAT_MODEL))
    with pytest.raises(RemoteUnavailableError, match="does not support insert"):
        generate(engine)
    engine.close()


@pytest.mark.parametrize("url_tail", ["", "/api", "/v1/"])
def test_doctor_on_a_fim_model(fake, url_tail):
    checks = check_remote(settings_for(fake.url + url_tail))
    assert [(verdict, what) for verdict, what, _ in checks] == [
        ("ok", "server"),
        ("ok", "model"),
        ("ok", "fill-in-the-middle"),
    ]
    assert checks[0][2].endswith("Ollama 0.9.0")


def test_doctor_on_a_chat_model(fake):
    verdict, what, detail = check_remote(settings_for(fake.url, CHAT_MODEL))[-1]
    assert (verdict, what) == ("FAIL", "fill-in-the-middle")
    assert "no `insert` capability" in detail


def test_doctor_on_a_model_not_pulled(fake):
    checks = check_remote(settings_for(fake.url, "starcoder2:3b"))
    assert checks[-1][0] == "FAIL"
    assert "run `ollama pull starcoder2:3b` there" in checks[-1][2]
    assert FIM_MODEL in checks[-1][2]


@pytest.mark.parametrize(("model", "verdict"), [(FIM_MODEL, "ok"), (CHAT_MODEL, "FAIL")])
def test_doctor_on_an_ollama_without_capabilities_asks_with_a_suffix(model, verdict):
    with OllamaFake(capabilities=False) as fake:
        checks = check_remote(settings_for(fake.url, model))
    assert checks[-1][:2] == (verdict, "fill-in-the-middle")


def test_doctor_without_a_model_name(fake):
    (check,) = check_remote(Settings(engine=EngineSettings(kind="ollama", url=fake.url)))
    assert check[0] == "FAIL" and "engine.model is required" in check[2]
