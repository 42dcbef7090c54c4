"""Fitting the machine: which model the `auto` setting loads here, and how fast this machine runs it.

A model's speed is measured once per model file, llama.cpp build, CPU and thread count (a prompt of a few
hundred tokens evaluated, a few tokens written: seconds) and kept in `speeds.json` in fim-lsp's cache
folder. `auto` then loads the best installed model whose prompt of a useful size this machine evaluates
within its share of the time budget, and the pipeline sizes each prompt from the same speed (see
`fim_lsp.pipeline.context_budget`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from fim_lsp.config import AUTO_MODEL, Settings
from fim_lsp.errors import FimError

if TYPE_CHECKING:
    from fim_lsp.models import ModelManifest
    from fim_lsp.warmup.adapters import AdapterInfo

logger = logging.getLogger(__name__)

#: Characters of real code evaluated to time a model: about 1,000 tokens, a cold prompt's size. Each
#: token costs more the more context is before it, so a shorter prompt overstates the rate a whole
#: prompt gets, and a budget sized from it is not evaluated in time.
SPEED_PROMPT_CHARS = 4000
#: Marks how speeds are measured in their key, so that speeds measured another way are measured again.
SPEED_METHOD = "p4000"
#: Tokens written to time the writing speed.
SPEED_NEW_TOKENS = 16
#: Share of its threads' time the timed process must get for its measurement to stand: with less, other
#: work (or, on a virtual machine, the host) took the CPU, and the speed it measured is the machine's on
#: a busy moment, not what it can do.
BUSY_CPU_SHARE = 0.8
#: Times a model is timed again, at later starts, while every measurement of it found the machine busy;
#: then the fastest of them stands.
BUSY_RETRIES = 3
#: The extra CPU buffer type in which llama.cpp repacks weights for the CPU's vector units (AVX2,
#: AVX-512), Q4_K and Q4_0 alike.
REPACKING_BUFFER_TYPE = "CPU_REPACK"
#: How many times as fast as the shipped file a model's Q4_0 copy must read prompts to be loaded instead,
#: where both are repacked for the CPU's vector units: the copy rounds the weights once more, and it is
#: faster only where the shipped file's weights are mostly in types that are not repacked (the 0.5B's,
#: mostly Q5_0 and Q8_0, 1.3-2 times as fast from its copy; the 1.5B's, 72% Q4_K, 0.9-1.1 times, and its
#: manifest says so; see docs/design/models.md).
COPY_MIN_SPEEDUP = 1.2
#: The least context budget worth loading a model for. Below it the larger model is too slow where it
#: matters: given 256 tokens its first ghost text at a new place took nearly twice as long as the smaller
#: model's, given 384 a fifth of its cold answers came after the deadline, given 512 its first ghost text
#: took 3.1 s (p50) where the smaller model's took 1.6; given 640 it answered more cold requests right
#: than the smaller one, as many of them in time, its first ghost text in about 2 s (three machines of
#: the reference kind; see docs/design/fitting-the-machine.md).
MIN_USEFUL_BUDGET = 640


@dataclass(frozen=True)
class Speed:
    """A model's speed on this machine, in tokens a second."""

    prompt: float
    writing: float


@dataclass(frozen=True)
class Measurement:
    """A speed as timed, and the share of its threads' time the process had meanwhile (None where the
    work was not the CPU's)."""

    speed: Speed
    cpu_share: float | None = None

    @property
    def busy(self) -> bool:
        return self.cpu_share is not None and self.cpu_share < BUSY_CPU_SHARE


@dataclass(frozen=True)
class Choice:
    """The model `auto` loads here, and why."""

    model: str
    speed: Speed | None
    budget: int
    reason: str
    #: The file to load instead of the model's shipped one (its Q4_0 copy, see `weight_options`), if any.
    weights: Path | None = None


@dataclass(frozen=True)
class Weights:
    """The file `auto` loads for a known model here, and what speeds measured on it are kept under."""

    identity: str
    #: None: the shipped file, found (or assembled) when it is loaded.
    path: Path | None


def speeds_file() -> Path:
    from fim_lsp.models import cache_root

    return cache_root() / "speeds.json"


