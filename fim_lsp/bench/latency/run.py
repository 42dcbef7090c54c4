"""One model, start to end: the warm replay with its probes, then the cold baseline, as a JSON-ready
report."""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fim_lsp.bench.latency.probes import (
    AcceptanceProbe,
    ColdPositionProbe,
    ProbeRecord,
    cold_rows,
    probe_acceptance,
    probe_cold_position,
    probe_supersession,
    probe_typed_through,
)
from fim_lsp.bench.latency.records import RequestRecord
from fim_lsp.bench.latency.replay import (
    ReplayOptions,
    replay_baseline,
    replay_file,
    start_server,
)
from fim_lsp.bench.latency.report import (
    percentile,
    ratio,
    rounded,
    sample_evenly,
    served,
    summarize,
)
from fim_lsp.bench.latency.script import (
    FileScript,
    TypingPace,
    bundled_files,
    file_script,
    script_uri,
)
from fim_lsp.client import EditorClient


@dataclass(frozen=True)
class BenchOptions:
    """Everything one `bench latency` run is made of."""

    files: tuple[Path, ...] = ()
    """Source files to replay; empty means the bundled ones (Python, TypeScript, Go)."""
    holes: int = 4
    pace: TypingPace = field(default_factory=TypingPace)
    replay: ReplayOptions = field(default_factory=ReplayOptions)
    baseline_requests: int = 8
    probes_per_file: int = 2
    typed_through_chars: int = 12
    """Characters of a suggestion typed one at a time per file, for the typed-through figures."""
    accept_after_s: float | None = 1.5
    """Per file, a suggestion is accepted whole after being read this long (None: no acceptance probe)."""
    cold_positions: int = 4
    """Per file, places never asked about where the user opens a new line and types (0: none)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """initializationOptions for both servers (the model is added per run)."""
    server_command: tuple[str, ...] = (sys.executable, "-m", "fim_lsp")
    log_dir: Path | None = None
    load_timeout_s: float = 600.0


def load_scripts(options: BenchOptions) -> list[FileScript]:
    if options.files:
        sources = [(path.name, path.read_text("utf-8")) for path in options.files]
    else:
        sources = bundled_files()
    return [
        file_script(name, text, options.replay.seed, options.pace, options.holes) for name, text in sources
    ]


@dataclass
class WarmRun:
    """What the replay and the probes saw on the server with reuse on."""

    load_s: float
    records: list[RequestRecord] = field(default_factory=list)
    probes: list[ProbeRecord] = field(default_factory=list)
    typed_through: list[float] = field(default_factory=list)
    """Latencies (ms) of the typed-through answers while a shown suggestion was typed."""
    acceptances: list[AcceptanceProbe] = field(default_factory=list)
    colds: list[ColdPositionProbe] = field(default_factory=list)
    in_sync: bool = True
    duration_s: float = 0.0
    peak_rss_mib: float | None = None
    prefetched: int = 0
    warm_ups: int = 0
    server_stats: dict[str, int] = field(default_factory=dict)
    """The server's counters at the end of the run."""


async def probe_file(client: EditorClient, script: FileScript, options: BenchOptions, run: WarmRun) -> None:
    """The probes of one replayed file, each with its own seeded stream."""
    uri = script_uri(script)
    seed, timeout_s = options.replay.seed, options.replay.request_timeout_s
    if options.probes_per_file:
        rng = random.Random(f"{seed}:{script.name}:probes")
        run.probes += await probe_supersession(client, uri, options.probes_per_file, rng, timeout_s=timeout_s)
    if options.typed_through_chars:
        rng = random.Random(f"{seed}:{script.name}:typed-through")
        run.typed_through += await probe_typed_through(
            client, uri, rng, options.typed_through_chars, timeout_s
        )
    if options.accept_after_s is not None:
        rng = random.Random(f"{seed}:{script.name}:accept")
        accepted = await probe_acceptance(client, uri, rng, options.accept_after_s, timeout_s)
        run.acceptances += [accepted] if accepted is not None else []
    if options.cold_positions:
        rng = random.Random(f"{seed}:{script.name}:cold")
        asked = {r.line for r in run.records if r.file == script.name}
        for row in cold_rows(client.documents[uri].text, asked, rng)[: options.cold_positions]:
            run.colds.append(
                await probe_cold_position(
                    client, uri, row, options.pace, options.replay.debounce_s, rng, timeout_s
                )
            )


async def run_warm(
    label: str,
    scripts: list[FileScript],
    settings: dict[str, Any],
    options: BenchOptions,
    log_dir: Path,
    say: Callable[[str], None],
) -> WarmRun:
    """Replay every file on a server with reuse on, probing each after its replay."""
    say(f"[{label}] starting the server (reuse on)")
    client, load_s = await start_server(
        options.server_command, settings, log_dir / f"{_slug(label)}-warm.log", options.load_timeout_s
    )
    run = WarmRun(load_s=load_s)
    try:
        epoch = time.perf_counter()
        for script in scripts:
            say(f"[{label}] replaying {script.name} ({len(script.holes)} holes)")
            replayed = await replay_file(client, script, options.pace, options.replay, run.records, epoch)
            run.in_sync = replayed and run.in_sync
            await probe_file(client, script, options, run)
        run.duration_s = time.perf_counter() - epoch
        run.peak_rss_mib = client.peak_rss_mib()
        run.server_stats = await client.stats()
        run.prefetched = run.server_stats.get("prefetched", 0)
        run.warm_ups = run.server_stats.get("warm_ups", 0)
    finally:
        await client.close_async()
    return run


