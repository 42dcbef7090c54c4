"""LoRA adapters made by `fim-lsp warmup`: where they live, what they record, and whose they are.

An adapter is a GGUF file in llama.cpp's LoRA format. Besides llama.cpp's own keys it records, under
`fim_lsp.*`, the sha256 of the exact model file it was trained on: a LoRA only makes sense over the
weights it was trained against, so the engine refuses an adapter whose base is another file (another
model, or another quantization of the same one) with a message that says which.

Pure Python: the server imports this module, and it needs neither torch nor the `gguf` package (the
header is read by `gguf_file`).
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fim_lsp.config import AUTO_ADAPTER, Settings
from fim_lsp.errors import ConfigurationError, ModelCorruptError, ModelMissingError
from fim_lsp.warmup.gguf_file import read_header

if TYPE_CHECKING:
    from fim_lsp.models import ModelManifest

logger = logging.getLogger(__name__)

#: Metadata keys an adapter carries (llama.cpp's first, then ours).
ARCHITECTURE = "general.architecture"
GENERAL_TYPE = "general.type"
ADAPTER_TYPE = "adapter.type"
LORA_ALPHA = "adapter.lora.alpha"
BASE_SHA256 = "fim_lsp.base.sha256"
BASE_NAME = "fim_lsp.base.name"
RANK = "fim_lsp.lora.rank"
FIM_ORDER = "fim_lsp.fim_order"
CONTEXT_BUDGET = "fim_lsp.context_budget"
STEPS = "fim_lsp.steps"
TOKENS = "fim_lsp.tokens"
SOURCES = "fim_lsp.sources"
CREATED = "fim_lsp.created"

ADAPTER_SUFFIX = ".gguf"


def adapters_dir() -> Path:
    """Where `fim-lsp warmup` leaves adapters by default: `adapters/` in fim-lsp's cache."""
    from fim_lsp.models import cache_root

    return cache_root() / "adapters"


# --- what an adapter says about itself ----------------------------------------------------------------


@dataclass(frozen=True)
class AdapterRecord:
    """What `fim-lsp warmup` records in an adapter about its training."""

    base_sha256: str
    """sha256 of the GGUF model file the adapter was trained on."""
    base_name: str
    """That model as the warm-up was told it (a known model's name or a file name)."""
    rank: int
    alpha: float
    fim_order: str
    """The FIM order its prompts were rendered in (the server's order when it was trained)."""
    context_budget: int
    steps: int
    tokens: int
    """Tokens of training sequences it saw."""
    sources: str
    """The folders its tasks were cut from."""


@dataclass(frozen=True)
class AdapterInfo(AdapterRecord):
    """An adapter file: its record, the architecture it is for, and when it was written."""

    path: str
    architecture: str
    created: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def adapter_info(path: Path) -> AdapterInfo:
    """What the adapter at `path` records; ModelCorruptError for a file that is no fim-lsp adapter."""
    try:
        metadata = read_header(path, tensors=False).metadata
    except OSError as exc:
        raise ModelMissingError(f"cannot read the adapter {path}: {exc.strerror or exc}") from exc
    except (ValueError, struct.error) as exc:
        raise ModelCorruptError(f"{path} is not a GGUF adapter: {exc}") from exc
    if metadata.get(GENERAL_TYPE) != "adapter" or metadata.get(ADAPTER_TYPE) != "lora":
        raise ModelCorruptError(f"{path} is a GGUF file but not a LoRA adapter")
    base = metadata.get(BASE_SHA256)
    if not isinstance(base, str) or len(base) != 64:
        raise ModelCorruptError(
            f"{path} does not record the model it was trained on ({BASE_SHA256}); "
            "only adapters made by `fim-lsp warmup` can be checked against the model, and fim-lsp "
            "loads no other"
        )
    return AdapterInfo(
        path=str(path),
        base_sha256=base,
        base_name=str(metadata.get(BASE_NAME, "")),
        architecture=str(metadata.get(ARCHITECTURE, "")),
        rank=int(metadata.get(RANK, 0)),
        alpha=float(metadata.get(LORA_ALPHA, 0.0)),
        fim_order=str(metadata.get(FIM_ORDER, "")),
        context_budget=int(metadata.get(CONTEXT_BUDGET, 0)),
        steps=int(metadata.get(STEPS, 0)),
        tokens=int(metadata.get(TOKENS, 0)),
        sources=str(metadata.get(SOURCES, "")),
        created=str(metadata.get(CREATED, "")),
    )


def resolve_adapter(setting: str) -> Path:
    """The adapter file for the `adapter` setting: a path, or the name of an adapter in `adapters_dir()`
    (with or without `.gguf`)."""
    path = Path(setting).expanduser()
    if path.is_file():
        return path.resolve()
    if os.sep not in setting and "/" not in setting:
        for name in (setting, setting + ADAPTER_SUFFIX):
            candidate = adapters_dir() / name
            if candidate.is_file():
                return candidate
    raise ModelMissingError(f"no adapter file at {path} (nor one named {setting!r} in {adapters_dir()})")


# --- whose adapter it is ------------------------------------------------------------------------------

_hashed: dict[tuple[str, int, int], str] = {}


def _cached_model_at(model_path: Path) -> ModelManifest | None:
    """The known model whose file in the model cache is the one at `model_path`, if any."""
    from fim_lsp.models import cached_path, known_models

    resolved = model_path.resolve()
    return next((m for m in known_models().values() if cached_path(m).resolve() == resolved), None)


