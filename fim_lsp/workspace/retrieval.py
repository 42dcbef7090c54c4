"""Snippets from the workspace for the prompt at a cursor: what the code being written refers to.

Three kinds of snippet, taken from files other than the cursor's:

- **definitions** of the names used in the rows above the cursor and of the names the file imports
  (names that are both come first, then used ones nearest the cursor first, then imported ones; never
  the words of an imported module's path): a short definition whole, a long one as its header
  (signature and docstring), and a long class also by the signatures of its public methods (its
  constructor's included): what code that uses the class needs to know;
- **recent** ranges: rows the user edited or visited lately in other files, newest first;
- **similar** chunks: the chunks that score best by BM25 against the identifiers of those rows.

They are deduplicated (a range that overlaps one already taken is dropped), packed in that order into
the token budget (each kind first within its share, then whatever is left over goes to the rest), and
returned one `RepoFile` per file, the most relevant file last, nearest the code being completed.

The snippets go at the very start of the prompt, so every change to them costs the model a full
re-evaluation of the prompt. Hence:

- the query is made of the text *above* the cursor's line, never the line being typed: typing on a
  line gives the same snippets, byte for byte, and a memo answers the repeated query at no cost;
- the order is deterministic (a fixed rank, then path and row);
- moving to the next line keeps the previous snippets while they are still relevant (each is still a
  candidate) and no newly used name brings a definition they lack ("sticky" snippets).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from fim_lsp.prompt import RepoFile, repo_file_tokens
from fim_lsp.syntax import language_of
from fim_lsp.workspace import symbols
from fim_lsp.workspace.bm25 import terms_of
from fim_lsp.workspace.entry import IndexedFile
from fim_lsp.workspace.folders import normalize_path
from fim_lsp.workspace.index import WorkspaceIndex

logger = logging.getLogger(__name__)

#: Rows above the cursor's line whose names and identifiers make the query.
QUERY_ROWS = 20
#: Rows at the head of the file searched for imports.
IMPORT_ROWS = 300
#: A definition this short (in rows) is shown whole; a longer one by its header.
SHORT_DEFINITION_ROWS = 12
#: A name defined in more files than this is too ambiguous to look up, unless an import says where.
MAX_DEFINING_FILES = 3
#: A name defined in more files than this is not looked up at all (`__init__`, `get`, `main`).
MAX_CANDIDATE_FILES = 64
#: Method signatures shown at most for a long class (in document order, public ones and constructors).
OUTLINE_MEMBERS = 8
#: Rows of one method signature shown at most.
SIGNATURE_ROWS = 4
#: Kinds of definition whose methods make an outline.
_OUTLINED_KINDS = frozenset({"class", "struct", "interface"})
#: Leading rows of a definition that are not its signature: decorators, attributes, doc comments.
_DECORATION = ("@", "#", "//", "/*", "*", "--")
#: How a signature's last row ends (Python's colon, a brace that opens the body, a prototype's semicolon).
_SIGNATURE_ENDS = (":", "{", ";")
#: Definitions shown per name at most.
DEFINITIONS_PER_NAME = 2
#: Names looked up at most (nearest the cursor first), and definitions offered at most: more would
#: not fit a prompt's share anyway, and each costs reading its file.
MAX_NAMES = 40
MAX_DEFINITION_CANDIDATES = 16
#: Recent ranges and similar chunks taken as candidates.
RECENT_CANDIDATES = 4
SIMILAR_CANDIDATES = 6
#: A similar chunk scoring below this share of the best one is noise.
SIMILAR_FLOOR = 0.3
#: Shares of the budget each kind may fill before the leftover is shared out.
SHARES = {"definition": 0.5, "recent": 0.2, "similar": 0.3}
#: Budget left below which no more snippets are looked at (none would fit).
MIN_SNIPPET_TOKENS = 12
_MEMO_SIZE = 32
_STICKY_PATHS = 64


@dataclass(frozen=True)
class Snippet:
    """A range of rows of one file, as a candidate for the prompt."""

    kind: str
    """definition, recent or similar."""
    path: str
    relative: str
    first: int
    last: int
    """The rows of `text` (inclusive): those asked for, without blank rows at either end."""
    text: str
    key: tuple[str, int, int]
    """The file and the rows asked for: what identifies the snippet before its text is read."""

    def overlaps(self, other: Snippet) -> bool:
        """Whether the two share at least half of the shorter one's rows (or the same text)."""
        if self.text.strip() == other.text.strip():
            return True
        if self.path != other.path:
            return False
        shared = min(self.last, other.last) - max(self.first, other.first) + 1
        shortest = min(self.last - self.first, other.last - other.first) + 1
        return shared * 2 >= shortest


