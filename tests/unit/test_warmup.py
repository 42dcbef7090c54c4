"""The warm-up's pure parts: held-out files, GGUF headers, adapter records and checks, the schedule.

No torch here: these run in the server's own install. Training itself is tested in tests/warmup.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import struct
from pathlib import Path

import pytest

from fim_lsp.cache import cache_key
from fim_lsp.cli import build_parser
from fim_lsp.config import Settings, parse_settings
from fim_lsp.errors import ConfigurationError, ModelCorruptError, ModelMissingError
from fim_lsp.warmup import adapters
from fim_lsp.warmup.data import held_out_files
from fim_lsp.warmup.gguf_file import read_header
from fim_lsp.warmup.train import TrainConfig, batch_at, learning_rate, order_of
from tests.unit.gguf_samples import adapter_metadata, write_gguf


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """fim-lsp's cache in a temporary folder, with no known models."""
    monkeypatch.setenv("FIM_LSP_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "manifests").mkdir()
    monkeypatch.setenv("FIM_LSP_MANIFEST_PATH", str(tmp_path / "manifests"))
    return tmp_path / "cache"


# --- held-out files -----------------------------------------------------------------------------------


def test_held_out_files_are_the_same_on_every_run_and_about_the_share() -> None:
    files = [f"pkg/module_{i}.py" for i in range(400)]
    chosen = held_out_files(files, 0.1, seed=1)
    assert chosen == held_out_files(list(reversed(files)), 0.1, seed=1)
    assert 20 <= len(chosen) <= 60
    assert chosen != held_out_files(files, 0.1, seed=2)


def test_a_file_keeps_its_place_when_others_are_added() -> None:
    files = [f"a/{i}.py" for i in range(50)]
    before = held_out_files(files, 0.2, seed=1)
    after = held_out_files([*files, *(f"b/{i}.py" for i in range(50))], 0.2, seed=1)
    assert before == {f for f in after if f.startswith("a/")}


def test_at_least_one_file_is_held_out_of_a_small_folder() -> None:
    assert len(held_out_files(["x.py", "y.py"], 0.01, seed=1)) == 1
    assert held_out_files(["x.py", "y.py"], 0.0, seed=1) == set()
    assert held_out_files(["only.py"], 0.5, seed=1) <= {"only.py"}


# --- GGUF headers -------------------------------------------------------------------------------------


def test_header_values_of_every_kind_are_read(tmp_path: Path) -> None:
    metadata = {
        "a.int": 7,
        "a.float": 0.5,
        "a.flag": True,
        "a.text": "héllo",
        "a.ids": [1, -2, 3],
        "a.words": ["x", "yz"],
    }
    path = write_gguf(tmp_path / "m.gguf", metadata, {"t.weight": ((4, 2), 0), "u.weight": ((3,), 32)})
    header = read_header(path)
    assert header.metadata == metadata
    table = header.tensors
    assert table["t.weight"].dims == (4, 2)
    assert table["u.weight"].offset - table["t.weight"].offset == 32
    assert table["t.weight"].offset % 32 == 0  # data starts aligned after the header


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"GGML" + b"\0" * 20,
        b"GGUF" + struct.pack("<I", 9) + b"\0" * 16,
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1),
    ],
    ids=["empty", "other-magic", "future-version", "cut-short"],
)
def test_a_file_that_is_no_gguf_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises((ValueError, struct.error)):
        read_header(path)


# --- adapter records ----------------------------------------------------------------------------------


def test_an_adapter_says_what_it_was_trained_on(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "a.gguf", adapter_metadata("ab" * 32), {})
    info = adapters.adapter_info(path)
    assert (info.base_sha256, info.base_name, info.rank, info.steps, info.fim_order) == (
        "ab" * 32,
        "a-model",
        16,
        80,
        "spm",
    )


def test_a_model_file_is_no_adapter(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "model.gguf", {adapters.ARCHITECTURE: "qwen2", adapters.GENERAL_TYPE: "model"}, {}
    )
    with pytest.raises(ModelCorruptError, match="not a LoRA adapter"):
        adapters.adapter_info(path)