async def run_baseline(
    label: str,
    chosen: list[RequestRecord],
    scripts: list[FileScript],
    settings: dict[str, Any],
    options: BenchOptions,
    log_dir: Path,
    say: Callable[[str], None],
) -> tuple[list[RequestRecord], float | None]:
    """The chosen requests asked again of a server with reuse off, one at a time; and its peak memory."""
    if not chosen:
        return [], None
    say(f"[{label}] baseline: {len(chosen)} of the same requests, reuse off, one at a time")
    client, _ = await start_server(
        options.server_command,
        {**settings, "reuse": False},
        log_dir / f"{_slug(label)}-baseline.log",
        options.load_timeout_s,
    )
    try:
        by_name = {s.name: s for s in scripts}
        records = await replay_baseline(client, chosen, by_name, options.replay.request_timeout_s)
        return records, client.peak_rss_mib()
    finally:
        await client.close_async()


def probe_figures(run: WarmRun) -> dict[str, Any]:
    """The probes' part of the report."""
    stops = [p.stop_ms for p in run.probes if p.stop_ms is not None]
    acks = [r.cancel_ack_ms for r in run.records if r.cancel_ack_ms is not None]
    accepted = [a.latency_ms for a in run.acceptances if a.latency_ms is not None]
    first_ghosts = [c.first_ghost_ms for c in run.colds if c.first_ghost_ms is not None]
    return {
        "typed_through_probes": {
            "samples": len(run.typed_through),
            "p50_ms": rounded(percentile(run.typed_through, 50), 2),
            "p95_ms": rounded(percentile(run.typed_through, 95), 2),
            "max_ms": rounded(max(run.typed_through) if run.typed_through else None, 2),
        },
        "cold_position_probes": {
            "samples": len(run.colds),
            "answered": len(first_ghosts),
            "p50_ms": rounded(percentile(first_ghosts, 50)),
            "p95_ms": rounded(percentile(first_ghosts, 95)),
            "probes": [asdict(c) for c in run.colds],
        },
        "acceptance_probes": {
            "samples": len(run.acceptances),
            "from_cache": sum(a.source == "cache" for a in run.acceptances),
            "p50_ms": rounded(percentile(accepted, 50)),
            "probes": [asdict(a) for a in run.acceptances],
        },
        "supersession": {
            "probes": len(run.probes),
            "superseded": len(stops),
            "stop_p50_ms": rounded(percentile(stops, 50)),
            "stop_max_ms": rounded(max(stops) if stops else None),
            "late_ghost": sum(p.late_ghost for p in run.probes),
            "cancel_ack_p50_ms": rounded(percentile(acks, 50), 2),
            "cancel_ack_max_ms": rounded(max(acks) if acks else None, 2),
        },
    }


async def run_model(
    model: str | None, options: BenchOptions, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """The warm replay, the supersession probes and the baseline for one model; a JSON-ready report."""
    scripts = load_scripts(options)
    log_dir = options.log_dir or Path(tempfile.mkdtemp(prefix="fim-lsp-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    settings = {**options.settings, **({"model": model} if model else {})}
    label = model or str(settings.get("model", "default model"))

    warm = await run_warm(label, scripts, settings, options, log_dir, say)
    # Cancelled requests count too: the typist outran them, but they were real places to complete at.
    pool = [r for r in warm.records if served(r) or r.outcome == "cancelled"]
    chosen = sample_evenly(pool, options.baseline_requests)
    baseline_records, baseline_rss = await run_baseline(
        label, chosen, scripts, settings, options, log_dir, say
    )

    warm_summary = summarize(warm.records, warm.peak_rss_mib, warm.prefetched, warm.warm_ups)
    base_summary = summarize(baseline_records, baseline_rss)
    paired = [r.latency_ms for r in chosen if r.latency_ms is not None]
    return {
        "model": label,
        "settings": settings,
        "logs": str(log_dir),
        "load_s": round(warm.load_s, 2),
        "warm_duration_s": round(warm.duration_s, 1),
        "warm": asdict(warm_summary),
        "baseline": asdict(base_summary),
        "ratio_p50": ratio(warm_summary.p50_ms, base_summary.p50_ms),
        "ratio_model_p50": ratio(warm_summary.model_p50_ms, base_summary.p50_ms),
        "ratio_warm_model_p50": ratio(warm_summary.warm_model_p50_ms, base_summary.p50_ms),
        "ratio_paired_p50": ratio(percentile(paired, 50), base_summary.p50_ms),
        "in_sync": warm.in_sync,
        "prompt_cache": {
            key: value for key, value in warm.server_stats.items() if key.startswith("prompt_cache")
        },
        "prepared": warm.server_stats.get("prepared", 0),
        "streamed": warm.server_stats.get("streamed", 0),
        **probe_figures(warm),
        "requests": [r.to_json() for r in warm.records],
        "baseline_requests": [r.to_json() for r in baseline_records],
        "probes": [asdict(p) for p in warm.probes],
    }


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in Path(name).name)