class _Candidate(NamedTuple):
    """A snippet before its text is read: a range of rows of an indexed file."""

    kind: str
    file: IndexedFile
    first: int
    last: int
    signature_only: bool = False
    """A method in a class's outline: only its signature's rows are shown."""

    @property
    def key(self) -> tuple[str, int, int]:
        return self.file.path, self.first, self.last

    def read(self, lines_cache: dict[str, list[str]]) -> Snippet | None:
        """The snippet, its blank rows at either end dropped; None when nothing but blank rows."""
        entry = self.file
        lines = lines_cache.get(entry.path)
        if lines is None:
            lines = lines_cache[entry.path] = entry.lines()
        first, last = max(0, self.first), min(self.last, len(lines) - 1)
        if self.kind == "similar":
            first, last = _off_headers(entry.definitions(), first, last)
        if self.signature_only:
            first, last = signature_rows(lines, first, last)
        while first < last and not lines[first].strip():
            first += 1
        while last > first and not lines[last].strip():
            last -= 1
        body = "\n".join(lines[first : last + 1])
        if not body.strip():
            return None
        return Snippet(self.kind, entry.path, entry.relative, first, last, body + "\n", self.key)


def _off_headers(definitions: list[symbols.Definition], first: int, last: int) -> tuple[int, int]:
    """A similar chunk's rows (fixed blocks of rows) moved off the middle of a definition's header: one
    that starts inside a signature or docstring starts at the definition instead, and one that ends
    inside one ends before it. A docstring's tail reads to a model as code, and what follows as text."""
    for definition in definitions:  # in document order: an outer definition before its members
        if definition.start < first <= definition.header_end:
            first = definition.start
        if first < definition.start <= last < definition.header_end:
            last = definition.start - 1
    return first, last


@dataclass(frozen=True)
class _Query:
    path: str
    language: str | None
    window: str
    """The rows above the cursor's line that make the query."""
    head: str
    """The file's head above the cursor's line, where its imports are."""


@dataclass
class _Chosen:
    snippets: list[Snippet]
    result: list[RepoFile]
    version: int
    budget: int


