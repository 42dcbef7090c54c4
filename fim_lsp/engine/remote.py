"""Remote engines: the model runs in an inference server we do not own, reached over HTTP.

Three kinds share everything here and differ only in their protocol (one module each):

- `openai` (`openai.py`): `/v1/completions` of vLLM, llama-cpp-python's server, LM Studio and the like.
  We render the model family's FIM prompt ourselves, since such servers only continue text.
- `llama-server` (`llama_server.py`): llama.cpp's own server, whose `/infill` takes the prefix, the suffix
  and workspace snippets as separate fields and lays them out with the model's FIM tokens itself.
- `ollama` (`ollama.py`): `/api/generate` with `prompt` and `suffix`; Ollama applies the model's template.

Every engine takes the prompt's parts (`FimPrompt`): the last two send them as the server's own fields,
workspace snippets as llama-server's `input_extra`; their template only names the order `auto` means.

Token counts for the context budget are estimated from characters (calling a tokenizer endpoint once per
line of context would cost a round trip each); the estimate learns the real ratio from the token counts
servers report with each answer.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fim_lsp.config import EngineSettings, Settings, api_key
from fim_lsp.engine.base import Engine, Generation, GenerationRequest, StopReason
from fim_lsp.engine.http import HttpTransport, Interrupted, RemoteUnavailableError, error_message
from fim_lsp.engine.limits import first_stop
from fim_lsp.errors import ConfigurationError, FimError
from fim_lsp.prompt import FimTemplate, Order, known_templates, template_for_family

logger = logging.getLogger(__name__)

Check = tuple[str, str, str]  # (verdict 'ok' | 'warn' | 'FAIL', what, detail), as `fim-lsp doctor` prints
DEFAULT_TEMPLATE = "qwen2.5-coder"
#: How long a stream that said it is done may take to end, before its connection is given up.
END_GRACE_SECONDS = 0.5

# -- token estimate ---------------------------------------------------------------------------------------


class TokenEstimate:
    """Tokens of a text estimated from its length, with a characters-per-token ratio learnt from servers.

    Code in the Qwen, StarCoder and CodeLlama vocabularies runs at 3 to 4.5 characters per token
    (measured on our own Python, Go and TypeScript: 3.1 to 4.5). Starting at 3.5 and rounding each
    line up errs towards counting too many, which costs a little context but never overflows the
    server's window.
    """

    INITIAL = 3.5
    LOWEST, HIGHEST = 2.5, 5.0
    #: Weight of a new observation: a few answers move the ratio, one odd prompt does not.
    WEIGHT = 0.3
    #: Prompts shorter than this say little about the ratio (special tokens dominate).
    MIN_TOKENS = 64

    def __init__(self, chars_per_token: float = INITIAL) -> None:
        self.chars_per_token = chars_per_token

    def count(self, text: str) -> int:
        return self.count_length(len(text))

    def count_length(self, characters: int) -> int:
        return math.ceil(characters / self.chars_per_token)

    def observe(self, characters: int, tokens: int) -> None:
        """Learn from a server's count of `tokens` for `characters` of plain text."""
        if tokens < self.MIN_TOKENS or characters <= 0:
            return
        seen = min(max(characters / tokens, self.LOWEST), self.HIGHEST)
        self.chars_per_token += self.WEIGHT * (seen - self.chars_per_token)


# -- templates of servers that lay out the prompt themselves ---------------------------------------------


def server_template(server: str, order: Order = "psm") -> FimTemplate:
    """The template of an engine whose server lays out the FIM prompt itself: fim-lsp never renders it;
    it says which orders the server takes and what `auto` means for it (`psm-line` puts the cursor's line
    after the middle marker, where a server that takes it apart, llama-server's `prompt`, keeps its cache
    warm)."""
    return FimTemplate(
        family=f"{server} (server-side template)",
        markers=(),
        layouts={"psm": "{prefix}{suffix}", "spm": "{suffix}{prefix}"},
        stop=(),
        order=order,
    )


# -- the shared engine ------------------------------------------------------------------------------------


class ServerSaid(Exception):
    """A stream carried the server's own error message instead of text."""


@dataclass
class Chunk:
    """What one line of a server's stream says; every field is optional."""

    text: str = ""
    finish: StopReason | None = None
    """Set when the server says generation ended, and why (in our words)."""
    end: bool = False
    """The stream's own end marker: nothing more will come."""
    prompt_tokens: int | None = None
    """All tokens of the prompt, as the server counted them."""
    cached_tokens: int | None = None
    """Prompt tokens the server found in its cache."""
    evaluated_tokens: int | None = None
    """Prompt tokens the server evaluated (for servers that report this rather than the whole)."""
    generated_tokens: int | None = None
    prompt_ms: float | None = None


_REPORTED = ("prompt_tokens", "cached_tokens", "evaluated_tokens", "generated_tokens", "prompt_ms")


@dataclass
class _Tally:
    text: str = ""
    pieces: int = 0
    reason: StopReason | None = None
    reported: Chunk = field(default_factory=Chunk)