def machine_key(model_sha256: str, threads: int | None) -> str:
    """What a measured speed holds for: the model file, the llama.cpp build, this CPU, the threads."""
    import llama_cpp

    from fim_lsp.engine.llama_library import cpu_flags

    system = llama_cpp.llama_print_system_info().decode(errors="replace")
    cpu = hashlib.sha256((system + cpu_flags()).encode()).hexdigest()[:16]
    return f"{model_sha256[:16]}/{llama_cpp.__version__}/{cpu}/{threads or os.cpu_count()}/{SPEED_METHOD}"


def _read_speeds() -> dict[str, dict[str, float]]:
    try:
        raw = json.loads(speeds_file().read_text())
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _write_speed(key: str, measured: Measurement) -> Speed:
    """Keep the speed of `measured` for `key`, each rate the fastest measured yet (every measurement
    times the same prompt): other work on the machine only ever slows a measurement down, so the
    fastest is the nearest to what the machine can do. A measurement on a busy machine is counted, so
    that the model is timed again (`_wants_timing`). Returns the speed kept."""
    speeds = _read_speeds()
    old = speeds.get(key) or {}
    speed = measured.speed
    with contextlib.suppress(KeyError, TypeError, ValueError):  # nothing kept yet, or not numbers
        speed = Speed(max(speed.prompt, float(old["prompt"])), max(speed.writing, float(old["writing"])))
    entry: dict[str, float] = asdict(speed)
    if measured.busy:
        entry["busy"] = _busy_count(old) + 1
    speeds[key] = entry
    path = speeds_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(speeds, indent=1, sort_keys=True))
    temporary.replace(path)
    return speed


def _busy_count(entry: dict[str, float]) -> int:
    """How many measurements, all on a busy machine, the kept speed comes from (0: one was not)."""
    try:
        return int(entry.get("busy", 0))
    except (TypeError, ValueError):
        return 0


def _wants_timing(identity: str, threads: int | None) -> bool:
    """Whether the model is to be timed (again): nothing is kept, or only measurements on a busy
    machine, fewer than `BUSY_RETRIES` times over."""
    if _kept_speed(identity, threads) is None:
        return True
    return 0 < _busy_count(_read_speeds()[machine_key(identity, threads)]) <= BUSY_RETRIES


def known_speed(manifest: ModelManifest, threads: int | None) -> Speed | None:
    """The speed measured before for this model's shipped file here, if any."""
    return _kept_speed(manifest.sha256, threads)


def _kept_speed(identity: str, threads: int | None) -> Speed | None:
    entry = _read_speeds().get(machine_key(identity, threads))
    try:
        return Speed(float(entry["prompt"]), float(entry["writing"])) if entry else None
    except (KeyError, TypeError, ValueError):
        return None


def weight_options(manifest: ModelManifest, *, prepare: bool) -> list[Weights]:
    """The files `auto` may load for a known model here, the preferred first. Where this llama.cpp
    build's AMX kernels run: the model's Q4_0 copy alone, which they multiply 2.7 times as fast as the
    shipped Q4_K weights (`fim_lsp.models.requantize`). Where the build repacks weights for the CPU's
    vector units (AVX2, AVX-512): the shipped file, then the copy, which is loaded only where it is timed
    `COPY_MIN_SPEEDUP` times as fast (`timed_weights`), unless the manifest says the copy is no faster
    there (`q4_0_copy_where_repacked`: neither made nor timed). Elsewhere the shipped file. With `prepare`,
    whether AMX runs is tried if not known yet and the copy is made if missing (left out where it cannot
    be made)."""
    from fim_lsp.engine.llama_library import amx_runs_here, cpu_extra_buffer_types
    from fim_lsp.models import resolve_model

    shipped = Weights(manifest.sha256, None)
    offered = cpu_extra_buffer_types()
    if "AMX" in offered:
        if not amx_runs_here(resolve_model(manifest.name) if prepare else None):
            return [shipped]
        copy = _q4_0_copy(manifest, prepare)
        return [copy] if copy else [shipped]
    if REPACKING_BUFFER_TYPE in offered and manifest.q4_0_copy_where_repacked:
        copy = _q4_0_copy(manifest, prepare)
        return [shipped, copy] if copy else [shipped]
    return [shipped]


