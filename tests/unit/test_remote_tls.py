"""`engine.verifyTls` against a real HTTPS server on loopback, with certificates made by `openssl` at run
time: verification refuses a self-signed server before the API key leaves, says why and what to do, and
lets a completion through once turned off (or once the certificate is trusted)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fim_lsp.config import Settings, parse_settings
from fim_lsp.engine.base import GenerationRequest
from fim_lsp.engine.remote import check_remote, create_remote_engine
from fim_lsp.errors import EngineUnavailableError
from fim_lsp.prompt import FimPrompt
from tests.fakes.fault_server import MODEL, FaultServer

KEY_ENV = "FIM_LSP_TEST_TLS_KEY"
KEY = "sk-test-never-leaks"


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certificate(directory: Path, name: str, alt_names: str) -> Certificate:
    """A self-signed certificate (its own CA) for `alt_names`, made by the openssl command line."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(key), "-out", str(cert)),
            *("-subj", f"/CN={name}", "-addext", f"subjectAltName={alt_names}"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return Certificate(cert, key)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Certificate]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command line is not installed: no way to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    return {
        "loopback": make_certificate(directory, "localhost", "IP:127.0.0.1,DNS:localhost"),
        "elsewhere": make_certificate(directory, "example.invalid", "DNS:example.invalid"),
    }


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key in its variable, and no CA bundle from the environment unless a test names one."""
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture
def https(certificates: dict[str, Certificate]) -> Iterator[FaultServer]:
    """An OpenAI-compatible server behind a self-signed certificate for 127.0.0.1, wanting our key."""
    with FaultServer(api_key=KEY, tls=certificates["loopback"].server_context()) as server:
        yield server


def settings(url: str, **engine: object) -> Settings:
    """Settings as the editor sends them (camelCase), so the wire name `verifyTls` is what is tested."""
    wire = {"kind": "openai", "url": url + "/v1", "model": MODEL, "apiKeyEnv": KEY_ENV, "timeout": 10.0}
    parsed, problems = parse_settings({"engine": {**wire, **engine}})
    assert problems == []
    return parsed


def complete(settings: Settings) -> str:
    engine = create_remote_engine(settings)
    try:
        prompt = FimPrompt("def add(a, b):\n    ", "\n", "auto")
        return engine.generate(GenerationRequest(prompt, max_tokens=16, deadline=time.monotonic() + 10)).text
    finally:
        engine.close()


def refusal_of_completion(settings: Settings) -> str:
    with pytest.raises(EngineUnavailableError) as caught:
        complete(settings)
    assert caught.value.user_actionable
    return str(caught.value)


def refusal_of_doctor(settings: Settings) -> str:
    checks = check_remote(settings)
    assert [(verdict, what) for verdict, what, _ in checks] == [("ok", "api key"), ("FAIL", "server")]
    return checks[-1][2]


REFUSED_THROUGH = [
    pytest.param(refusal_of_completion, id="completion"),
    pytest.param(refusal_of_doctor, id="doctor"),
]


def eventually(condition: Callable[[], object], seconds: float = 5.0) -> None:
    """Wait for the fake's threads to record what the client has already seen happen."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the fake server never saw it"
        time.sleep(0.01)


# -- verification on (the default) ----------------------------------------------------------------------


@pytest.mark.parametrize("refusal_of", REFUSED_THROUGH)
def test_a_self_signed_server_is_refused_and_never_sees_the_key(https, refusal_of):
    message = refusal_of(settings(https.url))
    assert message == (
        f"cannot connect to the OpenAI-compatible server at {https.url}/v1: its TLS certificate failed "
        "verification (self-signed certificate); make its certificate authority trusted (SSL_CERT_FILE "
        "may name a CA bundle), or set engine.verifyTls to false"
    )
    # We hung up in the handshake: no request, so no Authorization header, ever reached the server; and
    # a refused certificate is not tried again (it would be refused again).
    eventually(lambda: https.tls_failures)
    assert https.requests == []
    assert len(https.tls_failures) == 1 and https.connections == 1


@pytest.mark.parametrize("refusal_of", REFUSED_THROUGH)
def test_a_trusted_certificate_for_another_host_is_refused(certificates, monkeypatch, refusal_of):
    elsewhere = certificates["elsewhere"]
    monkeypatch.setenv("SSL_CERT_FILE", str(elsewhere.cert))
    with FaultServer(api_key=KEY, tls=elsewhere.server_context()) as server:
        message = refusal_of(settings(server.url))
        assert "its TLS certificate failed verification (IP address mismatch" in message
        assert "engine.url must name a host the certificate is for" in message
        assert server.requests == []


def test_a_certificate_trusted_through_ssl_cert_file_passes_verification(https, certificates, monkeypatch):
    # The positive control: verification is on and succeeds, so the refusals above are about trust.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["loopback"].cert))
    assert complete(settings(https.url)) == "return a + b"
    (request,) = https.requests_to("/v1/completions")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert https.tls_failures == []


# -- verification off -----------------------------------------------------------------------------------


def test_verify_tls_false_gets_a_completion_from_a_self_signed_server(https):
    assert complete(settings(https.url, verifyTls=False)) == "return a + b"
    (request,) = https.requests_to("/v1/completions")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert https.tls_failures == []


def test_verify_tls_false_lets_the_doctor_through(https):
    checks = check_remote(settings(https.url, verifyTls=False))
    assert [(verdict, what) for verdict, what, _ in checks] == [
        ("ok", "api key"),
        ("ok", "server"),
        ("ok", "model"),
        ("warn", "fill-in-the-middle"),  # the fake has no tokenizer: a tiny FIM request answered
    ]


# -- the wrong scheme -----------------------------------------------------------------------------------


def test_https_to_a_plain_http_server_says_to_check_the_scheme():
    with FaultServer(api_key=KEY) as plain:
        message = refusal_of_doctor(settings(plain.url.replace("http://", "https://")))
        assert "the TLS handshake failed (wrong version number); is it serving HTTPS?" in message
        assert plain.requests == []
