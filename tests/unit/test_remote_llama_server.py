"""The `llama-server` engine against a contract fake of llama.cpp's server (`/infill`, `/health`, `/props`).

llama.cpp's `llama-server` binary is not built on this machine; the fake holds the client to the
server's documented request validation and answer format (see tests/fakes/llama_server.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from fim_lsp.config import EngineSettings, Settings
from fim_lsp.engine.base import GenerationRequest
from fim_lsp.engine.http import RemoteUnavailableError
from fim_lsp.engine.llama_server import LlamaServerEngine
from fim_lsp.engine.remote import RemoteEngine, check_remote, create_remote_engine
from fim_lsp.prompt import FimPrompt, RepoFile
from tests.fakes.llama_server import MODEL_PATH, LlamaServerFake

PREFIX = "import math\n\n\ndef area(radius):\n    "
SUFFIX = "\n\n\nprint(area(2.0))\n"


@pytest.fixture
def fake() -> Iterator[LlamaServerFake]:
    with LlamaServerFake(middle="return math.pi * radius ** 2") as server:
        yield server


def settings_for(url: str) -> Settings:
    return Settings(engine=EngineSettings(kind="llama-server", url=url, timeout=10.0))


@pytest.fixture
def engine(fake: LlamaServerFake) -> Iterator[LlamaServerEngine]:
    created = create_remote_engine(settings_for(fake.url))
    assert isinstance(created, LlamaServerEngine)
    yield created
    created.close()


def infill(engine: RemoteEngine, prefix: str = PREFIX, max_tokens: int = 32, **parts: object):
    prompt = FimPrompt(prefix, SUFFIX, "auto", **parts)  # type: ignore[arg-type]
    return engine.generate(GenerationRequest(prompt, max_tokens, deadline=time.monotonic() + 10))


def test_infill_streams_the_middle_and_its_counts(fake, engine):
    generation = infill(engine)
    assert generation.text == "return math.pi * radius ** 2"
    assert generation.stop_reason == "eot"
    assert generation.generated_tokens == 6  # one per word, as the fake counts
    assert generation.prompt_tokens > 0
    (request,) = fake.requests_to("/infill")
    body = request.body
    assert (body["input_prefix"], body["prompt"], body["input_suffix"]) == (
        "import math\n\n\ndef area(radius):\n",
        "    ",
        SUFFIX,
    )
    assert body["cache_prompt"] is True and body["stream"] is True and body["n_predict"] == 32
    assert fake.prompts[0].endswith("<|fim_middle|>    ")


def test_workspace_snippets_reach_input_extra(fake, engine):
    snippets = [
        RepoFile("shapes/consts.py", "TAU = 6.283\n"),
        RepoFile("shapes/util.py", "def sq(x): return x*x"),
    ]
    infill(engine, files=tuple(snippets), path="shapes/area.py")
    (request,) = fake.requests_to("/infill")
    assert request.body["input_extra"] == [
        {"filename": "shapes/consts.py", "text": "TAU = 6.283\n"},
        {"filename": "shapes/util.py", "text": "def sq(x): return x*x\n"},
    ]
    # The server puts them before the prefix, in the model's repository-level format.
    assert fake.prompts[0].startswith("<|repo_name|>myproject\n<|file_sep|>shapes/consts.py\nTAU = 6.283\n")


def test_the_token_limit_ends_with_length(fake, engine):
    generation = infill(engine, max_tokens=2)
    assert (generation.text, generation.stop_reason) == ("return math.pi ", "length")


def test_the_servers_cache_is_reported_as_reuse(fake, engine):
    infill(engine)
    second = infill(engine, prefix=PREFIX + "ret")
    # Only the cursor's line changed: with it after the middle token, almost all was cached.
    assert second.evaluated_tokens < second.prompt_tokens / 2


def test_the_token_estimate_learns_from_the_servers_counts(fake, engine):
    before = engine.tokens.chars_per_token
    infill(engine, prefix="x = 1\n" * 200)
    assert engine.tokens.chars_per_token != before


def test_a_model_without_fim_tokens():
    with LlamaServerFake(fim=False) as fake:
        engine = create_remote_engine(settings_for(fake.url))
        with pytest.raises(RemoteUnavailableError, match="HTTP 501: Infill is not supported by this model"):
            infill(engine)
        engine.close()


@pytest.mark.parametrize(
    ("url", "description"),
    [
        pytest.param("{url}", "root", id="root"),
        pytest.param("{url}/v1", "openai-url", id="openai-url-pasted"),
    ],
)
def test_doctor_on_a_healthy_server(fake, url, description):
    checks = check_remote(settings_for(url.format(url=fake.url)))
    verdicts = {what: (verdict, detail) for verdict, what, detail in checks}
    assert [verdict for verdict, _, _ in checks] == ["ok", "ok", "ok"], checks
    assert f"llama-server at {fake.url} (" in verdicts["server"][1]
    assert verdicts["model"][1] == f"{MODEL_PATH}, context 4096, build b0000-fake"
    assert verdicts["fill-in-the-middle"][1].startswith("/infill works")


def test_doctor_on_a_model_without_fim():
    with LlamaServerFake(fim=False) as fake:
        checks = check_remote(settings_for(fake.url))
    verdict, what, detail = checks[-1]
    assert (verdict, what) == ("FAIL", "fill-in-the-middle")
    assert "Infill is not supported by this model" in detail


def test_doctor_on_a_server_still_loading():
    with LlamaServerFake(loading=True) as fake:
        (check,) = check_remote(settings_for(fake.url))
    assert check == ("warn", "server", f"llama-server at {fake.url} is still loading its model")


def test_doctor_on_a_server_that_is_down():
    from tests.fakes.http import free_port

    (check,) = check_remote(settings_for(f"http://127.0.0.1:{free_port()}"))
    assert check[0] == "FAIL" and "connection refused" in check[2]
