"""The figures of a run (counts, percentiles, the ratio to the baseline) and the report a person reads."""

from __future__ import annotations

import contextlib
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fim_lsp.bench.latency.records import RequestRecord

#: The issue's target for warm p50 over baseline p50.
TARGET_RATIO = 0.25


#: A model run is warm when the KV cache held all but this share of its prompt: a keystroke where the
#: last request was, not the first request after the cursor moved to another place.
WARM_EVALUATED_SHARE = 0.1


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (0-100) by linear interpolation between ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class RunSummary:
    """The figures of one run (the warm replay or the baseline)."""

    requests: int
    answered: int
    """Answers with ghost text."""
    empty: int
    cancelled: int
    failed: int
    """Timeouts and errors."""
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    single_line_p50_ms: float | None
    """Over answers of one line."""
    model_p50_ms: float | None
    """Over requests that ran the model (not cache or typed-through)."""
    warm_model_runs: int
    """Model runs that found all but a tenth of their prompt in the KV cache (see `warm_run`)."""
    warm_model_p50_ms: float | None
    evaluated_p50: float | None
    """Prompt tokens evaluated per served request (none for an answer from the cache or typed-through)."""
    model_evaluated_p50: float | None
    """Prompt tokens evaluated per request that ran the model (the rest of its prompt came from the KV
    cache)."""
    prompt_p50: float | None
    """Prompt tokens per request that ran the model."""
    cache_hits: int
    typed_through: int
    typed_through_p95_ms: float | None
    accepted: int
    peak_rss_mib: float | None = None
    prefetched: int = 0
    """Prefetches the server finished (answers computed for a suggestion's acceptance, off by default)."""
    warm_ups: int = 0
    """Prompts the server evaluated into its cache after typing cancelled their request."""


def served(record: RequestRecord) -> bool:
    """Whether the server worked out an answer: the model ran, or the cache or typed-through answered.
    Not served: answers refused at once (nothing asked of the model) and superseded ones."""
    return record.outcome in ("answered", "empty") and record.source not in (None, "none")


def warm_run(record: RequestRecord) -> bool:
    """Whether a model run found all but `WARM_EVALUATED_SHARE` of its prompt in the KV cache."""
    if record.evaluated_tokens is None or not record.prompt_tokens:
        return False
    return record.evaluated_tokens <= WARM_EVALUATED_SHARE * record.prompt_tokens


def summarize(
    records: Sequence[RequestRecord],
    peak_rss_mib: float | None = None,
    prefetched: int = 0,
    warm_ups: int = 0,
) -> RunSummary:
    """Counts and percentiles of a run. Latencies are of served requests (see `served`)."""
    done = [r for r in records if served(r) and r.latency_ms is not None]
    latencies = [r.latency_ms for r in done if r.latency_ms is not None]
    single = [
        r.latency_ms
        for r in done
        if r.outcome == "answered" and r.text and "\n" not in r.text.strip("\n") and r.latency_ms is not None
    ]
    model = [r for r in done if r.source == "model"]
    through = [r.latency_ms for r in done if r.source == "typed-through" and r.latency_ms is not None]
    return RunSummary(
        requests=len(records),
        answered=sum(r.outcome == "answered" for r in records),
        empty=sum(r.outcome == "empty" for r in records),
        cancelled=sum(r.outcome == "cancelled" for r in records),
        failed=sum(r.outcome in ("timeout", "error", "pending") for r in records),
        p50_ms=rounded(percentile(latencies, 50)),
        p95_ms=rounded(percentile(latencies, 95)),
        max_ms=rounded(max(latencies) if latencies else None),
        single_line_p50_ms=rounded(percentile(single, 50)),
        model_p50_ms=rounded(percentile([r.latency_ms for r in model if r.latency_ms is not None], 50)),
        warm_model_runs=sum(warm_run(r) for r in model),
        warm_model_p50_ms=rounded(
            percentile([r.latency_ms for r in model if warm_run(r) and r.latency_ms is not None], 50)
        ),
        evaluated_p50=percentile([r.evaluated_tokens for r in done if r.evaluated_tokens is not None], 50),
        model_evaluated_p50=percentile(
            [r.evaluated_tokens for r in model if r.evaluated_tokens is not None], 50
        ),
        prompt_p50=percentile([r.prompt_tokens for r in model if r.prompt_tokens is not None], 50),
        cache_hits=sum(r.source == "cache" for r in done),
        typed_through=len(through),
        typed_through_p95_ms=rounded(percentile(through, 95), 2),
        accepted=sum(r.accepted for r in records),
        peak_rss_mib=peak_rss_mib,
        prefetched=prefetched,
        warm_ups=warm_ups,
    )


