"""The remote engine against a fault-injecting server on loopback: down, slow, failing, garbage, cut short,
refusing the key; and that it recovers, reuses connections and stops promptly when told to."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from fim_lsp.config import EngineSettings, Settings
from fim_lsp.engine.base import CancelToken, Generation, GenerationRequest
from fim_lsp.engine.http import RemoteUnavailableError
from fim_lsp.engine.openai import OpenAIEngine
from fim_lsp.engine.remote import create_remote_engine
from fim_lsp.errors import EngineUnavailableError, PromptTooLongError
from fim_lsp.prompt import FimPrompt
from tests.fakes.fault_server import MODEL, FaultServer, Garbage, Stall, Status, Stream, Truncated
from tests.fakes.http import free_port

#: Slack for timing assertions: the machine running the tests is shared and often busy.
SLACK = 1.0


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def make_engine(url: str, **engine: object) -> OpenAIEngine:
    settings = Settings(engine=EngineSettings(kind="openai", url=url + "/v1", model=MODEL, **engine))  # type: ignore[arg-type]
    created = create_remote_engine(settings)
    assert isinstance(created, OpenAIEngine)
    return created


@pytest.fixture
def engine(fault: FaultServer) -> Iterator[OpenAIEngine]:
    created = make_engine(fault.url, timeout=10.0)
    yield created
    created.close()


def ask(engine: OpenAIEngine, **request: object) -> Generation:
    prompt = FimPrompt("def add(a, b):\n    ", "\n", "auto")
    options = {"max_tokens": 16, "deadline": time.monotonic() + 10, **request}
    return engine.generate(GenerationRequest(prompt, **options))  # type: ignore[arg-type]


def cancel_after(seconds: float) -> CancelToken:
    token = CancelToken()
    threading.Timer(seconds, token.cancel).start()
    return token


# -- good answers --------------------------------------------------------------------------------------------


def test_a_streamed_answer_is_put_together(fault, engine):
    fault.then(Stream(usage={"prompt_tokens": 90, "completion_tokens": 4}))
    generation = ask(engine)
    assert generation.text == "return a + b"
    assert generation.stop_reason == "eot"
    assert (generation.prompt_tokens, generation.generated_tokens) == (90, 4)
    (request,) = fault.requests_to("/v1/completions")
    assert request.body["stream"] is True and request.body["model"] == MODEL
    assert "authorization" not in request.headers


def test_connections_are_kept_alive_across_requests(fault, engine):
    for _ in range(3):
        assert ask(engine).text == "return a + b"
    assert len(fault.requests_to("/v1/completions")) == 3
    assert fault.connections == 1


@pytest.mark.parametrize(
    ("behaviour", "text", "reason"),
    [
        pytest.param(Stream(("a", " b"), finish="length"), "a b", "length", id="token-limit"),
        pytest.param(Stream(("a",), finish=None, done=True), "a", "length", id="done-without-finish"),
        pytest.param(Stream(("x = 1", "<|endoftext|>", "junk")), "x = 1", "eot", id="eot-spelled-out"),
        pytest.param(Stream(("x = 1\n", "<|file_sep|>other.py")), "x = 1\n", "eot", id="file-separator"),
        pytest.param(Stream(("a", "b\nc", "d"), finish="length"), "ab", "stop", id="stop-string"),
    ],
)
def test_why_an_answer_ended(fault, engine, behaviour, text, reason):
    fault.then(behaviour)
    generation = ask(engine, stop=("\n",) if reason == "stop" else ())
    assert (generation.text, generation.stop_reason) == (text, reason)


def test_the_callers_callback_ends_the_answer_and_the_rest_is_not_read(fault, engine):
    fault.then(Stream(tuple(f" w{i}" for i in range(40)), delay=0.02))
    seen = []

    def enough(text: str) -> bool:
        seen.append(text)
        return len(seen) == 3

    generation = ask(engine, on_text=enough, max_tokens=500)
    assert (generation.text, generation.stop_reason) == (" w0 w1 w2", "stop")
    wait_for(lambda: fault.gone == ["/v1/completions"])  # the HTTP call was aborted, not drained


# -- cancellation and deadlines ------------------------------------------------------------------------------


def wait_for(condition, timeout: float = 5.0) -> None:
    ends = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < ends, "condition not met in time"
        time.sleep(0.02)


def test_cancel_mid_stream_returns_promptly_and_aborts_the_call(fault, engine):
    fault.then(Stream(tuple(f" w{i}" for i in range(200)), delay=0.05))
    token = cancel_after(0.4)
    generation = ask(engine, cancel=token, deadline=time.monotonic() + 30, max_tokens=500)
    returned = time.monotonic()
    assert generation.stop_reason == "cancelled"
    assert generation.text.startswith(" w0")
    assert token.cancelled_at is not None and returned - token.cancelled_at < 0.3 + SLACK
    wait_for(lambda: fault.gone == ["/v1/completions"])


def test_cancel_while_the_server_is_still_silent_returns_promptly(fault, engine):
    fault.then(Stall(10.0))
    token = cancel_after(0.3)
    started = time.monotonic()
    generation = ask(engine, cancel=token, deadline=time.monotonic() + 30)
    assert (generation.text, generation.stop_reason) == ("", "cancelled")
    assert time.monotonic() - started < 0.3 + SLACK


def test_a_slow_server_is_left_at_the_deadline(fault, engine):
    fault.then(Stall(10.0))
    started = time.monotonic()
    generation = ask(engine, deadline=time.monotonic() + 0.5)
    assert (generation.text, generation.stop_reason) == ("", "deadline")
    assert time.monotonic() - started < 0.5 + SLACK
    # The next request is not stuck behind the abandoned one.
    assert ask(engine).text == "return a + b"


def test_a_slow_stream_keeps_what_came_before_the_deadline(fault, engine):
    fault.then(Stream(tuple(f" w{i}" for i in range(100)), delay=0.1))
    generation = ask(engine, deadline=time.monotonic() + 0.6, max_tokens=500)
    assert generation.stop_reason == "deadline"
    assert generation.text.startswith(" w0")


def test_silence_longer_than_the_timeout_is_an_error(fault):
    fault.then(Stall(5.0))
    engine = make_engine(fault.url, timeout=0.5)
    with pytest.raises(RemoteUnavailableError, match=r"sent nothing for 0.5 s \(engine.timeout\)"):
        ask(engine)
    engine.close()


# -- the server down, failing, and back ----------------------------------------------------------------------


def test_a_server_that_is_down_fails_fast_and_recovery_needs_nothing():
    port = free_port()
    engine = make_engine(f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(RemoteUnavailableError) as first:
        ask(engine)
    first_took = time.monotonic() - started
    assert "cannot connect to the OpenAI-compatible server at" in str(first.value)
    assert "connection refused" in str(first.value)
    assert isinstance(first.value, EngineUnavailableError)
    assert first_took < 0.25 + 0.5 + SLACK  # bounded retries with backoff

    started = time.monotonic()
    with pytest.raises(RemoteUnavailableError) as second:
        ask(engine)
    assert time.monotonic() - started < 0.2 + SLACK / 2  # known down: no retries per keystroke
    assert str(second.value) == str(first.value)  # the same fault reads the same, so it is shown once

    with FaultServer(port) as server:
        assert ask(engine).text == "return a + b"  # back: the very next request works
        assert len(server.requests_to("/v1/completions")) == 1
    engine.close()


def test_a_server_that_goes_away_between_requests(fault, engine):
    assert ask(engine).text == "return a + b"
    fault.stop()
    with pytest.raises(RemoteUnavailableError, match="cannot connect"):
        ask(engine)
    fault.start()
    assert ask(engine).text == "return a + b"


def test_server_errors_are_reported_and_the_next_request_works(fault, engine):
    fault.then(Status(500), Status(500))
    for _ in range(2):
        with pytest.raises(RemoteUnavailableError, match=r"failed \(HTTP 500: internal error\)"):
            ask(engine)
    assert ask(engine).text == "return a + b"
    assert len(fault.requests_to("/v1/completions")) == 3  # a 500 is not retried


def test_unavailable_is_retried_with_backoff(fault, engine):
    fault.then(Status(503, {"error": {"message": "Loading model"}}), Status(502, "Bad Gateway"))
    started = time.monotonic()
    assert ask(engine).text == "return a + b"
    assert len(fault.requests_to("/v1/completions")) == 3
    assert time.monotonic() - started >= 0.2 + 0.4  # two pauses, each doubling (with jitter)


def test_retries_are_bounded(fault, engine):
    fault.default = Status(503, {"error": {"message": "Loading model"}})
    with pytest.raises(RemoteUnavailableError, match=r"HTTP 503: Loading model"):
        ask(engine)
    assert len(fault.requests_to("/v1/completions")) == 3


def test_retries_stop_at_the_deadline(fault, engine):
    fault.default = Status(503, {"error": {"message": "Loading model"}})
    with pytest.raises(RemoteUnavailableError, match=r"HTTP 503"):
        ask(engine, deadline=time.monotonic() + 0.1)
    assert len(fault.requests_to("/v1/completions")) == 1


def test_a_prompt_too_long_for_the_server(fault, engine):
    fault.then(Status(400, {"error": {"message": "Requested tokens (5000) exceed context window of 2048"}}))
    with pytest.raises(PromptTooLongError, match="exceed context window"):
        ask(engine)


def test_an_unknown_model(fault, engine):
    fault.then(Status(404, {"error": {"message": "The model `x` does not exist."}}))
    with pytest.raises(RemoteUnavailableError, match=r"does not exist.*check engine\.url, engine\.model"):
        ask(engine)


# -- garbage and broken streams ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(
            Garbage(b"<html><body><h1>Welcome to nginx!</h1></body></html>\n", "text/html"), id="html"
        ),
        pytest.param(Garbage(b"data: {this is not json\n\n"), id="broken-json"),
        pytest.param(Garbage(b'data: {"object": "chat.completion.chunk"}\n\n'), id="another-shape"),
        pytest.param(
            Garbage(b'data: {"choices": [{"text": null, "finish_reason": 7}]}\n\n'), id="wrong-types"
        ),
        pytest.param(Garbage(b"x" * (1 << 21)), id="endless-line"),
        pytest.param(Garbage(bytes(range(256)) * 4 + b"\n"), id="binary"),
    ],
)
def test_garbage_is_an_error_not_a_completion(fault, engine, garbage):
    fault.then(garbage)
    with pytest.raises(RemoteUnavailableError) as error:
        ask(engine)
    message = str(error.value)
    assert "OpenAI-compatible server" in message
    assert any(
        words in message for words in ("not a OpenAI-compatible server stream", "line of over", "ended")
    )
    assert ask(engine).text == "return a + b"


def test_a_stream_cut_short_is_an_error(fault, engine):
    fault.then(Truncated())
    with pytest.raises(RemoteUnavailableError, match=r"broke off|ended its answer"):
        ask(engine)
    assert ask(engine).text == "return a + b"


def test_a_stream_that_stops_without_an_end_is_an_error(fault, engine):
    fault.then(Stream(("return",), finish=None, done=False))
    with pytest.raises(RemoteUnavailableError, match="ended its answer before saying it was done"):
        ask(engine)


def test_an_error_event_in_the_stream(fault, engine):
    fault.then(Garbage(b'data: {"error": {"message": "KV cache full", "code": 500}}\n\n'))
    with pytest.raises(RemoteUnavailableError, match="reported an error mid-answer: KV cache full"):
        ask(engine)


# -- API keys ------------------------------------------------------------------------------------------------


def test_a_wrong_key_from_the_environment_is_refused_with_a_cure(monkeypatch):
    monkeypatch.setenv("FIM_TEST_API_KEY", "wrong")
    with FaultServer(api_key="right") as server:
        engine = make_engine(server.url, api_key_env="FIM_TEST_API_KEY")
        with pytest.raises(RemoteUnavailableError) as error:
            ask(engine)
        assert str(error.value).endswith(
            "refused our API key (HTTP 401: Invalid API key); check the key in $FIM_TEST_API_KEY"
        )
        assert server.requests_to("/v1/completions")[0].headers["authorization"] == "Bearer wrong"
        assert len(server.requests_to("/v1/completions")) == 1  # a refusal is not retried
        engine.close()

        monkeypatch.setenv("FIM_TEST_API_KEY", "right")
        engine = make_engine(server.url, api_key_env="FIM_TEST_API_KEY")
        assert ask(engine).text == "return a + b"
        engine.close()


def test_no_key_where_one_is_needed_names_the_setting():
    with FaultServer(api_key="right") as server:
        engine = make_engine(server.url)
        with pytest.raises(
            RemoteUnavailableError, match=r"name the environment variable .* engine\.apiKeyEnv"
        ):
            ask(engine)
        engine.close()


def test_a_server_that_ignores_the_token_limit_is_held_to_it(fault, engine):
    fault.then(Stream(tuple(f" w{i}" for i in range(50)), finish="stop"))
    generation = ask(engine, max_tokens=5)
    assert (generation.text, generation.stop_reason) == (" w0 w1 w2 w3 w4", "length")
