"""HTTP plumbing of the remote engines: one keep-alive client, streamed responses that a cancel flag or a
deadline can abort at any moment, bounded retries, and every transport failure translated into our errors.

A streamed response is read on a helper thread that hands lines to the caller through a queue. The caller
(the engine's worker thread) waits on that queue in short slices, so a cancelled or superseded request
returns within one slice even while the server is still evaluating the prompt and has sent nothing yet:
a blocking read on the worker itself could only notice the cancel flag after the server's next byte.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from fim_lsp import __version__
from fim_lsp.engine.base import CancelToken, StopReason
from fim_lsp.engine.limits import interruption
from fim_lsp.errors import EngineUnavailableError, PromptTooLongError

logger = logging.getLogger(__name__)

#: How often a waiting caller looks at its cancel flag and deadline.
POLL_SECONDS = 0.02
#: Connecting takes a round trip; a server that cannot accept a connection in this long is down for us.
CONNECT_TIMEOUT = 5.0
#: Attempts for one request when the connection fails before the server has answered.
MAX_ATTEMPTS = 3
#: First pause between attempts; doubled after each (with a little jitter so clients do not march).
BACKOFF_SECONDS = 0.25
#: Statuses that say "try again shortly": a gateway in front of the server, or a model still loading.
RETRY_STATUSES = frozenset({502, 503, 504})
#: Longest line a stream may send: a protocol line is a small JSON object, anything longer is garbage.
MAX_LINE_BYTES = 1 << 20
#: Most of an error body we read and quote.
MAX_ERROR_BODY = 4096

# The servers' words for a prompt that does not fit the context (llama.cpp, llama-cpp-python, vLLM).
_CONTEXT_WORDS = re.compile(r"context (length|size|window)|exceeds? the available context", re.IGNORECASE)


class RemoteUnavailableError(EngineUnavailableError):
    """A remote inference server cannot serve: down, refusing us, failing, or speaking something else.

    Users can act on these (start the server, fix the URL or the key), so the message names the server
    and the cure; it stays the same for the same fault, so a status shown once is not repeated per
    keystroke.
    """

    user_actionable = True


class Interrupted(Exception):
    """The caller's cancel flag or deadline stopped a stream; `reason` says which."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason)
        self.reason: StopReason = reason


