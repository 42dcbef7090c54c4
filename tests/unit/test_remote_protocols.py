"""The remote engines' pure parts: stream lines parsed, bodies built from a prompt's parts, tokens counted."""

from __future__ import annotations

import json
import time

import pytest

from fim_lsp.config import EngineSettings, Settings
from fim_lsp.engine.base import GenerationRequest
from fim_lsp.engine.http import RemoteUnavailableError, error_message
from fim_lsp.engine.llama_server import LlamaServerEngine
from fim_lsp.engine.ollama import OllamaEngine
from fim_lsp.engine.openai import OpenAIEngine
from fim_lsp.engine.remote import (
    Chunk,
    ServerSaid,
    TokenEstimate,
    create_remote_engine,
    guess_family,
    server_template,
    sse_data,
    template_of,
)
from fim_lsp.errors import ConfigurationError
from fim_lsp.prompt import FimPrompt, RepoFile

URL = "http://127.0.0.1:9"


def openai(**engine: object) -> OpenAIEngine:
    return OpenAIEngine(EngineSettings(kind="openai", url=URL + "/v1", **engine))  # type: ignore[arg-type]


def llama() -> LlamaServerEngine:
    return LlamaServerEngine(EngineSettings(kind="llama-server", url=URL))


def ollama() -> OllamaEngine:
    return OllamaEngine(EngineSettings(kind="ollama", url=URL, model="qwen2.5-coder:1.5b"))


def data(value: object) -> str:
    return "data: " + json.dumps(value)


# -- server-sent events --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "payload"),
    [
        pytest.param('data: {"a": 1}', '{"a": 1}', id="data"),
        pytest.param('data:{"a": 1}', '{"a": 1}', id="data-without-space"),
        pytest.param("", None, id="blank"),
        pytest.param(": ping - 2026-01-01", None, id="comment"),
        pytest.param("event: message", None, id="event-field"),
        pytest.param("retry: 1000", None, id="retry-field"),
    ],
)
def test_sse_data_takes_only_data_lines(line, payload):
    assert sse_data(line) == payload


@pytest.mark.parametrize("line", ["<html><body>502 Bad Gateway</body></html>", "garbage", "{json: 1}"])
def test_sse_data_rejects_lines_that_are_not_events(line):
    with pytest.raises(ValueError):
        sse_data(line)


def test_sse_error_event_carries_the_servers_message():
    with pytest.raises(ServerSaid, match="slot unavailable"):
        sse_data('error: {"code": 500, "message": "slot unavailable"}')


# -- openai --------------------------------------------------------------------------------------------------


def choice(text: str, finish: str | None = None) -> str:
    return data({"choices": [{"text": text, "index": 0, "finish_reason": finish}]})