def ratio(warm: float | None, baseline: float | None) -> float | None:
    if warm is None or not baseline:
        return None
    return round(warm / baseline, 3)


def sample_evenly(items: Sequence[Any], count: int) -> list[Any]:
    """`count` items spread evenly over `items` (all of them when there are fewer)."""
    if count >= len(items):
        return list(items)
    if count <= 0:
        return []
    step = len(items) / count
    return [items[int(i * step + step / 2)] for i in range(count)]


def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    with contextlib.suppress(OSError):
        facts["load_average"] = [round(x, 2) for x in os.getloadavg()]
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return facts


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_report(report: dict[str, Any]) -> str:
    """The runs side by side with their baselines, as a person reads them."""
    out = []
    facts = report["machine"]
    out.append(
        f"machine: {facts.get('cpu', '?')}, {facts.get('cpus')} CPUs, load average "
        f"{' '.join(str(x) for x in facts.get('load_average', []))} at the start, "
        f"{' '.join(str(x) for x in facts.get('load_average_end', []))} at the end"
    )
    options = report["options"]
    out.append(
        f"replay: {', '.join(options['files'])}; seed {options['seed']}, "
        f"{options['chars_per_second']} chars/s, debounce {options['debounce_ms']} ms, "
        + ("$/cancelRequest on each key" if options["cancel_on_type"] else "no cancels")
    )
    for run in report["runs"]:
        out.append("")
        if "error" in run:
            out.append(f"{run['model']}: {run['error']}")
            continue
        out.append(
            f"{run['model']}   (model loaded in {_fmt(run.get('load_s'), 1)} s; logs in {run['logs']})"
        )
        out.extend(_run_table(run))
        out.extend(_run_notes(run))
    return "\n".join(out)


def _run_table(run: dict[str, Any]) -> list[str]:
    """One run's figures, warm beside baseline."""
    warm, base = run["warm"], run["baseline"]
    rows = [
        ("requests", warm["requests"], base["requests"]),
        ("answered (ghost text)", warm["answered"], base["answered"]),
        ("empty answers", warm["empty"], base["empty"]),
        ("cancelled", warm["cancelled"], base["cancelled"]),
        ("timeouts and errors", warm["failed"], base["failed"]),
        ("latency p50 ms", _fmt(warm["p50_ms"]), _fmt(base["p50_ms"])),
        ("latency p95 ms", _fmt(warm["p95_ms"]), _fmt(base["p95_ms"])),
        ("latency max ms", _fmt(warm["max_ms"]), _fmt(base["max_ms"])),
        (
            "single-line answers p50 ms",
            _fmt(warm["single_line_p50_ms"]),
            _fmt(base["single_line_p50_ms"]),
        ),
        ("model runs p50 ms", _fmt(warm["model_p50_ms"]), _fmt(base["model_p50_ms"])),
        ("model runs, cache warm", warm.get("warm_model_runs", 0), base.get("warm_model_runs", 0)),
        ("... their p50 ms", _fmt(warm.get("warm_model_p50_ms")), _fmt(base.get("warm_model_p50_ms"))),
        ("tokens evaluated p50", _fmt(warm["evaluated_p50"]), _fmt(base["evaluated_p50"])),
        ("... of model runs p50", _fmt(warm["model_evaluated_p50"]), _fmt(base["model_evaluated_p50"])),
        ("prompt tokens p50", _fmt(warm["prompt_p50"]), _fmt(base["prompt_p50"])),
        ("cache hits", warm["cache_hits"], base["cache_hits"]),
        ("typed-through hits", warm["typed_through"], base["typed_through"]),
        ("typed-through p95 ms", _fmt(warm["typed_through_p95_ms"], 2), "-"),
        ("suggestions accepted", warm["accepted"], "-"),
        ("prefetches done", warm.get("prefetched", 0), "-"),
        ("warm-ups after a cancel", warm.get("warm_ups", 0), "-"),
        ("peak resident memory MiB", _fmt(warm["peak_rss_mib"]), _fmt(base["peak_rss_mib"])),
    ]
    return [f"  {'':30} {'warm':>10} {'baseline':>10}"] + [
        f"  {name:30} {w!s:>10} {b!s:>10}" for name, w, b in rows
    ]