def model_sha256(model_path: Path) -> str:
    """sha256 of a model file: a known model's verified file has its manifest's (nothing is read);
    another file is hashed once per process and state of the file."""
    from fim_lsp.models import cached_path, is_verified
    from fim_lsp.models.store import hash_file

    manifest = _cached_model_at(model_path)
    if manifest is not None and is_verified(cached_path(manifest), manifest):
        return manifest.sha256
    resolved = model_path.resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    if key not in _hashed:
        _hashed[key] = hash_file(resolved)
    return _hashed[key]


def model_name_of(sha256: str) -> str | None:
    """The known model whose file has this sha256, if any."""
    from fim_lsp.models import known_models

    return next((m.name for m in known_models().values() if m.sha256 == sha256), None)


def check_adapter(adapter: Path, model_path: Path) -> AdapterInfo:
    """The adapter's record when it was trained on the file at `model_path`, or on the shipped file of
    which `model_path` is the Q4_0 copy (the same weights rounded once more, which `auto` loads where
    llama.cpp reads it faster; a LoRA adds its product to whatever the base weights compute);
    ConfigurationError naming both models otherwise."""
    from fim_lsp.models.requantize import copied_from

    info = adapter_info(adapter)
    copied = copied_from(model_path)
    if copied is not None and copied.sha256 == info.base_sha256:
        return info
    actual = model_sha256(model_path)
    if info.base_sha256 != actual:
        trained_on = info.base_name or model_name_of(info.base_sha256) or "another model"
        loaded = model_name_of(actual) or model_path.name
        raise ConfigurationError(
            f"the adapter {adapter.name} was trained on {trained_on} (sha256 {info.base_sha256[:12]}…), "
            f"not on the model loaded, {loaded} (sha256 {actual[:12]}…); a LoRA adapter only fits the "
            f"weights it was trained on: warm up again for this model (`fim-lsp warmup --model "
            f"{model_name_of(actual) or model_path}`) or remove the adapter setting"
        )
    return info


def shipped_adapter(model_path: Path) -> Path | None:
    """The adapter fim-lsp ships for the known model whose cached file (or current Q4_0 copy) is at
    `model_path`; None where that model ships none, or the file is no known model's."""
    from fim_lsp.models.requantize import copied_from

    manifest = copied_from(model_path) or _cached_model_at(model_path)
    return None if manifest is None else manifest.adapter_path


def adapter_for(settings: Settings, model_path: Path) -> Path | None:
    """The adapter the settings apply over the model file at `model_path`: the one they name (checked
    against the model: `check_adapter`), for `auto` the one shipped with that model, or none."""
    named = settings.adapter_file
    if named is not None:
        adapter = resolve_adapter(named)
        check_adapter(adapter, model_path)
        return adapter
    if settings.adapter != AUTO_ADAPTER:
        return None
    shipped = shipped_adapter(model_path)
    if shipped is None:
        return None
    if not shipped.is_file():
        # A broken installation costs the adapter's gain, not the completions.
        logger.warning(
            "the adapter shipped for %s is missing (%s); running without it", model_path.name, shipped.name
        )
        return None
    check_adapter(shipped, model_path)
    return shipped


# --- listing ------------------------------------------------------------------------------------------


def list_adapters(directory: Path | None = None) -> list[AdapterInfo]:
    """The readable fim-lsp adapters in `directory` (default `adapters_dir()`), by file name; others
    are skipped with a debug line."""
    folder = directory or adapters_dir()
    found = []
    for path in sorted(folder.glob(f"*{ADAPTER_SUFFIX}")) if folder.is_dir() else []:
        try:
            found.append(adapter_info(path))
        except (ModelCorruptError, ModelMissingError) as exc:
            logger.debug("skipping %s: %s", path, exc)
    return found


def adapters_by_base(adapters: Iterable[AdapterInfo]) -> dict[str, list[dict[str, Any]]]:
    """Adapters as JSON objects, grouped by the sha256 of their base model."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for info in adapters:
        grouped.setdefault(info.base_sha256, []).append(info.to_json())
    return grouped


def attach_to_report(report: list[dict[str, Any]], directory: Path | None = None) -> list[dict[str, Any]]:
    """`fim-lsp models --json` entries, each with the adapters trained on that model (`adapters`)."""
    grouped = adapters_by_base(list_adapters(directory))
    for entry in report:
        entry["adapters"] = grouped.get(entry["sha256"], [])
    return report


def describe(info: AdapterInfo, known: Mapping[str, str] | None = None) -> str:
    """One line for people: the file, its base and how it was trained."""
    base = (known or {}).get(info.base_sha256) or model_name_of(info.base_sha256) or "an unknown model"
    return (
        f"{Path(info.path).name}: for {base} (sha256 {info.base_sha256[:12]}…), {info.steps} steps, "
        f"rank {info.rank}, {info.fim_order or '?'} prompts, from {info.sources or '?'}"
    )


def doctor_checks(directory: Path | None = None) -> list[tuple[str, str, str]]:
    """`fim-lsp doctor` lines: the adapters in the cache and the model each belongs to."""
    adapters = list_adapters(directory)
    if not adapters:
        return []
    return [("ok", "adapter", describe(info)) for info in adapters]


def format_list(report: list[dict[str, Any]], directory: Path | None = None) -> str:
    """The adapters for `fim-lsp models`: under the model each was trained on, or as for no known model."""
    known = {entry["sha256"]: entry["name"] for entry in report}
    adapters = list_adapters(directory)
    if not adapters:
        return ""
    lines = ["", f"Adapters ({directory or adapters_dir()}):"]
    lines += [f"  {describe(info, known)}" for info in adapters]
    return "\n".join(lines)