def _q4_0_copy(manifest: ModelManifest, prepare: bool) -> Weights | None:
    from fim_lsp.models.requantize import requantize, requantized_id, requantized_path

    if not prepare:
        path = requantized_path(manifest)
        return Weights(requantized_id(manifest), path) if path.is_file() else None
    try:
        return Weights(requantized_id(manifest), requantize(manifest))
    except FimError as exc:
        logger.warning("%s; loading %s as shipped", exc, manifest.name)
        return None


def timed_weights(
    manifest: ModelManifest, threads: int | None, *, measure: bool = True
) -> list[tuple[Weights, Speed | None]]:
    """Each of the model's `weight_options` with its speed here: measured before, or now (loading it)
    when `measure` says so and none is kept, or only ones timed on a busy machine."""
    return [
        (weights, _speed(manifest, weights, threads, measure))
        for weights in weight_options(manifest, prepare=measure)
    ]


def loaded_weights(options: list[tuple[Weights, Speed | None]]) -> tuple[Weights, Speed | None]:
    """Of `timed_weights`, what `auto` loads: the first, or a later one whose prompts it was timed
    reading `COPY_MIN_SPEEDUP` times as fast."""
    chosen, chosen_speed = options[0]
    for weights, speed in options[1:]:
        if speed and chosen_speed and speed.prompt >= COPY_MIN_SPEEDUP * chosen_speed.prompt:
            chosen, chosen_speed = weights, speed
    return chosen, chosen_speed


def measure_speed(path: Path, threads: int | None) -> Measurement:
    """Load the model at `path` and time a prompt and a few written tokens, and how much of its
    threads' time this process had meanwhile."""
    from fim_lsp.engine.base import GenerationRequest
    from fim_lsp.engine.llama_cpp import LlamaCppEngine
    from fim_lsp.prompt import FimPrompt

    code = resources.files("fim_lsp").joinpath("data/replay/jobs.py").read_text("utf-8")
    engine = LlamaCppEngine(path, n_ctx=1024, n_threads=threads, prompt_memory_mb=1)
    try:
        started = time.monotonic()
        # A first decode reads every weight from the file (the page faults of a mapped model, or the
        # copy of a read one): that is loading, not the speed of later prompts.
        engine.generate(GenerationRequest(prompt=FimPrompt(code[:200], "", "psm"), max_tokens=2))
        engine.forget()
        prompt = FimPrompt(code[:SPEED_PROMPT_CHARS], "", "psm")
        timed, cpu = time.monotonic(), time.process_time()
        generation = engine.generate(GenerationRequest(prompt=prompt, max_tokens=SPEED_NEW_TOKENS))
        wall = time.monotonic() - timed
        share = None if engine.gpu_offload else (time.process_time() - cpu) / (wall * engine.threads)
        prompt_rate = generation.evaluated_tokens / max(generation.prompt_ms / 1000, 1e-3)
        written = max(generation.generated_tokens - 1, 1)
        writing = written / max(generation.generate_ms / 1000, 1e-3)
        logger.info(
            "measured %s in %.1f s: prompt %.0f tokens/s, writing %.0f tokens/s, %s of %d threads' time",
            path.name,
            time.monotonic() - started,
            prompt_rate,
            writing,
            "all" if share is None else f"{share:.0%}",
            engine.threads,
        )
        return Measurement(Speed(round(prompt_rate, 1), round(writing, 1)), share)
    finally:
        engine.close()


def _speed(manifest: ModelManifest, weights: Weights, threads: int | None, measure: bool) -> Speed | None:
    """The speed of `weights` here: kept, or timed now when `measure` says so and `_wants_timing`."""
    from fim_lsp.models import resolve_model

    speed = _kept_speed(weights.identity, threads)
    if not measure or not _wants_timing(weights.identity, threads):
        return speed
    measured = measure_speed(weights.path or resolve_model(manifest.name), threads)
    if measured.busy:
        logger.warning(
            "%s was timed while other work held the CPU (%.0f%% of its threads' time): it is timed "
            "again at later starts, %d times at most, and the fastest timing stands",
            manifest.name,
            100 * (measured.cpu_share or 0.0),
            BUSY_RETRIES,
        )
    return _write_speed(machine_key(weights.identity, threads), measured)