def _run_notes(run: dict[str, Any]) -> list[str]:
    """What a run says besides its table: ratios, probes, warnings."""
    out: list[str] = []
    verdict = ""
    if run["ratio_p50"] is not None:
        verdict = "  (meets the target)" if run["ratio_p50"] <= TARGET_RATIO else "  (misses the target)"
    out.append(f"  warm p50 / baseline p50: {_fmt(run['ratio_p50'], 3)} (target <= {TARGET_RATIO}){verdict}")
    out.append(
        f"  model runs only: {_fmt(run['ratio_model_p50'], 3)}; "
        f"warm model runs: {_fmt(run.get('ratio_warm_model_p50'), 3)}; "
        f"the baseline's own requests in the warm run: {_fmt(run['ratio_paired_p50'], 3)}"
    )
    typed = run.get("typed_through_probes")
    if typed:
        out.append(
            f"  typed-through while a suggestion is typed: p50 {_fmt(typed['p50_ms'], 2)} ms, "
            f"p95 {_fmt(typed['p95_ms'], 2)} ms, max {_fmt(typed['max_ms'], 2)} ms "
            f"({typed['samples']} characters; target p95 < 5 ms)"
        )
    cache = run.get("prompt_cache")
    if cache:
        in_use, cells = cache.get("prompt_cache_cells_in_use"), cache.get("prompt_cache_cells")
        out.append(
            f"  prompts kept evaluated (KV cache, promptMemoryMb): {in_use} of {cells} cells in use "
            f"at the end, {cache.get('prompt_cache_mib')} MiB at most; prompts prepared after a "
            f"keystroke {run.get('prepared', 0)}, windows evaluated after an answer "
            f"{run.get('streamed', 0)}"
        )
    cold = run.get("cold_position_probes")
    if cold and cold["samples"]:
        out.append(
            f"  first ghost text at a place never asked about, from the first keystroke there: "
            f"p50 {_fmt(cold['p50_ms'])} ms, p95 {_fmt(cold['p95_ms'])} ms "
            f"({cold['answered']} of {cold['samples']} answered while a word was typed; "
            "target p50 <= 2,500 ms, p95 <= 5,000 ms)"
        )
    accepted = run.get("acceptance_probes")
    if accepted and accepted["samples"]:
        out.append(
            f"  next request after a suggestion is accepted whole: p50 {_fmt(accepted['p50_ms'])} ms, "
            f"{accepted['from_cache']} of {accepted['samples']} from the cache"
        )
    sup = run["supersession"]
    out.append(
        f"  superseded generation stopped: p50 {_fmt(sup['stop_p50_ms'])} ms, "
        f"max {_fmt(sup['stop_max_ms'])} ms ({sup['superseded']} of {sup['probes']} probes superseded "
        "without a cancel; "
        f"{sup['late_ghost']} late ghost texts)"
    )
    out.append(
        f"  $/cancelRequest acknowledged: p50 {_fmt(sup['cancel_ack_p50_ms'], 2)} ms, "
        f"max {_fmt(sup['cancel_ack_max_ms'], 2)} ms"
    )
    if not run["in_sync"]:
        out.append("  WARNING: the server's copy of a document differed from the editor's at the end")
    return out
