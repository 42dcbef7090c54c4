"""The workspace benchmark runs end to end on a small repository (its figures are measured elsewhere)."""

from __future__ import annotations

from fim_lsp.bench.workspace import main, run_workspace_bench

MODULE = '''"""A module of the synthetic repository."""


def parse_row_{n}(line: str) -> list[str]:
    return [cell.strip() for cell in line.split(",")]


def total_{n}(rows: list[list[str]]) -> float:
    return sum(float(row[{n} % 3]) for row in rows)
'''


def test_bench_reports_every_figure(tmp_path):
    source = tmp_path / "source"
    for n in range(12):
        (source / f"pkg_{n % 3}").mkdir(parents=True, exist_ok=True)
        (source / f"pkg_{n % 3}" / f"module_{n}.py").write_text(MODULE.format(n=n), encoding="utf-8")
    lines: list[str] = []
    [small, repeated] = run_workspace_bench([8, 30], source, trace_memory=True, out=lines.append)
    assert small.files_indexed == 8
    assert repeated.files_indexed == 30  # more files than the source has: copies under new folders
    assert repeated.index_mib is not None and repeated.index_mib > 0
    assert repeated.retrieval_ms_p50 > 0 and repeated.update_ms_p50 > 0
    assert len(lines) == 3 and "retrieval p50" in lines[-1]


def test_main_prints_json(tmp_path, capsys):
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.py").write_text(MODULE.format(n=1), encoding="utf-8")
    assert main(["--sizes", "2", "--source", str(source), "--no-memory", "--json"]) == 0
    assert '"files_indexed": 2' in capsys.readouterr().out