class RemoteEngine(Engine):
    """An engine behind an inference server's HTTP API. Subclasses speak one protocol."""

    kind: ClassVar[str]
    server_name: ClassVar[str]

    def __init__(self, engine: EngineSettings, template: FimTemplate) -> None:
        if not engine.url:
            raise ConfigurationError(f"engine.url is required for engine kind {engine.kind!r}")
        if not re.match(r"https?://", engine.url):
            raise ConfigurationError(f"engine.url must start with http:// or https://, not {engine.url!r}")
        self.settings = engine
        self.template = template
        self.model = engine.model
        self.tokens = TokenEstimate()
        self.transport = HttpTransport(
            self.base_url(engine.url),
            server=self.server_name,
            timeout=engine.timeout,
            verify_tls=engine.verify_tls,
            api_key=api_key(engine),
            api_key_env=engine.api_key_env,
        )

    @staticmethod
    def base_url(url: str) -> str:
        """The URL paths are resolved against (the settings' URL unless a protocol wants otherwise)."""
        return url.rstrip("/")

    # -- protocol hooks ---------------------------------------------------------------------------------

    @abstractmethod
    def request(self, request: GenerationRequest) -> tuple[str, dict[str, Any], int]:
        """The path and JSON body of a streamed generation, and the prompt's characters (for learning
        the token ratio)."""

    @abstractmethod
    def parse_line(self, line: str) -> Chunk | None:
        """One line of the response stream; None for lines that carry nothing (keep-alives, blanks)."""

    @abstractmethod
    def checks(self) -> list[Check]:
        """`fim-lsp doctor`'s checks of this server: reachable, model, fill-in-the-middle."""

    def eot_strings(self) -> tuple[str, ...]:
        """Strings that end the middle as the model's end of text, looked for here as well as by the
        server (which may print special tokens as text)."""
        return ()

    # -- Engine -----------------------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        return self.tokens.count(text)

    def generate(self, request: GenerationRequest) -> Generation:
        path, body, prompt_chars = self.request(request)
        started = time.monotonic()
        first_at: float | None = None
        tally = _Tally()
        stream = self.transport.stream_lines(path, body, cancel=request.cancel, deadline=request.deadline)
        ended = False
        try:
            for line in stream:
                chunk = self._parse(line, path)
                if chunk is None:
                    continue
                if chunk.text and first_at is None:
                    first_at = time.monotonic()
                if self._take(chunk, tally, request):
                    break
                if chunk.end:
                    ended = True
                    break
        except Interrupted as stop:
            tally.reason = stop.reason
        finally:
            # After the server's own end only the body's terminator is left: reading it keeps the
            # connection for the next request. Stopping earlier aborts the HTTP call.
            stream.close(grace=END_GRACE_SECONDS if ended else 0.0)
        if tally.reason is None:
            raise RemoteUnavailableError(f"{self.transport.where} ended its answer before saying it was done")
        return self._generation(tally, started, first_at, prompt_chars)

    def _parse(self, line: str, path: str) -> Chunk | None:
        try:
            return self.parse_line(line)
        except ServerSaid as said:
            raise self.transport.stream_error(str(said)) from None
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise RemoteUnavailableError(
                f"{self.transport.where} sent something that is not a {self.server_name} stream on {path}: "
                f"{line[:80]!r}"
            ) from exc

    def _take(self, chunk: Chunk, tally: _Tally, request: GenerationRequest) -> bool:
        """Add a chunk to the answer; True when we end it here (a stop string, the caller's callback).

        A server's own end sets the reason but reading goes on to the stream's end, which may still
        bring the token counts."""
        for name in _REPORTED:
            value = getattr(chunk, name)
            if value is not None:
                setattr(tally.reported, name, value)
        if chunk.text:
            tally.text += chunk.text
            tally.pieces += 1
            # Stop strings are ours to find: a server that stopped on one would not say which.
            for strings, reason in ((self.eot_strings(), "eot"), (request.stop, "stop")):
                cut = first_stop(tally.text, strings)
                if cut is not None:
                    tally.text, tally.reason = tally.text[:cut], reason  # type: ignore[assignment]
                    return True
            if request.on_text is not None and request.on_text(tally.text):
                tally.reason = "stop"
                return True
            if tally.pieces >= request.max_tokens:
                # Each piece is at least one token: a server that ignores the limit is held to it here.
                tally.reason = "length"
                return True
        if chunk.finish is not None and tally.reason is None:
            tally.reason = chunk.finish
        return False

    def _generation(
        self, tally: _Tally, started: float, first_at: float | None, prompt_chars: int
    ) -> Generation:
        finished = time.monotonic()
        reported = tally.reported
        if reported.prompt_tokens:
            self.tokens.observe(prompt_chars, reported.prompt_tokens)
        prompt_tokens = reported.prompt_tokens or self.tokens.count_length(prompt_chars)
        if reported.evaluated_tokens is not None:
            evaluated = reported.evaluated_tokens
        else:
            evaluated = prompt_tokens - (reported.cached_tokens or 0)
        if reported.prompt_ms is not None:
            prompt_ms = reported.prompt_ms
        else:
            prompt_ms = ((first_at or finished) - started) * 1000
        return Generation(
            text=tally.text,
            stop_reason=tally.reason or "length",
            prompt_tokens=prompt_tokens,
            evaluated_tokens=max(evaluated, 0),
            generated_tokens=reported.generated_tokens or tally.pieces,
            prompt_ms=prompt_ms,
            generate_ms=(finished - (first_at or finished)) * 1000,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "backend": f"{self.server_name} ({self.kind})",
            "url": self.transport.base_url,
            "model": self.model,
            "template": self.template.family,
            "chars_per_token": round(self.tokens.chars_per_token, 2),
        }

    def close(self) -> None:
        self.transport.close()

    # -- helpers for protocols --------------------------------------------------------------------------

    def get(self, path: str, *, timeout: float | None = None) -> tuple[int, Any]:
        return self.transport.request_json("GET", path, timeout=timeout)

    def post(self, path: str, body: Any, *, timeout: float | None = None) -> tuple[int, Any]:
        return self.transport.request_json("POST", path, body, timeout=timeout)


