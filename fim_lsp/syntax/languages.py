"""The languages fim-lsp knows: LSP language ids and file names to tree-sitter grammars, the grammars
themselves, and what each language's comments and definitions look like.

Grammars come from `tree_sitter_language_pack` 0.13.0, which bundles them compiled (1.x downloads them at
run time, which would break the offline promise). tree-sitter works in UTF-8 bytes and its columns are byte
columns; the rest of fim-lsp counts Python string indices (code points), so every crossing converts
(`utf8`, `byte_offset`).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Language, Node, Tree


#: LSP language ids (as editors send them) to tree-sitter grammar names.
LANGUAGE_IDS: dict[str, str] = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",  # the JavaScript grammar parses JSX
    "typescript": "typescript",
    "typescriptreact": "tsx",
    "go": "go",
    "rust": "rust",
    "java": "java",
    "c": "c",
    "cpp": "cpp",
    "csharp": "csharp",
    "lua": "lua",
    "ruby": "ruby",
    "php": "php",
    "shellscript": "bash",
    "bash": "bash",
    "sh": "bash",
}


#: File name extensions to grammar names, for documents whose language id we do not know.
EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hh": "cpp",
    ".hpp": "cpp",
    ".hxx": "cpp",
    ".cs": "csharp",
    ".lua": "lua",
    ".rb": "ruby",
    ".php": "php",
    ".sh": "bash",
    ".bash": "bash",
}


#: Every grammar fim-lsp uses.
LANGUAGES: frozenset[str] = frozenset(LANGUAGE_IDS.values())


KEYWORD_BLOCK_LANGUAGES = frozenset({"ruby", "lua", "bash"})


# Definition headers, whose body a block middle never leaves.
DEFINITIONS = {
    "python": re.compile(r"^\s*(?:async\s+def|def|class)\b"),
    "ruby": re.compile(r"^\s*(?:def|class|module)\b"),
    "lua": re.compile(r"^\s*(?:local\s+)?function\b|=\s*function\b"),
    "bash": re.compile(r"^\s*(?:function\s+\w+|\w+\s*\(\s*\))"),
}


COMMENT_TYPES = ("comment", "line_comment", "block_comment")
"""Node types of comments in the grammars we ship."""


STRING_TYPES = (
    "string",
    "string_content",
    "string_fragment",
    "template_string",
    "string_literal",
    "raw_string_literal",
    "interpreted_string_literal",
    "char_literal",
    "character_literal",
    "encapsed_string",
)


#: How a comment starts, by grammar (the C family's by default).
_COMMENT_STARTS: dict[str, tuple[str, ...]] = {
    "python": ("#",),
    "ruby": ("#",),
    "bash": ("#",),
    "lua": ("--",),
    "php": ("//", "#", "/*"),
}


def comment_starts(language: str | None) -> tuple[str, ...]:
    """How a comment starts in `language` (a grammar name; the C family's when unknown)."""
    return _COMMENT_STARTS.get(language or "", ("//", "/*"))


def language_of(language_id: str | None, path: str | None = None) -> str | None:
    """The tree-sitter grammar for a document: from its LSP language id, else its file name; None if unknown.

    `path` may be a file system path or a `file:` URI; only its last suffix matters.
    """
    if language_id:
        language = LANGUAGE_IDS.get(language_id.lower())
        if language:
            return language
    if path:
        return EXTENSIONS.get(PurePath(path).suffix.lower())
    return None


@cache
def get_language(name: str) -> Language:
    """The compiled grammar `name` (one of `LANGUAGES`), loaded once per process."""
    if name not in LANGUAGES:
        raise ValueError(f"no tree-sitter grammar for {name!r}")
    # Imported here: the language pack loads a 20 MB set of shared objects we only want when used.
    from tree_sitter_language_pack import get_language as pack_language

    return pack_language(name)  # type: ignore[arg-type]


#: Grammars whose external scanner can crash the process (a segmentation fault, which no `except`
#: catches) on characters outside the Basic Multilingual Plane: tree-sitter-bash in the language pack
#: 0.13.0, on text such as `{}` followed by such characters, now and then (not on every parse of the
#: same text). They are given each such character as four ASCII bytes instead: the same length in
#: UTF-8, so every byte offset and point of the tree stays the document's, and a word stays a word.
ASTRAL_UNSAFE = frozenset({"bash"})
_FOUR_BYTE_CHARACTER = re.compile(rb"[\xf0-\xf4][\x80-\xbf]{3}")


class SyntaxParser:
    """A tree-sitter parser for one grammar, which feeds grammars in `ASTRAL_UNSAFE` only text their
    scanner takes. Not thread-safe (nor is tree-sitter's): each owner keeps its own."""

    def __init__(self, name: str) -> None:
        from tree_sitter import Parser

        self._parser = Parser(get_language(name))
        self._astral_unsafe = name in ASTRAL_UNSAFE

    def parse(self, source: bytes, old_tree: Tree | None = None) -> Tree:
        if self._astral_unsafe:
            source = _FOUR_BYTE_CHARACTER.sub(b"____", source)
        if old_tree is None:
            return self._parser.parse(source)
        return self._parser.parse(source, old_tree)


def new_parser(name: str) -> SyntaxParser:
    """A parser for grammar `name`. Parsers are not thread-safe: each owner keeps its own."""
    return SyntaxParser(name)


def count_errors(node: Node) -> int:
    """ERROR and MISSING nodes under `node`; only subtrees that contain an error are walked."""
    count = 0
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_error or current.is_missing:
            count += 1
        if current.has_error:
            stack.extend(current.children)
    return count


def utf8(text: str) -> bytes:
    """`text` as UTF-8 for tree-sitter. A lone surrogate (JSON can carry one, as `\\ud800`) becomes its
    three-byte form instead of an exception: tree-sitter reads it as an error, like any invalid byte."""
    return text.encode("utf-8", "surrogatepass")


def byte_offset(text: str, offset: int) -> int:
    """The UTF-8 byte offset of string index `offset` (0 to `len(text)`) in `text`."""
    if text.isascii():  # known without a scan (CPython keeps the flag): one byte per character
        return max(0, min(offset, len(text)))
    return len(utf8(text[:offset]))
