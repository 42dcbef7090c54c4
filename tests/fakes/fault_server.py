"""A fault-injecting OpenAI-compatible server: `/v1/completions` answers from a script of behaviours.

Each completion request takes the next behaviour from `script` (or `default` when it is empty): a good
stream (one JSON answer when the request does not ask for a stream), an HTTP error, garbage, a stream
cut short, a stall before answering, or pieces slow to come. With `api_key` set, requests without
`Authorization: Bearer <key>` get 401, as vLLM answers.
"""

from __future__ import annotations

import collections
import ssl
from dataclasses import dataclass, field

from tests.fakes.http import Exchange, FakeHttpServer, sse

MODEL = "fake-coder"


@dataclass(frozen=True)
class Stream:
    """A good answer, streamed piece by piece as server-sent events."""

    pieces: tuple[str, ...] = ("return", " a", " +", " b")
    finish: str | None = "stop"
    """The last chunk's finish_reason (None: the server says nothing of why it stopped)."""
    delay: float = 0.0
    """Seconds before each piece (a slow generator)."""
    done: bool = True
    """End with `data: [DONE]`."""
    usage: dict[str, int] | None = None


@dataclass(frozen=True)
class Status:
    """An HTTP error with a JSON body (or text)."""

    code: int
    body: object = field(default_factory=lambda: {"error": {"message": "internal error", "code": 500}})


@dataclass(frozen=True)
class Garbage:
    """A 200 answer that is not the protocol: an HTML page, broken JSON, JSON of another shape."""

    data: bytes
    content_type: str = "text/event-stream"


@dataclass(frozen=True)
class Truncated:
    """Some pieces, then the connection dropped without the stream's end."""

    pieces: tuple[str, ...] = ("return", " a")


@dataclass(frozen=True)
class Stall:
    """Say nothing for `seconds` (a server busy with another prompt), then answer as `then`."""

    seconds: float
    then: object = field(default_factory=Stream)


Behaviour = Stream | Status | Garbage | Truncated | Stall


class FaultServer(FakeHttpServer):
    """An OpenAI-compatible completions server whose answers a test scripts."""

    def __init__(
        self, port: int = 0, *, api_key: str | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(port, tls=tls)
        self.api_key = api_key
        self.script: collections.deque[Behaviour] = collections.deque()
        self.default: Behaviour = Stream()
        self.route("POST", "/v1/completions")(self._completions)
        self.route("GET", "/v1/models")(self._models)

    def then(self, *behaviours: Behaviour) -> FaultServer:
        self.script.extend(behaviours)
        return self

    def _authorized(self, exchange: Exchange) -> bool:
        if self.api_key is None:
            return True
        if exchange.request.headers.get("authorization") == f"Bearer {self.api_key}":
            return True
        exchange.send_json(
            401, {"error": {"message": "Invalid API key", "type": "invalid_request_error", "code": 401}}
        )
        return False

    def _models(self, exchange: Exchange) -> None:
        if self._authorized(exchange):
            exchange.send_json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    def _completions(self, exchange: Exchange) -> None:
        if not self._authorized(exchange):
            return
        behaviour = self.script.popleft() if self.script else self.default
        self._play(exchange, behaviour)

    def _play(self, exchange: Exchange, behaviour: object) -> None:
        if isinstance(behaviour, Stall):
            exchange.wait(behaviour.seconds)
            self._play(exchange, behaviour.then)
        elif isinstance(behaviour, Status):
            if isinstance(behaviour.body, (bytes, str)):
                data = behaviour.body if isinstance(behaviour.body, bytes) else behaviour.body.encode()
                exchange.send_bytes(behaviour.code, data, "text/plain")
            else:
                exchange.send_json(behaviour.code, behaviour.body)
        elif isinstance(behaviour, Garbage):
            exchange.start_stream(behaviour.content_type)
            exchange.write(behaviour.data)
            exchange.end()
        elif isinstance(behaviour, Truncated):
            exchange.start_stream("text/event-stream")
            for piece in behaviour.pieces:
                exchange.write(sse(_chunk(piece)))
            exchange.cut()
        elif isinstance(behaviour, Stream) and not (exchange.body or {}).get("stream"):
            answer = _chunk("".join(behaviour.pieces), behaviour.finish)
            exchange.send_json(200, {**answer, "usage": behaviour.usage or {}})
        elif isinstance(behaviour, Stream):
            exchange.start_stream("text/event-stream")
            for piece in behaviour.pieces:
                if behaviour.delay:
                    exchange.wait(behaviour.delay)
                exchange.write(sse(_chunk(piece)))
            if behaviour.finish is not None:
                exchange.write(sse(_chunk("", behaviour.finish)))
            if behaviour.usage is not None:
                usage = {
                    "id": "cmpl-fake",
                    "object": "text_completion",
                    "choices": [],
                    "usage": behaviour.usage,
                }
                exchange.write(sse(usage))
            if behaviour.done:
                exchange.write(sse("[DONE]"))
            exchange.end()
        else:
            raise TypeError(f"not a behaviour: {behaviour!r}")


def _chunk(text: str, finish: str | None = None) -> dict[str, object]:
    return {
        "id": "cmpl-fake",
        "object": "text_completion",
        "model": MODEL,
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
    }
