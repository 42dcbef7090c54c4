"""`fim-lsp bench workspace`: does the workspace index keep up as the repository grows?

A synthetic repository of N files is made from real code (by default the Python and C sources of the
installed packages, copied into a temporary folder, repeated under new folder names when there are
fewer than N), and for each size the benchmark measures:

- the build: wall time of a first `WorkspaceIndex.build()`, and of a second one with nothing changed;
- the index's memory: Python allocations the index keeps after a build (tracemalloc, traced in a
  second build, since tracing slows the first several times);
- one file change: `update_file` on files just edited on disk (what the watcher does after a save);
- retrieval: `snippets_for` at cursors in files across the repository (every query new, so nothing is
  memoised), and the same query again (the memo), with a stand-in tokenizer of four characters a
  token (the model's tokenizer is not loaded).

No model is needed. The retrieval figures should not grow with the repository's size: BM25 walks only
the query terms' postings, and skips terms too common to matter.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import random
import shutil
import statistics
import sysconfig
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fim_lsp.syntax import language_of
from fim_lsp.workspace.files import EXCLUDED_DIRS, IndexLimits, is_source_name
from fim_lsp.workspace.index import WorkspaceIndex
from fim_lsp.workspace.retrieval import SnippetRetriever

logger = logging.getLogger(__name__)

#: Token budget of the snippets: the default share (0.3) of the default context budget (1536).
SNIPPET_BUDGET = 460
#: Files sampled for the cost of a change, and cursors for retrieval.
CHANGE_SAMPLES = 20
QUERY_SAMPLES = 40


@dataclass
class WorkspaceFigures:
    """The figures of one repository size."""

    files_requested: int
    files_indexed: int
    source_mib: float
    build_s: float
    rebuild_unchanged_s: float
    index_mib: float | None
    """Python memory the index keeps (tracemalloc); None when not measured."""
    index_estimate_mib: float
    blocks: int
    definitions: int
    terms: int
    postings: int
    update_ms_p50: float
    update_ms_max: float
    retrieval_ms_p50: float
    retrieval_ms_p95: float
    memo_us_p50: float
    snippets_per_query: float


def default_source() -> Path:
    """The installed packages' sources: real code in Python and C, on every machine fim-lsp runs on."""
    return Path(sysconfig.get_paths()["purelib"])


def source_files(source: Path, max_bytes: int) -> list[Path]:
    """Source files under `source` the index would take, in a fixed order."""
    found = []
    for directory, folders, files in os.walk(source):
        folders[:] = sorted(f for f in folders if f not in EXCLUDED_DIRS)
        for name in sorted(files):
            path = Path(directory) / name
            if not is_source_name(name) or path.is_symlink():
                continue
            try:
                if 0 < path.stat().st_size <= max_bytes:
                    found.append(path)
            except OSError:
                continue
    return found


