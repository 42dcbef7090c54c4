"""The `openai` engine against a real server: llama-cpp-python's `python -m llama_cpp.server` serving the
0.5B GGUF on loopback, started once for the module.

Real FIM completions through the engine (streamed), cancellation before and during the stream, the
doctor's checks, and `fim-lsp --stdio` completing a Python function body through the server.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fim_lsp.config import EngineSettings, Settings
from fim_lsp.engine.base import CancelToken, GenerationRequest
from fim_lsp.engine.openai import OpenAIEngine
from fim_lsp.engine.remote import check_remote, create_remote_engine
from fim_lsp.prompt import FimPrompt
from tests.e2e.conftest import FAST_MODEL
from tests.fakes.http import free_port

pytestmark = [pytest.mark.model, pytest.mark.slow]

#: The machine is shared: generous limits for what the model does, tight ones only for what we do.
STARTUP_SECONDS = 180
GENERATION_SECONDS = 240

FUNCTION = 'def add(a, b):\n    """Return the sum of a and b."""\n    \n\nprint(add(2, 3))\n'
BODY_LINE, BODY_COLUMN = 2, 4


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` with the 0.5B model on a free loopback port; yields its `/v1` URL."""
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python's `server` extra is not installed")
    from fim_lsp.errors import FimError
    from fim_lsp.models import resolve_model

    try:
        model = resolve_model(FAST_MODEL)
    except FimError as exc:
        pytest.skip(f"{FAST_MODEL} is not provisioned: {exc}")
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model), "--model_alias", FAST_MODEL,
        "--n_ctx", "2048", "--n_threads", "2", "--n_threads_batch", "2",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            # uvicorn would wait for the cancelled evaluation the last test leaves running: no need.
            process.wait(3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    ends = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < ends:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    pytest.fail(f"llama_cpp.server did not answer in {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def engine(llama_server: str) -> Iterator[OpenAIEngine]:
    settings = Settings(
        engine=EngineSettings(kind="openai", url=llama_server, model=FAST_MODEL, timeout=GENERATION_SECONDS)
    )
    created = create_remote_engine(settings)
    assert isinstance(created, OpenAIEngine)
    yield created
    created.close()


def fim_prompt(
    engine: OpenAIEngine, prefix: str = 'def add(a, b):\n    """Return the sum of a and b."""\n    '
):
    # PSM: these tests are about the engine; the pipeline's SPM prompts hold the prefix's trailing
    # spaces back, which a raw prompt does not.
    return FimPrompt(prefix, "\n\nprint(add(2, 3))\n", "psm")


# The order matters on a busy machine: llama-cpp-python answers nothing else while it evaluates a prompt,
# and the last test leaves it evaluating one that was cancelled.


def test_doctor_checks_the_real_server(llama_server):
    checks = check_remote(Settings(engine=EngineSettings(kind="openai", url=llama_server, model=FAST_MODEL)))
    assert checks == [
        checks[0],
        ("ok", "model", f"{FAST_MODEL} (template qwen2.5-coder)"),
        ("ok", "fill-in-the-middle", "the qwen2.5-coder FIM tokens are in the model's vocabulary"),
    ]
    assert checks[0][:2] == ("ok", "server")


def adds(program: str) -> bool:
    """Whether `program` defines an `add` that adds: what any right answer for FUNCTION's body does,
    however the model words it on this CPU and build."""
    namespace: dict = {"print": lambda *_args: None}
    exec(compile(program, "adder.py", "exec"), namespace)  # our own test program, not user input
    return namespace["add"](2, 3) == 5


def insert(text: str, line: int, character: int, middle: str) -> str:
    lines = text.split("\n")
    lines[line] = lines[line][:character] + middle + lines[line][character:]
    return "\n".join(lines)


async def test_fim_lsp_completes_a_function_body_through_the_server(start_editor, llama_server):
    editor = await start_editor(
        {"engine": {"kind": "openai", "url": llama_server, "model": FAST_MODEL}, "maxNewTokens": 24}
    )
    status = await editor.wait_until("ready", "error", timeout=60)
    assert status == {"state": "ready", "message": "ready (qwen2.5-coder)"}
    uri = "file:///work/adder.py"
    editor.open(uri, FUNCTION)
    (item,) = await editor.inline(uri, BODY_LINE, BODY_COLUMN)
    assert adds(insert(FUNCTION, BODY_LINE, BODY_COLUMN, item.insert_text)), item.insert_text


def test_a_fim_completion_streams_through_the_engine(engine):
    pieces: list[str] = []

    def watch(text: str) -> bool:
        pieces.append(text)
        return False

    generation = engine.generate(
        GenerationRequest(
            fim_prompt(engine), max_tokens=12, deadline=time.monotonic() + GENERATION_SECONDS, on_text=watch
        )
    )
    assert generation.stop_reason in ("eot", "length")
    first_line = generation.text.split("\n", 1)[0]
    assert adds(insert(FUNCTION, BODY_LINE, BODY_COLUMN, first_line)), generation
    assert len(pieces) >= 3 and pieces[-1] == generation.text  # it came token by token
    assert generation.prompt_ms > 0 and generation.generated_tokens >= 3


def _cancel_when(condition: threading.Event, token: CancelToken, delay: float) -> None:
    def run() -> None:
        condition.wait(GENERATION_SECONDS)
        time.sleep(delay)
        token.cancel()

    threading.Thread(target=run, daemon=True).start()


def test_cancel_mid_stream_returns_promptly_and_frees_the_server(engine):
    token = CancelToken()
    first_text = threading.Event()

    def watch(_text: str) -> bool:
        first_text.set()
        return False

    _cancel_when(first_text, token, delay=0.2)
    # A prompt the 0.5B model goes on writing past (it does not stop by itself: see ENVIRONMENT.md).
    prompt = FimPrompt("# Forty numbered print statements\nprint(1)\nprint(2)\n", "", "psm")
    request = GenerationRequest(
        prompt, max_tokens=400, deadline=time.monotonic() + GENERATION_SECONDS, cancel=token, on_text=watch
    )
    generation = engine.generate(request)
    returned = time.monotonic()
    assert generation.stop_reason == "cancelled", generation
    assert generation.text
    assert token.cancelled_at is not None
    assert returned - token.cancelled_at < 1.0, "cancellation took longer than a second"
    # The server dropped the cancelled generation: the next request is answered, not queued behind it.
    again = engine.generate(
        GenerationRequest(fim_prompt(engine), max_tokens=6, deadline=time.monotonic() + GENERATION_SECONDS)
    )
    assert again.stop_reason in ("eot", "length") and again.text, again


def test_cancel_while_the_server_evaluates_the_prompt_returns_promptly(engine):
    # About 1,200 tokens of prompt: seconds of evaluation on this machine before the first token.
    prefix = "".join(f"value_{i} = compute({i}, {i * 7 % 13})\n" for i in range(100)) + "total = "
    token = CancelToken()
    threading.Timer(0.3, token.cancel).start()
    started = time.monotonic()
    generation = engine.generate(
        GenerationRequest(
            FimPrompt(prefix, "\n", "psm"),
            max_tokens=8,
            deadline=time.monotonic() + GENERATION_SECONDS,
            cancel=token,
        )
    )
    assert (generation.text, generation.stop_reason) == ("", "cancelled")
    assert time.monotonic() - started < 0.3 + 1.0


def test_quality_bench_runs_both_systems_on_the_remote_server(llama_server):
    from fim_lsp.bench.quality import Task, engine_systems

    prefix, suffix = FUNCTION.split("\n    \n", 1)
    task = Task(
        set_name="single-line",
        task_id="add/L2",
        language="python",
        path="add.py",
        prefix=prefix + "\n    ",
        suffix="\n" + suffix,
        reference="return a + b",
        metric="exact-match",
        canonical="return a + b",
    )
    engine = {"kind": "openai", "url": llama_server, "model": FAST_MODEL, "template": "qwen2.5-coder"}
    with engine_systems(FAST_MODEL, settings_json={"engine": engine}) as (pipeline, baseline, description):
        assert f"openai at {llama_server}" in description
        answer = pipeline(task, None)
        raw = baseline(task, 16)
    assert answer.text is not None, answer
    assert adds(insert(FUNCTION, BODY_LINE, BODY_COLUMN, answer.text)), answer
    assert raw.max_tokens == 16 and raw.tokens <= 16