@pytest.mark.parametrize(
    ("line", "chunk"),
    [
        pytest.param(choice("return"), Chunk(text="return"), id="text"),
        pytest.param(choice("", "stop"), Chunk(finish="eot"), id="finish-stop-is-eot"),
        pytest.param(choice(" b", "length"), Chunk(text=" b", finish="length"), id="finish-length"),
        pytest.param(choice("", "abort"), Chunk(finish="length"), id="finish-other-is-not-eot"),
        pytest.param("data: [DONE]", Chunk(end=True, finish="length"), id="done"),
        pytest.param(
            data({"choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 7}}),
            Chunk(prompt_tokens=120, generated_tokens=7),
            id="usage",
        ),
        pytest.param(
            data(
                {
                    "choices": [],
                    "usage": {
                        "prompt_tokens": 120,
                        "completion_tokens": 7,
                        "prompt_tokens_details": {"cached_tokens": 100},
                    },
                }
            ),
            Chunk(prompt_tokens=120, generated_tokens=7, cached_tokens=100),
            id="usage-with-cache",
        ),
        pytest.param(": keep-alive", None, id="comment"),
    ],
)
def test_openai_stream_lines(line, chunk):
    assert openai().parse_line(line) == chunk


@pytest.mark.parametrize(
    "line",
    [
        pytest.param('data: {"object": "text_completion"}', id="no-choices"),
        pytest.param("data: {not json", id="broken-json"),
        pytest.param("data: [1, 2]", id="not-an-object"),
        pytest.param(data({"choices": [{"text": 5}]}), id="text-not-a-string"),
    ],
)
def test_openai_garbage_lines_are_refused(line):
    with pytest.raises((ValueError, TypeError)):
        openai().parse_line(line)


def test_openai_error_object_in_the_stream():
    with pytest.raises(ServerSaid, match="out of memory"):
        openai().parse_line(data({"error": {"message": "out of memory", "code": 500}}))


def test_openai_body_is_the_rendered_prompt_and_asks_for_a_greedy_stream():
    engine = openai(model="qwen2.5-coder-1.5b")
    prompt = FimPrompt("def f():\n    ", "\n", "psm")
    path, body, plain = engine.request(GenerationRequest(prompt, max_tokens=32))
    assert path == "/completions"
    assert body["prompt"] == "<|fim_prefix|>def f():\n    <|fim_suffix|>\n<|fim_middle|>"
    assert body["model"] == "qwen2.5-coder-1.5b"
    assert (body["max_tokens"], body["temperature"], body["stream"]) == (32, 0, True)
    assert "<|endoftext|>" in body["stop"] and "<|file_sep|>" in body["stop"]
    assert plain == len("def f():\n    \n")  # the FIM markers are one token each, not characters


@pytest.mark.parametrize(
    ("url", "base"),
    [
        pytest.param("http://gpu:8000/v1", "http://gpu:8000/v1", id="with-v1"),
        pytest.param("http://gpu:8000/v1/", "http://gpu:8000/v1", id="trailing-slash"),
        pytest.param("http://gpu:8000", "http://gpu:8000/v1", id="server-only"),
        pytest.param("https://proxy/llm/v1", "https://proxy/llm/v1", id="behind-a-path"),
    ],
)
def test_openai_base_url(url, base):
    assert OpenAIEngine.base_url(url) == base


# -- llama-server --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "chunk"),
    [
        pytest.param(data({"content": "return", "stop": False}), Chunk(text="return"), id="content"),
        pytest.param(
            data(
                {
                    "content": "",
                    "stop": True,
                    "stop_type": "eos",
                    "tokens_evaluated": 300,
                    "tokens_predicted": 9,
                    "timings": {"prompt_n": 12, "prompt_ms": 40.5},
                }
            ),
            Chunk(
                end=True,
                finish="eot",
                prompt_tokens=300,
                evaluated_tokens=12,
                generated_tokens=9,
                prompt_ms=40.5,
            ),
            id="final-eos",
        ),
        pytest.param(
            data({"content": "", "stop": True, "stop_type": "limit"}),
            Chunk(end=True, finish="length"),
            id="final-limit",
        ),
        pytest.param(
            data({"content": "", "stop": True, "stop_type": "word"}),
            Chunk(end=True, finish="stop"),
            id="final-word",
        ),
    ],
)
def test_llama_server_stream_lines(line, chunk):
    assert llama().parse_line(line) == chunk


def test_llama_server_body_carries_prefix_suffix_and_snippets_apart():
    engine = llama()
    prompt = FimPrompt(
        "import math\n\ndef area(r):\n    return",
        "\n\nprint(area(2))\n",
        "auto",
        files=(RepoFile("geometry/consts.py", "PI = 3.14159\n"),),
        path="geometry/area.py",
    )
    path, body, characters = engine.request(GenerationRequest(prompt, max_tokens=64, deadline=None))
    assert path == "/infill"
    # By default the cursor's line goes after the middle token (`prompt`), where typing keeps the
    # server's cache of everything before it valid.
    assert body["input_prefix"] == "import math\n\ndef area(r):\n"
    assert body["prompt"] == "    return"
    assert body["input_suffix"] == "\n\nprint(area(2))\n"
    assert body["input_extra"] == [{"filename": "geometry/consts.py", "text": "PI = 3.14159\n"}]
    assert (body["n_predict"], body["cache_prompt"], body["stream"]) == (64, True, True)
    assert "t_max_predict_ms" not in body
    assert characters == len(
        "import math\n\ndef area(r):\n    return\n\nprint(area(2))\ngeometry/consts.pyPI = 3.14159\n"
    )


@pytest.mark.parametrize(
    ("order", "prefix", "middle"),
    [
        pytest.param("psm", "x = 1\ny = ", "", id="psm"),
        pytest.param("psm-line", "x = 1\n", "y = ", id="psm-line"),
        pytest.param("auto", "x = 1\n", "y = ", id="auto-is-psm-line"),
    ],
)
def test_llama_server_body_for_each_order(order, prefix, middle):
    engine = llama()
    prompt = FimPrompt("x = 1\ny = ", "\n", order)
    _, body, _ = engine.request(GenerationRequest(prompt, max_tokens=8))
    assert (body["input_prefix"], body["prompt"], body["input_suffix"]) == (prefix, middle, "\n")


def test_llama_server_body_without_reuse_and_with_a_deadline():
    engine = llama()
    prompt = FimPrompt("x = ", "\n")
    request = GenerationRequest(prompt, max_tokens=8, deadline=time.monotonic() + 2.0, reuse_cache=False)
    _, body, _ = engine.request(request)
    assert body["cache_prompt"] is False
    assert 1000 < body["t_max_predict_ms"] <= 2000


@pytest.mark.parametrize(
    ("url", "base"),
    [
        pytest.param("http://gpu:8080", "http://gpu:8080", id="root"),
        pytest.param("http://gpu:8080/v1", "http://gpu:8080", id="openai-url-pasted"),
    ],
)
def test_llama_server_base_url(url, base):
    assert LlamaServerEngine.base_url(url) == base


# -- ollama --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "chunk"),
    [
        pytest.param('{"model": "m", "response": "return", "done": false}', Chunk(text="return"), id="text"),
        pytest.param(
            json.dumps(
                {
                    "response": "",
                    "done": True,
                    "done_reason": "stop",
                    "prompt_eval_count": 26,
                    "eval_count": 5,
                    "prompt_eval_duration": 130_000_000,
                }
            ),
            Chunk(end=True, finish="eot", evaluated_tokens=26, generated_tokens=5, prompt_ms=130.0),
            id="done-stop",
        ),
        pytest.param(
            '{"response": "", "done": true, "done_reason": "length"}',
            Chunk(end=True, finish="length"),
            id="done-length",
        ),
        pytest.param("", None, id="blank"),
    ],
)
def test_ollama_stream_lines(line, chunk):
    assert ollama().parse_line(line) == chunk


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("data: {}", id="sse-not-ndjson"),
        pytest.param('{"status": "pulling"}', id="other-object"),
        pytest.param('{"response": 3, "done": false}', id="response-not-a-string"),
    ],
)
def test_ollama_garbage_lines_are_refused(line):
    with pytest.raises((ValueError, TypeError)):
        ollama().parse_line(line)