class SnippetRetriever:
    """Snippets for cursors in the files of one `WorkspaceIndex`, with a memo. Thread-safe."""

    def __init__(self, index: WorkspaceIndex) -> None:
        self.index = index
        self._lock = threading.Lock()
        self._memo: OrderedDict[tuple[_Query, int], tuple[int, list[RepoFile]]] = OrderedDict()
        self._sticky: OrderedDict[str, _Chosen] = OrderedDict()

    def snippets_for(
        self,
        path: str,
        text: str,
        offset: int,
        language: str | None,
        budget_tokens: int,
        count_tokens: Callable[[str], int],
    ) -> list[RepoFile]:
        """The workspace snippets for a cursor at string index `offset` of `text` (the document at
        `path`, in grammar `language`), within `budget_tokens` as `count_tokens` counts them."""
        if budget_tokens <= 0:
            return []
        path = normalize_path(path)
        query = _make_query(path, text, offset, language or language_of(None, path))
        memo_key = (query, budget_tokens)
        # Other files' edited buffers first: they may change the answer (the cursor's own never does).
        self.index.refresh(exclude=path)
        with self._lock:
            memo = self._memo.get(memo_key)
            if memo is not None and _unchanged_except(self.index, memo[0], path):
                self._memo.move_to_end(memo_key)
                return memo[1]
        version = self.index.version
        candidates, pool = self._candidates(query)
        chosen = _pack(candidates, budget_tokens, count_tokens)
        result = _as_repo_files(chosen)
        with self._lock:
            previous = self._sticky.get(path)
            if previous is not None and _still_fits(previous, chosen, pool, budget_tokens, self.index):
                result = previous.result
            else:
                self._sticky[path] = _Chosen(chosen, result, version, budget_tokens)
            self._sticky.move_to_end(path)
            while len(self._sticky) > _STICKY_PATHS:
                self._sticky.popitem(last=False)
            self._memo[memo_key] = (version, result)
            while len(self._memo) > _MEMO_SIZE:
                self._memo.popitem(last=False)
        return result

    def _candidates(self, query: _Query) -> tuple[list[_Candidate], set[tuple[str, int, int]]]:
        """The candidates in rank order (their text not read yet), and the keys of a wider pool
        (for the sticky rule)."""
        imported = symbols.imported_names(query.head, query.language)
        # The words of a module's path in an import (`pygls` in `from pygls.server import X`) name
        # files and folders, not code: looked up or searched for, they find only namesakes.
        module_words = {word for _name, module in imported for word in module.split("/")}
        module_words -= {name for name, _module in imported}
        candidates = []
        for entry, definition in self._definitions(query, imported, module_words):
            candidates.append(_Candidate("definition", entry, *definition_rows(definition)))
            candidates += [
                _Candidate("definition", entry, member.start, member.header_end, signature_only=True)
                for member in outline_members(entry, definition)
            ]
        recent = 0
        for recent_range in self.index.recent_ranges():
            if recent_range.path == query.path or recent >= RECENT_CANDIDATES:
                continue
            recent_file = self.index.get(recent_range.path)
            if recent_file is not None:
                candidates.append(_Candidate("recent", recent_file, recent_range.first, recent_range.last))
                recent += 1
        path_terms = {word.lower() for word in module_words}
        terms = [term for term in terms_of(query.window) if term not in path_terms]
        hits = self.index.similar_chunks(terms, exclude=query.path, limit=2 * SIMILAR_CANDIDATES)
        pool = {c.key for c in candidates} | {(hit.file.path, hit.first, hit.last) for hit in hits}
        best = hits[0].score if hits else 0.0
        candidates += [
            _Candidate("similar", hit.file, hit.first, hit.last)
            for hit in hits[:SIMILAR_CANDIDATES]
            if hit.score >= SIMILAR_FLOOR * best
        ]
        return candidates, pool

    def _definitions(
        self, query: _Query, imported: list[symbols.ImportedName], module_words: set[str]
    ) -> list[tuple[IndexedFile, symbols.Definition]]:
        """Definitions in other files of the names the query uses and imports, in rank order."""
        hints: dict[str, set[str]] = {}
        for name, module in imported:
            if module:
                hints.setdefault(name, set()).update(_tails(module))
        all_modules = set().union(*hints.values()) if hints else set()
        imported_order = list(dict.fromkeys(name for name, _module in imported if name))
        used = [name for name in symbols.used_names(query.window) if name not in module_words]
        used_set = set(used)
        names = [name for name in used if name in hints]
        names += [name for name in used if name not in hints]
        names += [name for name in imported_order if name not in used_set]
        found: list[tuple[IndexedFile, symbols.Definition]] = []
        current_dir = os.path.dirname(query.path)
        tails: dict[str, list[str]] = {}  # per file, for this query
        for name in names[:MAX_NAMES]:
            files = [entry for entry in self.index.defining_files(name) if entry.path != query.path]
            if not files or len(files) > MAX_CANDIDATE_FILES:
                continue
            # The module a name is imported from says which file defines it; a name used without an
            # import of its own (`module.name`) may come from any imported module.
            modules = hints.get(name) or all_modules
            matches = {entry.path: _match_length(entry, modules, tails) for entry in files} if modules else {}
            best = max(matches.values(), default=0)
            if best:
                # The longest match wins: `pkg_3/util` over every other `util`.
                files = [entry for entry in files if matches[entry.path] == best]
            elif len(files) > MAX_DEFINING_FILES:
                continue
            # Nearer files first (same folder), then by path: the same answer every time.
            files.sort(key=lambda entry: (os.path.dirname(entry.path) != current_dir, entry.path))
            found += self.index.lookup(name, files[:DEFINITIONS_PER_NAME])[:DEFINITIONS_PER_NAME]
            if len(found) >= MAX_DEFINITION_CANDIDATES:
                break
        return found


