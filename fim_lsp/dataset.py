"""Self-supervised FIM tasks cut from a repository's own code: `fim-lsp dataset REPO`.

No labels are needed: a hole cut out of a file has its answer in the file. Four kinds of hole, the
first three as in the public FIM benchmarks and the last the one workspace context is for:

- `single-line`: one whole line of code (from its indentation on);
- `multi-line`: two to five lines that are whole statements at one indentation level;
- `random-span`: a random stretch of characters inside one to three lines;
- `cross-file`: a line that uses, for the first time in its file, a name the file imports from another
  file of the repository (as CrossCodeEval's lines do: the file above shows nothing of how it is used).

Each task carries the snippets the workspace index retrieves for its cursor, found as the server finds
them (with the hole's own file left out of the index's answer), so `fim-lsp bench quality --tasks FILE`
measures completion with and without workspace context on the user's own code. Tasks are JSON lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
from collections.abc import Callable, Collection, Container, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from fim_lsp.holes import cut, line_starts
from fim_lsp.prompt import RepoFile
from fim_lsp.syntax import LANGUAGES, DocumentSyntax, inside_comment_or_string
from fim_lsp.syntax.lines import indent_chars
from fim_lsp.workspace import symbols

logger = logging.getLogger(__name__)

Kind = Literal["single-line", "multi-line", "random-span", "cross-file"]
KINDS: tuple[Kind, ...] = ("single-line", "multi-line", "random-span", "cross-file")

#: Snippet budget stored with each task, in estimated tokens (four characters each). The benchmark packs
#: them again into its own budget with the model's tokenizer, so this only needs to be generous.
SNIPPET_BUDGET_ESTIMATE = 2048
#: Lines shorter than this (after indentation) are too easy or too vague to be a task.
MIN_LINE_CHARS = 12
#: A name defined in more files than this is too common to say which definition a line needs.
MAX_DEFINING_FILES = 3

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_NAME = re.compile(r"[\w.]+(?:\s+as\s+\w+)?,?$")
# How an import (or a package line) starts, in the languages the index reads.
_IMPORT_START = r"import\b|from\s+\S+\s+import\b|package\b|using\b|#include\b"
_IMPORT_ROW = re.compile(rf"^\s*(?:{_IMPORT_START}|export\s+\{{)")
# Lines that are no good as holes: comments, decorators, imports, lone brackets, docstring quotes.
_SKIPPED_LINE = re.compile(rf"^\s*(?:#|//|/\*|\*|--|@|{_IMPORT_START}|\"\"\"|'''|[)\]}}]+[;,]?\s*$)")


@dataclass(frozen=True)
class DatasetTask:
    """One hole in one file of a repository, with the workspace snippets for its cursor."""

    task_id: str
    kind: Kind
    repo: str
    path: str
    """The file's path in the repository."""
    language: str
    prefix: str
    suffix: str
    middle: str
    snippets: tuple[RepoFile, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["snippets"] = [{"path": s.path, "text": s.text} for s in self.snippets]
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> DatasetTask:
        kind = record["kind"]
        if kind not in KINDS:
            raise ValueError(f"unknown task kind {kind!r}")
        return cls(
            task_id=str(record["task_id"]),
            kind=kind,
            repo=str(record.get("repo", "workspace")),
            path=str(record["path"]),
            language=str(record["language"]),
            prefix=str(record["prefix"]),
            suffix=str(record["suffix"]),
            middle=str(record["middle"]),
            snippets=tuple(RepoFile(str(s["path"]), str(s["text"])) for s in record.get("snippets", ())),
        )


def read_tasks(path: Path) -> list[DatasetTask]:
    """Tasks from a JSON-lines file; a bad line raises ValueError naming its number."""
    tasks = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                tasks.append(DatasetTask.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a task: {exc}") from exc
    return tasks


# --------------------------------------------------------------------------------------------------
# Cutting holes (pure: text in, spans out)
# --------------------------------------------------------------------------------------------------


def code_line(line: str) -> bool:
    """Whether a line is code worth cutting out: long enough, not a comment, import or lone bracket, nor
    a bare name (as in the middle of a bracketed import list or enumeration)."""
    body = line.strip()
    return len(body) >= MIN_LINE_CHARS and not _SKIPPED_LINE.match(line) and not _BARE_NAME.match(body)


def single_line_holes(lines: Sequence[str]) -> list[tuple[int, int]]:
    """(row, row) of each line that may be a single-line hole."""
    return [(row, row) for row, line in enumerate(lines) if code_line(line)]


def multi_line_holes(lines: Sequence[str], rng: random.Random) -> list[tuple[int, int]]:
    """(first row, last row) of runs of two to five code lines at one indentation, whose next line is
    no deeper (so the run ends where a statement does)."""
    holes = []
    for first, line in enumerate(lines):
        if not code_line(line):
            continue
        level = indent_chars(line)
        length = rng.randint(2, 5)
        last = first + length - 1
        if last >= len(lines):
            continue
        run = lines[first : last + 1]
        if any(not r.strip() or indent_chars(r) < level for r in run) or indent_chars(run[-1]) != level:
            continue
        following = next((r for r in lines[last + 1 :] if r.strip()), "")
        if following and indent_chars(following) > level:
            continue
        holes.append((first, last))
    return holes


def cross_file_names(
    line: str,
    imported: set[str],
    defined_here: set[str],
    files_defining: Callable[[str], int],
    used_above: Container[str] = frozenset(),
) -> list[str]:
    """Names a line uses that its file imports and the repository defines at the top level of other
    files (and few: `files_defining(name)` counts them), not in the line's own file, and that no row
    above the line uses (`used_above`: a use above shows the model how to write this one). The import
    is what makes the dependency real: a word that merely matches a method somewhere (`send`, `read`)
    does not make a line cross-file, nor does a docstring that mentions a class."""
    names = []
    for name in _IDENTIFIER.findall(line):
        if len(name) < 4 or name not in imported or name in defined_here or name in used_above:
            continue
        if 0 < files_defining(name) <= MAX_DEFINING_FILES:
            names.append(name)
    return names


def _import_row(line: str) -> bool:
    """Whether a row is (part of) an import: naming a module's name there is no use of it."""
    return bool(_IMPORT_ROW.match(line) or _BARE_NAME.match(line.strip()))


def random_span(text: str, lines: Sequence[str], row: int, rng: random.Random) -> tuple[str, str, str]:
    """A random stretch of one to three lines' characters starting on `row` (never only whitespace)."""
    starts = line_starts(lines)
    last = min(len(lines) - 1, row + rng.randint(0, 2))
    begin = starts[row] + rng.randint(
        indent_chars(lines[row]), max(indent_chars(lines[row]), len(lines[row]) - 1)
    )
    end_row_start = starts[last]
    end = rng.randint(max(begin + 1, end_row_start), end_row_start + len(lines[last]))
    return text[:begin], text[begin:end], text[end:]


# --------------------------------------------------------------------------------------------------
# Over a repository
# --------------------------------------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """About four characters a token: good enough to bound what a task stores."""
    return (len(text) + 3) // 4


def source_files(repo: Path) -> list[str]:
    """The paths (relative to `repo`) of the source files the workspace index reads there, sorted."""
    index, _root = _indexed(repo)
    return sorted(entry.relative for entry in _source_entries(index))


def cut_tasks(
    repo: Path,
    per_kind: int,
    seed: int = 1,
    kinds: Sequence[Kind] = KINDS,
    *,
    leave_out: Collection[str] = (),
    only: Collection[str] | None = None,
) -> list[DatasetTask]:
    """Up to `per_kind` tasks of each kind from the repository at `repo`, spread over its files.

    `leave_out` names files (relative paths) the repository is taken without: no hole is cut in them and
    no snippet shows them (held out from training). `only`, when given, names the files holes are cut
    from; the others still serve snippets."""
    index, root = _indexed(repo)
    for entry in _source_entries(index):
        if entry.relative in leave_out:
            index.remove_file(entry.path)
    files = sorted(
        (e for e in _source_entries(index) if only is None or e.relative in only),
        key=lambda entry: entry.relative,
    )
    if not files:
        raise ValueError(f"{repo}: no source files to cut tasks from")
    rng = random.Random(seed)
    name = Path(root).name
    tasks: list[DatasetTask] = []
    for kind in kinds:
        candidates = list(_candidates(kind, files, index, rng))
        rng.shuffle(candidates)
        # One task per file first, then more, so that no single file dominates the set.
        firsts: dict[str, int] = {}
        for position, candidate in enumerate(candidates):
            firsts.setdefault(candidate[0].path, position)
        order = sorted(range(len(candidates)), key=lambda i: (firsts[candidates[i][0].path] != i, i))
        chosen = [candidates[i] for i in order[:per_kind]]
        for number, (entry, prefix, middle, suffix) in enumerate(chosen):
            snippets = _snippets(index, entry, prefix, suffix)
            tasks.append(
                DatasetTask(
                    task_id=f"{kind}/{number}/{entry.relative}",
                    kind=kind,
                    repo=name,
                    path=entry.relative,
                    language=entry.language or "",
                    prefix=prefix,
                    suffix=suffix,
                    middle=middle,
                    snippets=tuple(snippets),
                )
            )
    return tasks


def _indexed(repo: Path) -> tuple[Any, str]:
    """A built workspace index of `repo`, and the folder's root as the index names it."""
    from fim_lsp.workspace.index import WorkspaceIndex

    index = WorkspaceIndex()
    root = index.add_folder(repo)
    index.build()
    return index, root


def _source_entries(index: Any) -> list[Any]:
    """The index's files in a language it reads."""
    return [entry for entry in (index.get(p) for p in index.paths()) if entry is not None and entry.language]


def _candidates(
    kind: Kind, files: Sequence[Any], index: Any, rng: random.Random
) -> Iterator[tuple[Any, str, str, str]]:
    for entry in files:
        text = entry.text()
        lines = text.split("\n")
        if kind == "single-line":
            rows = single_line_holes(lines)
        elif kind == "multi-line":
            rows = multi_line_holes(lines, rng)
        elif kind == "random-span":
            rows = single_line_holes(lines)
        else:
            defined_here = set(entry.def_names)
            imported = {name for name, _module in symbols.imported_names(text, entry.language) if name}

            def elsewhere(name: str, path: str = entry.path) -> int:
                """Other files defining `name` at their top level (a method of the same name is not
                what an import brings)."""
                return sum(
                    1
                    for f in index.defining_files(name)
                    if f.path != path and any(d.kind != "method" for d in f.definitions(name))
                )

            tree = DocumentSyntax(entry.language, text) if entry.language in LANGUAGES else None
            starts = line_starts(lines)
            used_above: set[str] = set()
            rows = []
            for row, line in enumerate(lines):
                if _import_row(line):
                    continue
                if tree is not None and inside_comment_or_string(
                    tree, text, starts[row] + indent_chars(line) + 1
                ):
                    continue  # a docstring's, comment's or string's line: prose, neither hole nor use
                if code_line(line) and cross_file_names(line, imported, defined_here, elsewhere, used_above):
                    rows.append((row, row))
                used_above.update(_IDENTIFIER.findall(line))
        for first, last in rows:
            if kind == "random-span":
                prefix, middle, suffix = random_span(text, lines, first, rng)
            else:
                prefix, middle, suffix = cut(text, lines, first, last)
            if middle.strip():
                yield entry, prefix, middle, suffix


def _snippets(index: Any, entry: Any, prefix: str, suffix: str) -> list[RepoFile]:
    """What the server would put in the prompt for this hole (the file's own text left out)."""
    from fim_lsp.workspace.retrieval import snippets_for

    return list(
        snippets_for(
            index,
            entry.path,
            prefix + suffix,
            len(prefix),
            entry.language,
            SNIPPET_BUDGET_ESTIMATE,
            estimate_tokens,
        )
    )


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def dataset_command(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    if not repo.is_dir():
        print(f"fim-lsp: {repo} is not a folder", file=sys.stderr)
        return 2
    try:
        tasks = cut_tasks(repo, args.per_kind, args.seed, args.kinds)
    except ValueError as exc:
        print(f"fim-lsp: {exc}", file=sys.stderr)
        return 1
    output = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        for task in tasks:
            output.write(json.dumps(task.to_json(), ensure_ascii=False) + "\n")
    finally:
        if output is not sys.stdout:
            output.close()
    counts = {kind: sum(t.kind == kind for t in tasks) for kind in args.kinds}
    print(f"fim-lsp: {len(tasks)} tasks from {repo}: {counts}", file=sys.stderr)
    return 0


def register_cli(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="cut FIM tasks (with workspace snippets) out of a repository, as JSON lines",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("repo", metavar="REPO", help="the repository (any folder of source files)")
    parser.add_argument("-o", "--output", metavar="FILE", help="where the JSON lines go (default: stdout)")
    parser.add_argument("--per-kind", type=int, default=50, metavar="N", help="tasks of each kind (50)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random choices (1)")
    parser.add_argument(
        "--kinds",
        nargs="+",
        choices=KINDS,
        default=list(KINDS),
        metavar="KIND",
        help=f"kinds: {', '.join(KINDS)}",
    )
    parser.set_defaults(handler=dataset_command)