def error_message(body: str) -> str:
    """The human part of an error body: the usual JSON shapes' message, or the start of the text."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed.get("detail", parsed.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if isinstance(error, list) and error and isinstance(error[0], dict):  # FastAPI validation errors
            error = error[0].get("msg", error[0])
        if error is not None:
            return str(error)[:300]
    text = " ".join(body.split())
    return text[:200] or "no details"


@dataclass(frozen=True)
class _Failure:
    error: Exception


_END = object()


class HttpTransport:
    """One server's HTTP client: base URL, key, TLS and timeouts from the settings, connections reused.

    `server` names the kind of server in messages ("llama-server", "OpenAI-compatible server", ...).
    """

    def __init__(
        self,
        base_url: str,
        *,
        server: str,
        timeout: float,
        verify_tls: bool = True,
        api_key: str | None = None,
        api_key_env: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.server = server
        self.timeout = timeout
        self.api_key_env = api_key_env
        # No compression: a compressing proxy would hold streamed tokens back until a block is full.
        headers = {"User-Agent": f"fim-lsp/{__version__}", "Accept-Encoding": "identity"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            verify=verify_tls,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            limits=httpx.Limits(max_keepalive_connections=4, keepalive_expiry=60.0),
        )
        self._down = False
        """Set while the server is known unreachable: one attempt per request then, no retries."""
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"the {self.server} at {self.base_url}"

    def close(self) -> None:
        self.client.close()

    # -- translation ------------------------------------------------------------------------------------

    def translate(self, exc: Exception) -> EngineUnavailableError:
        """Our error for a transport failure, with a message that stays the same for the same fault."""
        if isinstance(exc, EngineUnavailableError):
            return exc
        detail = re.sub(r"\[Errno -?\d+\]\s*", "", str(exc)).strip() or type(exc).__name__
        if isinstance(exc, httpx.ConnectTimeout):
            waited = min(self.timeout, CONNECT_TIMEOUT)
            message = f"cannot connect to {self.where}: no answer within {waited:g} s"
        elif isinstance(exc, httpx.ConnectError):
            message = f"cannot connect to {self.where}: {_connect_failure(exc, detail)}"
        elif isinstance(exc, httpx.TimeoutException):
            message = f"{self.where} sent nothing for {self.timeout:g} s (engine.timeout)"
        elif isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
            message = f"the connection to {self.where} broke off: {detail}"
        elif isinstance(exc, httpx.HTTPError):
            message = f"request to {self.where} failed: {detail}"
        else:
            message = f"unexpected failure talking to {self.where}: {type(exc).__name__}: {detail}"
        return RemoteUnavailableError(message)

    def status_error(self, status: int, body: str, path: str) -> Exception:
        """Our error for an HTTP error status."""
        reason = error_message(body)
        if status in (401, 403):
            if self.api_key_env is None:
                cure = "it wants an API key: name the environment variable holding it in engine.apiKeyEnv"
            else:
                cure = f"check the key in ${self.api_key_env}"
            return RemoteUnavailableError(
                f"{self.where} refused our API key (HTTP {status}: {reason}); {cure}"
            )
        if status == 404:
            return RemoteUnavailableError(
                f"{self.where} has no {path} or no such model (HTTP 404: {reason}); "
                f"check engine.url, engine.model and engine.kind"
            )
        if status in (400, 413, 422) and _CONTEXT_WORDS.search(reason):
            return PromptTooLongError(f"{self.where} says the prompt is too long: {reason}")
        if status in (400, 422):
            return RemoteUnavailableError(
                f"{self.where} rejected our request to {path} (HTTP {status}: {reason})"
            )
        return RemoteUnavailableError(f"{self.where} failed (HTTP {status}: {reason})")

    def stream_error(self, reason: str) -> Exception:
        """Our error for an error the server sent inside an otherwise good stream."""
        if _CONTEXT_WORDS.search(reason):
            return PromptTooLongError(f"{self.where} says the prompt is too long: {reason}")
        return RemoteUnavailableError(f"{self.where} reported an error mid-answer: {reason}")

    def _mark(self, reachable: bool) -> None:
        with self._lock:
            if reachable and self._down:
                logger.info("%s answers again", self.where)
            self._down = not reachable

    @property
    def known_down(self) -> bool:
        return self._down

    # -- plain requests (doctor, probes) ----------------------------------------------------------------

    def request_json(
        self, method: str, path: str, body: Any = None, *, timeout: float | None = None
    ) -> tuple[int, Any]:
        """One request, no retries: (status, parsed JSON body). Error statuses come back, not raised;
        transport failures and bodies that are not JSON raise RemoteUnavailableError."""
        try:
            response = self.client.request(
                method, path, json=body, timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT
            )
        except httpx.HTTPError as exc:
            raise self.translate(exc) from exc
        self._mark(True)
        try:
            return response.status_code, response.json()
        except ValueError as exc:
            raise RemoteUnavailableError(
                f"{self.where} answered {path} with something that is not JSON: "
                f"{' '.join(response.text.split())[:80]!r}"
            ) from exc

    # -- streams ----------------------------------------------------------------------------------------

    def stream_lines(
        self, path: str, body: dict[str, Any], *, cancel: CancelToken, deadline: float | None
    ) -> LineStream:
        """POST `body` and stream the response's lines; see LineStream."""
        pump = _StreamPump(self, path, body, deadline)
        thread = threading.Thread(target=pump.run, name="fim-http-stream", daemon=True)
        thread.start()
        return LineStream(pump, thread, cancel, deadline)


class LineStream:
    """The lines of a streamed response, as they arrive.

    Iterating raises Interrupted when the cancel flag or the deadline stops the wait, and our errors for
    every failure. `close` aborts the HTTP call unless the response has ended.
    """

    def __init__(
        self, pump: _StreamPump, thread: threading.Thread, cancel: CancelToken, deadline: float | None
    ) -> None:
        self._pump = pump
        self._thread = thread
        self._cancel = cancel
        self._deadline = deadline

    def __iter__(self) -> Iterator[str]:
        while True:
            reason = interruption(self._cancel, self._deadline)
            if reason is not None:
                raise Interrupted(reason)
            try:
                item = self._pump.lines.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self, grace: float = 0.0) -> None:
        """Stop the stream. With `grace`, first give the response that long to end by itself: a stream
        read to its end leaves its connection open for the next request, an aborted one closes it."""
        if grace > 0:
            self._thread.join(grace)
        self._pump.abort()