def definition_rows(definition: symbols.Definition) -> tuple[int, int]:
    """The rows of a definition shown in a prompt: all of a short one, the header of a long one."""
    rows = definition.end - definition.start + 1
    return definition.start, definition.end if rows <= SHORT_DEFINITION_ROWS else definition.header_end


def outline_members(entry: IndexedFile, outer: symbols.Definition) -> list[symbols.Definition]:
    """The methods of `entry` whose signatures outline its long class `outer` (none for a short one,
    shown whole): public ones and constructors, in document order, at most `OUTLINE_MEMBERS`. The
    file's definitions are unpacked only for a class that needs an outline."""
    if outer.kind not in _OUTLINED_KINDS or definition_rows(outer)[1] == outer.end:
        return []
    members = [
        d
        for d in entry.definitions()
        if d.kind == "method"
        and outer.header_end < d.start <= d.end <= outer.end
        and (not d.name.startswith("_") or d.name == "__init__")
    ]
    return members[:OUTLINE_MEMBERS]


def signature_rows(lines: list[str], first: int, last: int) -> tuple[int, int]:
    """The rows of a definition's signature within its header rows `first`..`last`: decorators and doc
    comments above it skipped, the docstring below it left out, at most `SIGNATURE_ROWS` rows."""
    start = first
    while start < last and lines[start].lstrip().startswith(_DECORATION):
        start += 1
    end = start
    while end < min(last, start + SIGNATURE_ROWS - 1) and not lines[end].rstrip().endswith(_SIGNATURE_ENDS):
        end += 1
    return start, end


def _make_query(path: str, text: str, offset: int, language: str | None) -> _Query:
    """The query: rows above the cursor's line, and the head of the file above it."""
    line_start = text.rfind("\n", 0, offset) + 1
    start = line_start
    for _ in range(QUERY_ROWS):
        if start == 0:
            break
        start = text.rfind("\n", 0, start - 1) + 1
    head_end = 0
    for _ in range(IMPORT_ROWS):
        newline = text.find("\n", head_end, line_start)
        if newline == -1:
            break
        head_end = newline + 1
    return _Query(path, language, text[start:line_start], text[:head_end])


def _tails(path: str) -> list[str]:
    """`a/b/c` -> [a/b/c, b/c, c]: the ways an import may name a path's end."""
    parts = [part for part in path.split("/") if part]
    return ["/".join(parts[index:]) for index in range(len(parts))]


def _match_length(entry: IndexedFile, modules: set[str], cache: dict[str, list[str]]) -> int:
    """How many path parts of the longest module path in `modules` that names `entry`: its path
    without suffix, or its folder (a Go package, a Python package's `__init__`); 0 when none does."""
    names = cache.get(entry.path)
    if names is None:
        stem = os.path.splitext(entry.relative)[0]
        names = cache[entry.path] = _tails(stem) + _tails(os.path.dirname(stem))
    best = 0
    for tail in names:
        if tail in modules:
            best = max(best, tail.count("/") + 1)
    return best


