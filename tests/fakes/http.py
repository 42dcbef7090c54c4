"""A small HTTP/1.1 server for tests, on loopback only: routes, streamed (chunked) answers, faults.

Each fake server (fault injection, llama-server's `/infill`, Ollama) registers its routes on one of these.
It keeps connections alive as real servers do, records every request, counts the connections it
accepted (to check that clients reuse them), and can cut a stream mid-answer or notice a client that
went away. It can be stopped and started again on the same port, which is how tests take a server down
and bring it back. Given an `ssl.SSLContext` it serves HTTPS instead, and records the TLS handshakes that
failed (a client that refused our certificate never gets as far as sending a request).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Handler = Callable[["Exchange"], None]


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    """The JSON body (None for none); the raw text when it is not JSON."""


class ClientGone(Exception):
    """The client closed the connection while we were writing to it."""


@dataclass
class Exchange:
    """One request and the means to answer it."""

    handler: BaseHTTPRequestHandler
    server: FakeHttpServer
    request: Recorded
    _streaming: bool = field(default=False, init=False)

    @property
    def body(self) -> Any:
        return self.request.body

    def send_json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(value).encode(), "application/json", headers)

    def send_bytes(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.handler.send_response(status)
        self.handler.send_header("Content-Type", content_type)
        self.handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        self.handler.end_headers()
        self._write(data)

    def start_stream(self, content_type: str, status: int = 200) -> None:
        """Begin a chunked answer; then `write` pieces and `end` (or `cut`) it."""
        self.handler.send_response(status)
        self.handler.send_header("Content-Type", content_type)
        self.handler.send_header("Transfer-Encoding", "chunked")
        self.handler.send_header("Cache-Control", "no-cache")
        self.handler.end_headers()
        self._streaming = True
        self._flush()

    def write(self, data: bytes) -> None:
        if data:
            self._write(b"%x\r\n%s\r\n" % (len(data), data))
            self._flush()

    def end(self) -> None:
        self._write(b"0\r\n\r\n")
        self._flush()

    def cut(self) -> None:
        """Drop the connection mid-answer, as a crashing server or a dying proxy does."""
        self._flush()
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)

    def wait(self, seconds: float) -> None:
        """Sleep, but wake when the server stops (so stopping never waits for a slow answer)."""
        self.server.stopping.wait(seconds)

    def _write(self, data: bytes) -> None:
        try:
            self.handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise ClientGone from exc

    def _flush(self) -> None:
        try:
            self.handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError) as exc:
            raise ClientGone from exc


class FakeHttpServer:
    """Routes `(method, path)` to handlers on 127.0.0.1, in a background thread."""

    def __init__(self, port: int = 0, *, tls: ssl.SSLContext | None = None) -> None:
        self.port = port
        self.tls = tls
        """Serve HTTPS with this context (its certificate chain loaded); None serves plain HTTP."""
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Recorded] = []
        self.connections = 0
        """Connections accepted since the server was made (across restarts)."""
        self.gone: list[str] = []
        """Paths of requests whose client went away before the answer was complete."""
        self.tls_failures: list[str] = []
        """Why each failed TLS handshake failed (e.g. the client rejected our certificate)."""
        self.stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes[(method, path)] = handler
            return handler

        return register

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    # -- life -------------------------------------------------------------------------------------------

    def start(self) -> Self:
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as every real inference server does
            handshake_failed = False

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake.connections += 1
                    fake._sockets.add(self.connection)
                if isinstance(self.connection, ssl.SSLSocket):
                    # Here, on the connection's own thread, not in accept(): a stalled or refused
                    # handshake must not hold up the listening loop.
                    try:
                        self.connection.do_handshake()
                    except OSError as exc:  # ssl.SSLError included
                        with fake._lock:
                            fake.tls_failures.append(str(exc))
                        self.handshake_failed = True

            def handle(self) -> None:
                if not self.handshake_failed:
                    super().handle()

            def finish(self) -> None:
                with fake._lock:
                    fake._sockets.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # tests read `fake.requests` instead

            def do_GET(self) -> None:
                fake._dispatch(self, "GET")

            def do_POST(self) -> None:
                fake._dispatch(self, "POST")

        self.stopping.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), RequestHandler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="fake-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection: to a client, the server is down."""
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- requests ---------------------------------------------------------------------------------------

    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        path = handler.path.split("?", 1)[0]
        recorded = Recorded(method, path, {k.lower(): v for k, v in handler.headers.items()}, body)
        with self._lock:
            self.requests.append(recorded)
        exchange = Exchange(handler, self, recorded)
        route = self.routes.get((method, path))
        try:
            if route is None:
                exchange.send_json(404, {"detail": "Not Found"})
            else:
                route(exchange)
        except ClientGone:
            with self._lock:
                self.gone.append(path)
            handler.close_connection = True


def free_port() -> int:
    """A loopback port nothing listens on (for a server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sse(value: Any) -> bytes:
    """One server-sent event carrying `value` as JSON (or as it is, for a string)."""
    data = value if isinstance(value, str) else json.dumps(value)
    return f"data: {data}\n\n".encode()