def test_ollama_error_line():
    with pytest.raises(ServerSaid, match="does not support insert"):
        ollama().parse_line('{"error": "llama3 does not support insert"}')


@pytest.mark.parametrize("order", ["psm", "psm-line", "spm"])
def test_ollama_body_uses_prompt_and_suffix_with_the_model_template(order):
    engine = ollama()
    prompt = FimPrompt("x = ", "\nprint(x)\n", order)
    path, body, _ = engine.request(GenerationRequest(prompt, max_tokens=16))
    assert path == "/api/generate"
    assert body == {
        "model": "qwen2.5-coder:1.5b",
        "prompt": "x = ",
        "suffix": "\nprint(x)\n",
        "raw": False,
        "stream": True,
        "options": {"num_predict": 16, "temperature": 0},
    }


def test_ollama_needs_a_model_name():
    with pytest.raises(ConfigurationError, match=r"engine\.model is required"):
        OllamaEngine(EngineSettings(kind="ollama", url=URL))


# -- templates of servers that lay out the prompt themselves -----------------------------------------------


def test_server_templates_say_what_auto_means_and_take_both_orders():
    template = server_template("test", order="psm-line")
    assert template.resolve_order("auto") == "psm-line"
    assert template.resolve_order("spm") == "spm"
    prompt = FimPrompt("a = 1\nb = a +", "\nprint(b)\n", "auto")
    assert template.split_line_head(prompt) == ("a = 1\n", "b = a +")
    assert server_template("test").split_line_head(prompt) == ("a = 1\nb = a +", "")