def _pack(candidates: list[_Candidate], budget: int, count_tokens: Callable[[str], int]) -> list[Snippet]:
    """The candidates that fit `budget`: each kind within its share first, then the leftover to all.
    A candidate's text is read only when it is considered."""
    chosen: list[Snippet] = []
    snippets: dict[tuple[str, int, int], tuple[Snippet | None, int]] = {}
    lines_cache: dict[str, list[str]] = {}
    spent = {kind: 0 for kind in SHARES}

    def read(candidate: _Candidate) -> tuple[Snippet | None, int]:
        if candidate.key not in snippets:
            snippet = candidate.read(lines_cache)
            cost = repo_file_tokens(snippet.relative, snippet.text, count_tokens) if snippet else 0
            snippets[candidate.key] = snippet, cost
        return snippets[candidate.key]

    total = 0
    for capped in (True, False):
        for candidate in candidates:
            if budget - total < MIN_SNIPPET_TOKENS:
                break
            if any(c.key == candidate.key for c in chosen):
                continue
            snippet, price = read(candidate)
            if snippet is None or any(snippet.overlaps(other) for other in chosen):
                continue
            if total + price > budget:
                continue
            if capped and spent[snippet.kind] + price > SHARES[snippet.kind] * budget:
                continue
            chosen.append(snippet)
            spent[snippet.kind] += price
            total += price
    rank = {candidate.key: number for number, candidate in enumerate(candidates)}
    return sorted(chosen, key=lambda snippet: rank[snippet.key])


def _as_repo_files(chosen: list[Snippet]) -> list[RepoFile]:
    """One RepoFile per file, its ranges in row order; the file of the best snippet last."""
    best: dict[str, int] = {}
    ranges: dict[str, list[Snippet]] = {}
    for number, snippet in enumerate(chosen):
        best.setdefault(snippet.relative, number)
        ranges.setdefault(snippet.relative, []).append(snippet)
    files = sorted(best, key=lambda relative: (-best[relative], relative))
    return [RepoFile(relative, _joined(ranges[relative])) for relative in files]


def _joined(snippets: list[Snippet]) -> str:
    """The ranges of one file in row order: rows two ranges share once, a blank row between gaps."""
    rows: list[str] = []
    last = -2
    for snippet in sorted(snippets, key=lambda s: (s.first, s.last)):
        lines = snippet.text.rstrip("\n").split("\n")
        if snippet.first > last + 1 and rows:
            rows.append("")
        rows += lines[max(0, last + 1 - snippet.first) :]
        last = max(last, snippet.last)
    return "\n".join(rows) + "\n"


def _unchanged_except(index: WorkspaceIndex, version: int, path: str) -> bool:
    """Whether nothing but `path` changed in the index since `version` (its own changes are not used)."""
    changed = index.changed_since(version)
    return changed is not None and changed <= {path}


def _still_fits(
    previous: _Chosen,
    chosen: list[Snippet],
    pool: set[tuple[str, int, int]],
    budget: int,
    index: WorkspaceIndex,
) -> bool:
    """Whether the snippets chosen for this file before are still a good answer: as many as the new
    ones, each still a candidate, every definition the new query brings among them, and their files
    unchanged."""
    if previous.budget != budget or index.building:
        return False  # while the index fills, newer answers are better ones
    if not previous.snippets or len(previous.snippets) < len(chosen):
        return False  # the new answer holds more
    keys = {snippet.key for snippet in previous.snippets}
    if not keys <= pool:
        return False
    if any(snippet.kind == "definition" and snippet.key not in keys for snippet in chosen):
        return False
    changed = index.changed_since(previous.version)
    return changed is not None and not changed & {snippet.path for snippet in previous.snippets}


_retrievers: weakref.WeakKeyDictionary[WorkspaceIndex, SnippetRetriever] = weakref.WeakKeyDictionary()
_retrievers_lock = threading.Lock()


def snippets_for(
    index: WorkspaceIndex,
    path: str,
    text: str,
    offset: int,
    language: str | None,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
) -> list[RepoFile]:
    """`SnippetRetriever.snippets_for` with the index's own retriever (and so its memo)."""
    with _retrievers_lock:
        retriever = _retrievers.get(index)
        if retriever is None:
            retriever = _retrievers[index] = SnippetRetriever(index)
    return retriever.snippets_for(path, text, offset, language, budget_tokens, count_tokens)
