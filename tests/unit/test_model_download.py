"""Downloading a model from the hub, against a local HTTP server that plays the hub."""

from __future__ import annotations

import argparse
import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fim_lsp import models
from fim_lsp.errors import FimError, ModelCorruptError, ModelMissingError
from fim_lsp.models import cli as models_cli
from fim_lsp.models import store

FILE_PATH = "/test-org/fake-coder-GGUF/resolve/main/fake-coder.gguf"


@dataclass
class Route:
    """What the fake hub answers for one path."""

    status: int = 200
    body: bytes = b""
    length: int | None = -1
    """Content-Length to announce: -1 for the body's true length, None for none (the body ends on close)."""
    location: str | None = None


@dataclass
class FakeHub:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """A hub on 127.0.0.1 that serves `routes` and answers 404 for anything else."""
    state = FakeHub(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            route = state.routes.get(self.path, Route(status=404, body=b"Entry not found"))
            self.send_response(route.status)
            if route.location:
                self.send_header("Location", route.location)
            if route.length is not None:
                self.send_header("Content-Length", str(len(route.body) if route.length < 0 else route.length))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def fake(models_fake):
    """A fake model whose chunk packages are not installed: the hub is the only way to get it."""
    return models_fake(install=False)


def manifest() -> models.ModelManifest:
    return models.get_manifest("fake-coder")


def cache_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_verifies_and_records(hub: FakeHub, fake, models_env, monkeypatch) -> None:
    hub.routes[FILE_PATH] = Route(body=fake.data)
    path = models.download_model(manifest(), base_url=hub.url, quiet=True)
    assert path == models_env.models_dir / "fake-coder.gguf" and path.read_bytes() == fake.data
    assert hub.requests == [FILE_PATH]
    # resolve_model now finds it verified, with no network and no hashing.
    calls: list[str] = []

    def counting_hasher():
        calls.append("sha256")
        return hashlib.sha256()

    monkeypatch.setattr(store, "_new_hasher", counting_hasher)
    assert models.resolve_model("fake-coder") == path and calls == []


def test_download_shows_progress_on_stderr(hub: FakeHub, fake, capsys) -> None:
    hub.routes[FILE_PATH] = Route(body=fake.data)
    models.download_model(manifest(), base_url=hub.url)
    out, err = capsys.readouterr()
    assert out == "" and "downloading fake-coder: 100%" in err


def test_download_follows_redirects(hub: FakeHub, fake) -> None:
    # The real hub answers with a redirect to its content delivery network.
    hub.routes[FILE_PATH] = Route(status=302, location="/cdn/blob/0123")
    hub.routes["/cdn/blob/0123"] = Route(body=fake.data)
    assert models.download_model(manifest(), base_url=hub.url + "/", quiet=True).read_bytes() == fake.data


def test_download_uses_hf_endpoint(hub: FakeHub, fake, monkeypatch) -> None:
    hub.routes[FILE_PATH] = Route(body=fake.data)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    assert models.download_model(manifest(), quiet=True).read_bytes() == fake.data


@pytest.mark.parametrize(
    ("route", "error", "message"),
    [
        pytest.param(
            lambda data: Route(body=b"Y" * len(data)),
            ModelCorruptError,
            r"fake-coder from http://.* is not the expected file \(sha256 ",
            id="wrong-checksum",
        ),
        pytest.param(
            lambda data: Route(body=data + b"more", length=None),
            ModelCorruptError,
            r"more than \d+ bytes",
            id="too-long-without-length",
        ),
        pytest.param(
            lambda data: Route(body=data + b"more"),
            ModelCorruptError,
            r"serves \d+ bytes; fake-coder has \d+; not downloaded",
            id="wrong-content-length",
        ),
        pytest.param(
            lambda data: Route(body=data[:10], length=len(data)),
            FimError,
            r"the download from http://.* broke off after 10 of 26 bytes; try again",
            id="cut-short",
        ),
        pytest.param(
            lambda data: Route(body=data[:10], length=None),
            ModelCorruptError,
            r"\(10 bytes; expected \d+ bytes",
            id="short-without-length",
        ),
        pytest.param(
            lambda data: Route(status=500, body=b"oops"),
            FimError,
            r"failed: HTTP 500 .* from http://127\.0\.0\.1",
            id="server-error",
        ),
    ],
)
def test_bad_download_is_refused_and_nothing_kept(
    hub: FakeHub, fake, models_env, route, error: type[Exception], message: str
) -> None:
    hub.routes[FILE_PATH] = route(fake.data)
    with pytest.raises(error, match=message):
        models.download_model(manifest(), base_url=hub.url, quiet=True)
    assert cache_files(models_env.models_dir) == []


def test_not_found_says_what_is_missing(hub: FakeHub, fake, models_env) -> None:
    with pytest.raises(
        ModelMissingError, match=r"the hub has no fake-coder\.gguf in test-org/fake-coder-GGUF \(404"
    ):
        models.download_model(manifest(), base_url=hub.url, quiet=True)
    assert hub.requests == [FILE_PATH]
    assert cache_files(models_env.models_dir) == []


def test_unreachable_hub_is_a_clear_error(fake) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FimError, match=rf"cannot reach http://127\.0\.0\.1:{port}/.*: .*refused"):
        models.download_model(manifest(), base_url=f"http://127.0.0.1:{port}", quiet=True)


def test_manifest_without_hub_cannot_download(models_env, models_manifest_text) -> None:
    text = models_manifest_text("offline-only", 4, "a" * 64, [], hub=None)
    (models_env.manifest_dir / "offline-only.toml").write_text(text)
    with pytest.raises(ModelMissingError, match="no model hub address"):
        models.download_model(models.get_manifest("offline-only"), quiet=True)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="fim-lsp")
    models_cli.register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_download_skips_a_verified_copy_unless_forced(hub: FakeHub, fake, models_env, capsys) -> None:
    hub.routes[FILE_PATH] = Route(body=fake.data)
    argv = ["models", "download", "fake-coder", "--base-url", hub.url]
    code, out, err = run_cli(argv, capsys)
    assert code == 0 and out == f"{models_env.models_dir / 'fake-coder.gguf'}\n" and "100%" in err
    assert run_cli(argv, capsys)[0] == 0 and len(hub.requests) == 1
    assert run_cli([*argv, "--force"], capsys)[0] == 0 and len(hub.requests) == 2


def test_cli_download_error_is_one_line(hub: FakeHub, fake, capsys) -> None:
    code, out, err = run_cli(["models", "download", "fake-coder", "--base-url", hub.url], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("fim-lsp: the hub has no fake-coder.gguf")