# -- templates, settings, estimates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "family"),
    [
        pytest.param("qwen2.5-coder-1.5b", "qwen2.5-coder", id="our-name"),
        pytest.param("Qwen/Qwen2.5-Coder-7B", "qwen2.5-coder", id="hub-name"),
        pytest.param("qwen2.5-coder:1.5b", "qwen2.5-coder", id="ollama-tag"),
        pytest.param("bigcode/starcoder2-3b", "starcoder", id="starcoder2"),
        pytest.param("deepseek-coder-6.7b-base", "deepseek-coder", id="deepseek"),
        pytest.param("codellama/CodeLlama-7b-hf", "codellama", id="codellama"),
        pytest.param("codestral-latest", "codestral", id="codestral"),
        pytest.param("gpt-4o-mini", None, id="unknown"),
        pytest.param(None, None, id="none"),
    ],
)
def test_guess_family_from_the_model_name(model, family):
    assert guess_family(model) == family


@pytest.mark.parametrize(
    ("engine", "family"),
    [
        pytest.param(
            EngineSettings(kind="openai", template="starcoder", model="qwen2.5-coder"),
            "starcoder",
            id="setting-wins",
        ),
        pytest.param(EngineSettings(kind="openai", model="deepseek-coder-1.3b"), "deepseek-coder", id="name"),
        pytest.param(EngineSettings(kind="openai", model="my-model"), "qwen2.5-coder", id="default"),
    ],
)
def test_template_of_settings(engine, family):
    assert template_of(engine).family == family


def test_an_unknown_template_family_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="unknown FIM template family"):
        template_of(EngineSettings(kind="openai", template="gpt"))


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        pytest.param(EngineSettings(kind="openai"), "engine.url is required", id="no-url"),
        pytest.param(EngineSettings(kind="openai", url="gpu:8000"), "must start with http", id="no-scheme"),
        pytest.param(EngineSettings(kind="embedded", url=URL), "not a remote engine", id="embedded"),
    ],
)
def test_bad_engine_settings(engine, message):
    with pytest.raises(ConfigurationError, match=message):
        create_remote_engine(Settings(engine=engine))


@pytest.mark.parametrize(
    ("kind", "model", "cls"),
    [
        ("openai", None, OpenAIEngine),
        ("llama-server", None, LlamaServerEngine),
        ("ollama", "qwen2.5-coder:1.5b", OllamaEngine),
    ],
)
def test_create_remote_engine_makes_no_network_call(kind, model, cls):
    # Port 9 (discard) is closed here: building the engine must not try to reach it.
    engine = create_remote_engine(Settings(engine=EngineSettings(kind=kind, url=URL, model=model)))
    assert isinstance(engine, cls)
    assert engine.describe()["url"].startswith(URL)
    engine.close()


def test_token_estimate_counts_up_and_learns_from_servers():
    estimate = TokenEstimate()
    assert estimate.count("") == 0
    assert estimate.count("abc") == 1
    assert estimate.count("x" * 35) == 10
    for _ in range(20):
        estimate.observe(4500, 1000)  # the server says 4.5 characters per token
    assert 4.4 < estimate.chars_per_token <= 4.5
    estimate.observe(10, 1)  # too small a sample to learn from
    estimate.observe(100_000, 10)  # absurd ratios are clamped
    assert estimate.chars_per_token <= TokenEstimate.HIGHEST


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            '{"error": {"message": "model not found", "code": 404}}', "model not found", id="openai"
        ),
        pytest.param('{"error": "model \\"x\\" not found"}', 'model "x" not found', id="ollama"),
        pytest.param('{"detail": "Not Found"}', "Not Found", id="fastapi"),
        pytest.param('{"detail": [{"msg": "field required"}]}', "field required", id="fastapi-validation"),
        pytest.param("<html>\n<b>Bad Gateway</b></html>", "<html> <b>Bad Gateway</b></html>", id="html"),
        pytest.param("", "no details", id="empty"),
    ],
)
def test_error_message_of_a_body(body, message):
    assert error_message(body) == message


def test_remote_errors_are_engine_unavailable_and_shown_to_users():
    from fim_lsp.errors import EngineUnavailableError

    assert issubclass(RemoteUnavailableError, EngineUnavailableError)
    assert RemoteUnavailableError.user_actionable