def sse_data(line: str) -> str | None:
    """The payload of a server-sent-events `data:` line; None for comments, blanks and other fields.

    Raises ValueError for a line that is not server-sent events at all (an HTML page, say).
    """
    if not line or line.startswith(":"):
        return None
    name, colon, value = line.partition(":")
    if not colon or name not in ("data", "event", "id", "retry", "error"):
        raise ValueError("not a server-sent event")
    if name == "error":
        raise ServerSaid(error_message(value.strip()))
    if name != "data":
        return None
    return value[1:] if value.startswith(" ") else value


def sse_event(line: str) -> dict[str, Any] | Chunk | None:
    """The JSON event of one server-sent-events line, for OpenAI-style streams.

    None for lines that carry no data; for `data: [DONE]`, an end chunk with finish `length`: a stream
    that ends without a finish reason first was cut short by the server, not ended by the model. An
    error event raises ServerSaid.
    """
    data = sse_data(line)
    if data is None:
        return None
    if data.strip() == "[DONE]":
        return Chunk(end=True, finish="length")
    event = json_object(data)
    if "error" in event:
        error = event["error"]
        raise ServerSaid(str(error.get("message", error) if isinstance(error, dict) else error))
    return event


def json_object(text: str) -> dict[str, Any]:
    """A JSON object, or ValueError."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def guess_family(model: str | None) -> str | None:
    """The FIM template family a model's name gives away (`Qwen/Qwen2.5-Coder-7B` -> `qwen2.5-coder`)."""
    if not model:
        return None
    name = model.lower().replace("_", "-")
    for family in sorted(known_templates(), key=len, reverse=True):
        if family in name or family.replace("-", "") in name.replace("-", ""):
            return family
    return None


def template_of(engine: EngineSettings) -> FimTemplate:
    """The FIM template of a server that cannot tell us its vocabulary: the setting, the model's name,
    or the default family."""
    family = engine.template or guess_family(engine.model) or DEFAULT_TEMPLATE
    return template_for_family(family)


# -- entry points -----------------------------------------------------------------------------------------


def create_remote_engine(settings: Settings) -> RemoteEngine:
    """The engine for a remote `settings.engine.kind`. Makes no network call: a server that is down now
    may be up by the first completion, and every request finds out for itself."""
    engine = settings.engine
    if engine.kind == "openai":
        from fim_lsp.engine.openai import OpenAIEngine

        return OpenAIEngine(engine)
    if engine.kind == "llama-server":
        from fim_lsp.engine.llama_server import LlamaServerEngine

        return LlamaServerEngine(engine)
    if engine.kind == "ollama":
        from fim_lsp.engine.ollama import OllamaEngine

        return OllamaEngine(engine)
    raise ConfigurationError(f"engine kind {engine.kind!r} is not a remote engine")


def check_remote(settings: Settings) -> list[Check]:
    """`fim-lsp doctor`'s checks of the configured server: key, reachable, which model, FIM-capable."""
    engine_settings = settings.engine
    checks: list[Check] = []
    if engine_settings.api_key_env:
        if api_key(engine_settings):
            checks.append(("ok", "api key", f"read from ${engine_settings.api_key_env}"))
        else:
            checks.append(("FAIL", "api key", f"${engine_settings.api_key_env} is not set or empty"))
    try:
        engine = create_remote_engine(settings)
    except FimError as exc:
        return [*checks, ("FAIL", "engine settings", str(exc))]
    try:
        checks.extend(engine.checks())
    finally:
        engine.close()
    return checks


def reachable_check(engine: RemoteEngine, path: str) -> tuple[Check, Any]:
    """('ok', 'server', ...) with the JSON `path` answered, or a FAIL and None."""
    started = time.monotonic()
    try:
        status, body = engine.get(path, timeout=min(engine.settings.timeout, 30.0))
    except FimError as exc:
        return ("FAIL", "server", str(exc)), None
    elapsed = (time.monotonic() - started) * 1000
    if status >= 400:
        error = engine.transport.status_error(status, json.dumps(body), path)
        return ("FAIL", "server", str(error)), None
    return ("ok", "server", f"{engine.server_name} at {engine.transport.base_url} ({elapsed:.0f} ms)"), body