class _StreamPump:
    """Reads one streamed response on its own thread into a queue of lines; `abort` stops it."""

    def __init__(self, transport: HttpTransport, path: str, body: dict[str, Any], deadline: float | None):
        self.transport = transport
        self.path = path
        self.body = body
        self.deadline = deadline
        self.lines: queue.Queue[Any] = queue.Queue()
        self.stopped = threading.Event()
        self.finished = threading.Event()
        """Set once the response has been read to its end (or failed): nothing left to abort."""
        self._response: httpx.Response | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:
            if not self.stopped.is_set():
                translated = exc if isinstance(exc, (EngineUnavailableError, PromptTooLongError)) else None
                self.lines.put(_Failure(translated or self.transport.translate(exc)))
        finally:
            self.finished.set()
            self.lines.put(_END)

    def abort(self) -> None:
        """Stop reading; a response already streaming is cut at the socket, which wakes a blocked read."""
        if self.finished.is_set():
            return
        self.stopped.set()
        with self._lock:
            response = self._response
        if response is not None:
            _shut_down(response)

    def _may_retry(self, attempt: int, pause: float) -> bool:
        if attempt >= MAX_ATTEMPTS or self.stopped.is_set() or self.transport.known_down:
            return False
        return self.deadline is None or time.monotonic() + pause < self.deadline

    def _pause(self, seconds: float) -> None:
        self.stopped.wait(seconds)

    def _run(self) -> None:
        transport = self.transport
        attempt = 0
        while not self.stopped.is_set():
            attempt += 1
            pause = BACKOFF_SECONDS * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)
            answered = False
            try:
                with transport.client.stream("POST", self.path, json=self.body) as response:
                    answered = True
                    with self._lock:
                        self._response = response
                    if self.stopped.is_set():
                        return
                    transport._mark(True)
                    if response.status_code >= 400:
                        error = transport.status_error(response.status_code, _read_some(response), self.path)
                        if response.status_code in RETRY_STATUSES and self._may_retry(attempt, pause):
                            logger.info("%s: %s; trying again in %.2f s", self.path, error, pause)
                            self._pause(pause)
                            continue
                        raise error
                    self._read_lines(response)
                    return
            except httpx.TransportError as exc:
                if self.stopped.is_set():
                    return
                if answered or (
                    isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout)
                ):
                    # Text may already have gone to the caller, or the server is slow rather than gone:
                    # asking again would repeat the text or the wait.
                    raise
                # The connection failed before any answer, and a completion has no side effects: retrying
                # is safe (a kept-alive connection the server closed meanwhile fails just this way).
                # A certificate that failed verification fails the same way next time.
                if _cause(exc, ssl.SSLCertVerificationError) is None and self._may_retry(attempt, pause):
                    logger.info("%s: %s; trying again in %.2f s", self.path, transport.translate(exc), pause)
                    self._pause(pause)
                    continue
                if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                    transport._mark(False)
                raise

    def _read_lines(self, response: httpx.Response) -> None:
        pending = b""
        for data in response.iter_bytes():
            if self.stopped.is_set():
                return
            pending += data
            while (newline := pending.find(b"\n")) >= 0:
                line, pending = pending[:newline], pending[newline + 1 :]
                self.lines.put(line.rstrip(b"\r").decode("utf-8", errors="replace"))
            if len(pending) > MAX_LINE_BYTES:
                raise RemoteUnavailableError(
                    f"{self.transport.where} sent a line of over {MAX_LINE_BYTES} bytes on {self.path}: "
                    "not the stream we asked for"
                )
        if pending.strip():
            self.lines.put(pending.rstrip(b"\r").decode("utf-8", errors="replace"))


_E = TypeVar("_E", bound=BaseException)


def _cause(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of `kind` in `exc`'s chain of causes (httpx wraps httpcore wraps ssl)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _connect_failure(exc: httpx.ConnectError, detail: str) -> str:
    """Why a connection failed, with the cure when it was TLS (the ssl module's words are cryptic)."""
    # A refused certificate (untrusted, expired, another host's) ends the handshake before any request,
    # and so before the API key, is sent.
    refusal = _cause(exc, ssl.SSLCertVerificationError)
    if refusal is not None:
        reason = (refusal.verify_message or refusal.reason or "not trusted").rstrip(".")
        if "mismatch" in reason:
            cure = "engine.url must name a host the certificate is for"
        else:
            cure = "make its certificate authority trusted (SSL_CERT_FILE may name a CA bundle)"
        return f"its TLS certificate failed verification ({reason}); {cure}, or set engine.verifyTls to false"
    handshake = _cause(exc, ssl.SSLError)
    if handshake is not None:
        reason = (handshake.reason or detail).lower().replace("_", " ")
        return (
            f"the TLS handshake failed ({reason}); is it serving HTTPS? (http:// in engine.url is plain HTTP)"
        )
    return detail.lower()


def _read_some(response: httpx.Response) -> str:
    """The start of an error response's body (a broken server could send an endless one)."""
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= MAX_ERROR_BODY:
                break
    except httpx.HTTPError:
        pass  # the status alone says enough
    return data[:MAX_ERROR_BODY].decode("utf-8", errors="replace")


def _shut_down(response: httpx.Response) -> None:
    """Shut the response's socket down, so a read blocked on it in another thread returns at once."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed: nothing left to stop
            sock.shutdown(socket.SHUT_RDWR)