def test_an_adapter_that_does_not_name_its_base_is_refused(tmp_path: Path) -> None:
    metadata = adapter_metadata("ab" * 32)
    del metadata[adapters.BASE_SHA256]
    with pytest.raises(ModelCorruptError, match="does not record the model"):
        adapters.adapter_info(write_gguf(tmp_path / "a.gguf", metadata, {}))


def test_an_adapter_is_found_by_path_or_by_name_in_the_cache(cache: Path, tmp_path: Path) -> None:
    (cache / "adapters").mkdir(parents=True)
    named = write_gguf(cache / "adapters" / "mine.gguf", adapter_metadata("ab" * 32), {})
    elsewhere = write_gguf(tmp_path / "other.gguf", adapter_metadata("ab" * 32), {})
    assert adapters.resolve_adapter("mine") == named
    assert adapters.resolve_adapter("mine.gguf") == named
    assert adapters.resolve_adapter(str(elsewhere)) == elsewhere.resolve()
    with pytest.raises(ModelMissingError, match="no adapter file"):
        adapters.resolve_adapter("absent")


def test_an_adapter_for_another_model_file_is_refused_naming_both(cache: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF one model")
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF another model")
    adapter = write_gguf(
        tmp_path / "a.gguf", adapter_metadata(hashlib.sha256(model.read_bytes()).hexdigest()), {}
    )
    assert adapters.check_adapter(adapter, model).base_name == "a-model"
    with pytest.raises(ConfigurationError) as refused:
        adapters.check_adapter(adapter, other)
    message = str(refused.value)
    assert "trained on a-model" in message and "other.gguf" in message and "warmup" in message


def test_an_adapter_fits_the_q4_0_copy_of_the_file_it_was_trained_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fim_lsp.models import known_models, requantize

    shipped = known_models()["qwen2.5-coder-0.5b"]
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(b"GGUF the copy")
    monkeypatch.setattr(requantize, "copied_from", lambda path: shipped if path == copy else None)
    trained_on_shipped = write_gguf(tmp_path / "a.gguf", adapter_metadata(shipped.sha256), {})
    assert adapters.check_adapter(trained_on_shipped, copy).base_sha256 == shipped.sha256
    trained_on_other = write_gguf(tmp_path / "b.gguf", adapter_metadata("ab" * 32), {})
    with pytest.raises(ConfigurationError, match="was trained on a-model"):
        adapters.check_adapter(trained_on_other, copy)


def test_the_suggested_settings_name_only_the_adapter_of_a_catalogue_model(tmp_path: Path) -> None:
    from fim_lsp.warmup.cli import suggested_settings

    adapter = tmp_path / "adapter.gguf"
    assert suggested_settings("qwen2.5-coder-0.5b", adapter) == {"adapter": str(adapter)}
    own_file = str(tmp_path / "own.gguf")
    assert suggested_settings(own_file, adapter) == {"model": own_file, "adapter": str(adapter)}


def test_models_report_lists_each_models_adapters(cache: Path, tmp_path: Path) -> None:
    (cache / "adapters").mkdir(parents=True)
    write_gguf(cache / "adapters" / "for-a.gguf", adapter_metadata("aa" * 32), {})
    write_gguf(cache / "adapters" / "for-b.gguf", adapter_metadata("bb" * 32, **{adapters.STEPS: 5}), {})
    (cache / "adapters" / "broken.gguf").write_bytes(b"not a gguf")
    report = adapters.attach_to_report(
        [{"name": "a", "sha256": "aa" * 32}, {"name": "c", "sha256": "cc" * 32}]
    )
    assert [entry["path"].rsplit("/", 1)[-1] for entry in report[0]["adapters"]] == ["for-a.gguf"]
    assert report[1]["adapters"] == []
    listing = adapters.format_list(report)
    assert "for-a.gguf: for a" in listing and "for-b.gguf: for an unknown model" in listing
    assert [verdict for verdict, _what, _detail in adapters.doctor_checks()] == ["ok", "ok"]


# --- the adapters fim-lsp ships -----------------------------------------------------------------------


def _ship_adapter(manifest_dir: Path, name: str, base_sha256: str) -> Path:
    """Name an adapter in the manifest of `name`, and write it beside the manifest."""
    manifest = manifest_dir / f"{name}.toml"
    manifest.write_text(f'adapter = "{name}.warmup.gguf"\n' + manifest.read_text())
    return write_gguf(manifest_dir / f"{name}.warmup.gguf", adapter_metadata(base_sha256), {})


def test_auto_applies_the_adapter_shipped_with_the_model_loaded(models_env, models_fake, tmp_path) -> None:
    from fim_lsp.models import resolve_model

    coder = models_fake("fake-coder")
    tiny = models_fake("fake-tiny", [b"GGUF\x03\x00\x00\x00tiny"], default=False, fast=True)
    shipped = _ship_adapter(models_env.manifest_dir, "fake-coder", hashlib.sha256(coder.data).hexdigest())
    coder_file, tiny_file = resolve_model("fake-coder"), resolve_model("fake-tiny")
    assert Settings().adapter == "auto"
    assert adapters.adapter_for(Settings(), coder_file) == shipped
    assert adapters.adapter_for(Settings(), tiny_file) is None  # its manifest names none
    for off in ("none", None):
        assert Settings(adapter=off).adapter_file is None
        assert adapters.adapter_for(Settings(adapter=off), coder_file) is None
    mine = write_gguf(tmp_path / "mine.gguf", adapter_metadata(hashlib.sha256(tiny.data).hexdigest()), {})
    assert adapters.adapter_for(Settings(adapter=str(mine)), tiny_file) == mine.resolve()


def test_a_shipped_adapter_for_another_file_is_refused_and_a_missing_one_skipped(
    models_env, models_fake, caplog: pytest.LogCaptureFixture
) -> None:
    from fim_lsp.models import resolve_model

    models_fake("fake-coder")
    shipped = _ship_adapter(models_env.manifest_dir, "fake-coder", "ab" * 32)
    model = resolve_model("fake-coder")
    with pytest.raises(ConfigurationError, match="was trained on a-model"):
        adapters.adapter_for(Settings(), model)
    shipped.unlink()
    with caplog.at_level(logging.WARNING):
        assert adapters.adapter_for(Settings(), model) is None
    assert "missing" in caplog.text


def test_a_manifest_names_its_adapter_by_a_plain_file_name(models_env, models_fake) -> None:
    from fim_lsp.models import known_models

    models_fake("fake-coder")
    manifest = models_env.manifest_dir / "fake-coder.toml"
    manifest.write_text('adapter = "../elsewhere.gguf"\n' + manifest.read_text())
    with pytest.raises(ConfigurationError, match="plain file name"):
        known_models()


def test_models_report_names_the_adapter_the_defaults_apply(models_env, models_fake) -> None:
    from fim_lsp.models.cli import format_table, model_report

    coder = models_fake("fake-coder")
    models_fake("fake-tiny", [b"GGUF\x03\x00\x00\x00tiny"], default=False, fast=True)
    shipped = _ship_adapter(models_env.manifest_dir, "fake-coder", hashlib.sha256(coder.data).hexdigest())
    report = {entry["name"]: entry for entry in model_report()}
    assert report["fake-coder"]["adapter"] == str(shipped) and report["fake-tiny"]["adapter"] is None
    assert "default, with its warm-up adapter" in format_table(list(report.values()))
    elsewhere = {entry["name"]: entry for entry in model_report(selected="fake-tiny")}
    assert elsewhere["fake-coder"]["adapter"] is None  # the defaults load the other model there


def test_the_shipped_adapter_was_trained_on_the_1_5b_file_it_ships_with(monkeypatch) -> None:
    from fim_lsp.models import known_models

    monkeypatch.delenv("FIM_LSP_MANIFEST_PATH", raising=False)  # the repository's manifests
    shipping = {name: m for name, m in known_models().items() if m.adapter_path is not None}
    assert list(shipping) == ["qwen2.5-coder-1.5b"]
    for manifest in shipping.values():
        assert manifest.adapter_path is not None
        info = adapters.adapter_info(manifest.adapter_path)
        assert (info.base_sha256, info.architecture) == (manifest.sha256, "qwen2")


# --- settings -----------------------------------------------------------------------------------------


def test_the_adapter_setting_is_a_string_and_part_of_the_cache_key() -> None:
    settings, problems = parse_settings({"adapter": "/x/a.gguf"})
    assert settings.adapter == "/x/a.gguf" and not problems
    _, problems = parse_settings({"adapter": 3})
    assert problems
    assert cache_key("x = 1", 3, "python", Settings()) != cache_key("x = 1", 3, "python", settings)


def test_a_remote_engine_says_it_ignores_the_adapter(caplog: pytest.LogCaptureFixture) -> None:
    from fim_lsp.engine import create_engine

    settings, _ = parse_settings(
        {"adapter": "/x/a.gguf", "engine": {"kind": "openai", "url": "http://127.0.0.1:9/v1", "model": "m"}}
    )
    with caplog.at_level(logging.WARNING, logger="fim_lsp.engine"):
        engine = create_engine(settings)
    engine.close()
    assert [r.message for r in caplog.records if "adapter" in r.message] == [
        "the adapter setting is ignored: the openai engine runs the model its server loaded"
    ]


# --- the learning rate --------------------------------------------------------------------------------


def test_the_learning_rate_rises_then_falls_to_a_tenth() -> None:
    config = TrainConfig(steps=100, warmup_steps=10, learning_rate=1e-3)
    rates = [learning_rate(config, step) for step in range(100)]
    assert rates[0] == pytest.approx(1e-4)
    assert max(rates) == pytest.approx(1e-3)
    assert all(a <= b for a, b in itertools.pairwise(rates[:11]))
    assert all(a >= b for a, b in itertools.pairwise(rates[10:]))
    assert learning_rate(config, 100) == pytest.approx(1e-4)


def test_a_run_with_a_time_budget_cools_down_by_the_clock_when_it_ends_before_its_steps() -> None:
    config = TrainConfig(steps=10_000, warmup_steps=10, learning_rate=1e-3, time_budget_s=600)
    assert learning_rate(config, 5, seconds=300) == pytest.approx(learning_rate(config, 5))
    assert learning_rate(config, 100, seconds=300) == pytest.approx(0.55e-3)
    assert learning_rate(config, 100, seconds=600) == pytest.approx(1e-4)
    assert learning_rate(config, 9_999, seconds=1) == pytest.approx(1e-4, rel=1e-3)


# --- the order of the sequences -----------------------------------------------------------------------


def test_one_sequence_a_step_takes_each_pass_in_its_order() -> None:
    taken = [batch_at(5, step, 1, seed=1)[0] for step in range(15)]
    assert taken == order_of(5, 0, 1) + order_of(5, 1, 1) + order_of(5, 2, 1)
    assert taken[:5] == [0, 1, 2, 3, 4] and sorted(taken[5:10]) == [0, 1, 2, 3, 4]


def test_batches_take_the_same_order_and_span_the_end_of_a_pass() -> None:
    one_by_one = [batch_at(5, step, 1, seed=1)[0] for step in range(12)]
    in_threes = [index for step in range(4) for index in batch_at(5, 3 * step, 3, seed=1)]
    assert in_threes == one_by_one
    assert batch_at(5, 3, 3, seed=1) == [3, 4, order_of(5, 1, 1)[0]]


# --- the command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--steps", "0", "must be 1 or more, not 0"),
        ("--batch-size", "-2", "must be 1 or more, not -2"),
        ("--batch-size", "four", "must be a whole number, not 'four'"),
    ],
)
def test_steps_and_batches_of_less_than_one_are_refused(
    option: str, value: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["warmup", "src", option, value])
    assert f"argument {option}: {said}" in capsys.readouterr().err