def installed_models() -> list[ModelManifest]:
    """Known models whose file is here or can be assembled from installed packages, best first (the
    manifest marked default is the best; the one marked fast the least)."""
    from fim_lsp.models import cached_path, known_models, missing_chunks

    models = [
        manifest
        for manifest in known_models().values()
        if cached_path(manifest).is_file() or (manifest.chunks and not missing_chunks(manifest))
    ]
    return sorted(models, key=lambda manifest: (not manifest.default, manifest.fast, manifest.name))


def choose_model(settings: Settings, *, measure: bool = True) -> Choice:
    """The model the settings load: the one they name, or for `auto` the best installed model whose
    prompt of at least `MIN_USEFUL_BUDGET` tokens fits this machine's time budget (the fastest when none
    does)."""
    from fim_lsp.pipeline import affordable_budget

    if settings.model != AUTO_MODEL:
        return Choice(settings.model, None, settings.budget_cap, "named in the settings")
    candidates = installed_models()
    adapter = _adapter_of(settings)
    if adapter is not None:
        # A LoRA adapter fits the weights it was trained on: `auto` chooses among that model's files.
        candidates = [
            manifest for manifest in candidates if manifest.sha256 == adapter.base_sha256
        ] or candidates
    if not candidates:
        from fim_lsp.models import default_model

        fallback = default_model().name
        return Choice(fallback, None, settings.budget_cap, "no model is installed yet; the default is")
    measured: list[tuple[ModelManifest, Speed, int, Path | None]] = []
    for manifest in candidates:
        try:
            weights, speed = loaded_weights(timed_weights(manifest, settings.threads, measure=measure))
        except FimError as exc:
            logger.warning("cannot time %s: %s", manifest.name, exc)
            continue
        if speed is None:
            continue
        budget = min(settings.budget_cap, affordable_budget(speed.prompt, settings))
        # `weight_options` offers a copy only where its file is there (or was just made).
        path = weights.path
        measured.append((manifest, speed, budget, path))
        if budget >= MIN_USEFUL_BUDGET:
            reason = _why(manifest.name, path, speed, budget, settings) + _trained_for(adapter, manifest)
            return Choice(manifest.name, speed, budget, reason, path)
    if not measured:
        return Choice(candidates[0].name, None, settings.budget_cap, "its speed is not measured yet")
    manifest, speed, budget, path = max(measured, key=lambda entry: entry[1].prompt)
    reason = _why(manifest.name, path, speed, budget, settings) + (
        _trained_for(adapter, manifest) or "; no model fits a larger prompt in time here"
    )
    return Choice(manifest.name, speed, budget, reason, path)


def _adapter_of(settings: Settings) -> AdapterInfo | None:
    """The record of the adapter the settings name, if one is named and readable (the engine reports
    one that is not when it loads). `auto`'s adapter follows the model chosen: it holds no choice."""
    if settings.adapter_file is None:
        return None
    from fim_lsp.warmup.adapters import adapter_info, resolve_adapter

    try:
        return adapter_info(resolve_adapter(settings.adapter_file))
    except FimError:
        return None


def _trained_for(adapter: AdapterInfo | None, manifest: ModelManifest) -> str:
    if adapter is None or adapter.base_sha256 != manifest.sha256:
        return ""
    return f"; the adapter {Path(adapter.path).name} was trained on it"


def weights_name(name: str, weights: Path | None) -> str:
    """How the model `name` loaded from `weights` (its shipped file where None) is named to the user."""
    from fim_lsp.models.requantize import QUANTIZATION

    return f"{name} (its {QUANTIZATION} copy)" if weights else name


def _why(name: str, copy: Path | None, speed: Speed, budget: int, settings: Settings) -> str:
    return (
        f"{weights_name(name, copy)}: prompt {speed.prompt:.0f} tokens/s, "
        f"writing {speed.writing:.0f} tokens/s here, so "
        f"prompts of {budget} tokens of file fit the {settings.time_budget_ms / 1000:.0f} s time budget"
    )