def make_repository(target: Path, files: Sequence[Path], source: Path, count: int) -> int:
    """Copy `count` files into `target` (repeating under `copy_N/` when there are fewer); total bytes."""
    total = 0
    for number in range(count):
        original = files[number % len(files)]
        relative = original.relative_to(source)
        copy = number // len(files)
        destination = target / (f"copy_{copy}" if copy else "") / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original, destination)
        total += destination.stat().st_size
    return total


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _traced_index_mib(root: Path, limits: IndexLimits) -> float:
    """The memory an index of `root` takes, traced while it is built afresh."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    traced = WorkspaceIndex(limits)
    traced.add_folder(root)
    traced.build()
    gc.collect()
    index_mib = (tracemalloc.get_traced_memory()[0] - before) / 2**20
    tracemalloc.stop()
    del traced
    gc.collect()
    return index_mib


def _update_times_ms(index: WorkspaceIndex, paths: list[str], rng: random.Random) -> list[float]:
    """How long indexing a changed file again takes, for a sample of files (each is appended to)."""
    update_ms = []
    for path in rng.sample(paths, min(CHANGE_SAMPLES, len(paths))):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("\n# edited by the benchmark\n")
        started = time.perf_counter()
        index.update_file(path)
        update_ms.append((time.perf_counter() - started) * 1000)
    return update_ms


def _retrieval_times(
    index: WorkspaceIndex, paths: list[str], rng: random.Random
) -> tuple[list[float], list[float], list[int]]:
    """For a sample of cursors: snippet retrieval (ms), the same query again from the memo (µs), and
    how many snippets each found."""
    retrieval_ms, memo_us, counts = [], [], []
    retriever = SnippetRetriever(index)
    for path in rng.sample(paths, min(QUERY_SAMPLES, len(paths))):
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        rows = text.count("\n")
        row = rng.randint(min(20, rows), max(min(20, rows), rows - 1)) if rows else 0
        offset = _offset_of_row(text, row)
        language = language_of(None, path)
        started = time.perf_counter()
        found = retriever.snippets_for(path, text, offset, language, SNIPPET_BUDGET, _tokens)
        retrieval_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        retriever.snippets_for(path, text, offset, language, SNIPPET_BUDGET, _tokens)
        memo_us.append((time.perf_counter() - started) * 1e6)
        counts.append(len(found))
    return retrieval_ms, memo_us, counts


def measure(
    root: Path,
    requested: int,
    source_bytes: int,
    trace_memory: bool = True,
    seed: int = 0,
) -> WorkspaceFigures:
    """Build, change and query the index of the repository at `root`."""
    limits = IndexLimits(max_files=max(20_000, requested), max_total_bytes=max(64 << 20, source_bytes + 1))
    index = WorkspaceIndex(limits)
    index.add_folder(root)
    started = time.perf_counter()
    index.build()
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    index.build()
    rebuild_s = time.perf_counter() - started
    stats = index.stats()
    index_mib = _traced_index_mib(root, limits) if trace_memory else None
    rng = random.Random(seed)
    paths = index.paths()
    update_ms = _update_times_ms(index, paths, rng)
    retrieval_ms, memo_us, counts = _retrieval_times(index, paths, rng)
    return WorkspaceFigures(
        files_requested=requested,
        files_indexed=stats.files,
        source_mib=source_bytes / 2**20,
        build_s=build_s,
        rebuild_unchanged_s=rebuild_s,
        index_mib=index_mib,
        index_estimate_mib=stats.approx_bytes / 2**20,
        blocks=stats.blocks,
        definitions=stats.definitions,
        terms=stats.terms,
        postings=stats.postings,
        update_ms_p50=statistics.median(update_ms) if update_ms else 0.0,
        update_ms_max=max(update_ms, default=0.0),
        retrieval_ms_p50=statistics.median(retrieval_ms) if retrieval_ms else 0.0,
        retrieval_ms_p95=_percentile(retrieval_ms, 0.95),
        memo_us_p50=statistics.median(memo_us) if memo_us else 0.0,
        snippets_per_query=statistics.mean(counts) if counts else 0.0,
    )


def _offset_of_row(text: str, row: int) -> int:
    offset = 0
    for _ in range(row):
        newline = text.find("\n", offset)
        if newline == -1:
            break
        offset = newline + 1
    return offset


def _tokens(text: str) -> int:
    return (len(text) + 3) // 4


def run_workspace_bench(
    sizes: Sequence[int] = (500, 5000),
    source: Path | None = None,
    trace_memory: bool = True,
    out: Callable[[str], None] = print,
) -> list[WorkspaceFigures]:
    """Measure the index at each repository size and print a table through `out`."""
    source = source or default_source()
    files = source_files(source, IndexLimits().max_file_bytes)
    if not files:
        raise SystemExit(f"no source files under {source}")
    out(f"source: {len(files)} files under {source}")
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="fim-lsp-bench-workspace-") as folder:
            root = Path(folder) / "repo"
            source_bytes = make_repository(root, files, source, size)
            results.append(measure(root, size, source_bytes, trace_memory))
        out(_row(results[-1]))
    return results


def _row(f: WorkspaceFigures) -> str:
    memory = f"{f.index_mib:.1f} MiB" if f.index_mib is not None else "-"
    return (
        f"{f.files_indexed} files ({f.source_mib:.1f} MiB of source): build {f.build_s:.1f} s, "
        f"rebuild unchanged {f.rebuild_unchanged_s:.2f} s; index {memory} (estimate "
        f"{f.index_estimate_mib:.1f} MiB; {f.definitions} definitions, {f.terms} terms, {f.postings} "
        f"postings); update_file p50 {f.update_ms_p50:.1f} ms, max {f.update_ms_max:.1f} ms; retrieval "
        f"p50 {f.retrieval_ms_p50:.1f} ms, p95 {f.retrieval_ms_p95:.1f} ms, memo hit {f.memo_us_p50:.0f} us; "
        f"{f.snippets_per_query:.1f} snippet files per query"
    )


def workspace_command(args: argparse.Namespace) -> int:
    results = run_workspace_bench(
        args.sizes,
        Path(args.source) if args.source else None,
        trace_memory=not args.no_memory,
        out=(lambda _line: None) if args.json else print,
    )
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    return 0


def register_cli(subparsers: Any) -> None:
    """Add `workspace` to the `bench` command's subparsers."""
    parser = subparsers.add_parser(
        "workspace",
        help="workspace index: build time, memory, cost of a change, retrieval latency by repository size",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    _arguments(parser)
    parser.set_defaults(handler=workspace_command)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[500, 5000], metavar="N", help="repository sizes in files"
    )
    parser.add_argument("--source", metavar="DIR", help="where to take code from (default: site-packages)")
    parser.add_argument("--no-memory", action="store_true", help="skip the traced build (faster)")
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m fim_lsp.bench.workspace [--sizes 500 5000]`."""
    parser = argparse.ArgumentParser(prog="fim_lsp.bench.workspace", description=__doc__.split("\n\n")[0])
    _arguments(parser)
    logging.basicConfig(level=logging.WARNING)
    return workspace_command(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
