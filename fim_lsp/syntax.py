"""tree-sitter for fim-lsp: which language a document is, what the cursor wants, and where a middle is whole.

Three jobs, all pure functions of text (no pygls, no model):

- `language_of` maps an LSP language id (or a file name) to a tree-sitter grammar, and `DocumentSyntax`
  keeps a document's tree current by incremental re-parsing on each change.
- `classify` decides the shape of the answer at the cursor: nothing, one line, or a block.
- `truncate_middle` cuts what the model wrote to the longest part that is whole: one line, or the lines
  that add no syntax error and stay inside the block the cursor is in.

Grammars come from `tree_sitter_language_pack` 0.13.0, which bundles them compiled (1.x downloads them at
run time, which would break the offline promise). tree-sitter works in UTF-8 bytes and its columns are byte
columns; the rest of fim-lsp counts Python string indices (code points), so every crossing converts.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import PurePath
from typing import TYPE_CHECKING

from fim_lsp.completion import Shape

if TYPE_CHECKING:
    from tree_sitter import Language, Node, Parser, Tree

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Languages
# --------------------------------------------------------------------------------------------------

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

_KEYWORD_BLOCK_LANGUAGES = frozenset({"ruby", "lua", "bash"})


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


def new_parser(name: str) -> Parser:
    """A parser for grammar `name`. Parsers are not thread-safe: each owner keeps its own."""
    from tree_sitter import Parser

    return Parser(get_language(name))


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


# --------------------------------------------------------------------------------------------------
# Offsets: Python string indices versus tree-sitter bytes and byte columns
# --------------------------------------------------------------------------------------------------


def _common_prefix_length(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix, by bisection on slice comparisons (C speed, O(n log n))."""
    low, high = 0, min(len(a), len(b))
    # Each step compares only the undecided window [low, mid), so the bytes compared halve per step:
    # about 2n in all, done by memcmp.
    while low < high:
        mid = (low + high + 1) // 2
        if a[low:mid] == b[low:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _common_suffix_length(a: bytes, b: bytes, limit: int) -> int:
    """Length of the longest common suffix of `a` and `b`, at most `limit`."""
    low, high = 0, limit
    len_a, len_b = len(a), len(b)
    while low < high:
        mid = (low + high + 1) // 2
        if a[len_a - mid : len_a - low] == b[len_b - mid : len_b - low]:
            low = mid
        else:
            high = mid - 1
    return low


def _is_continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80


def _point_of(data: bytes, offset: int) -> tuple[int, int]:
    """tree-sitter (row, byte column) of a byte offset."""
    row = data.count(b"\n", 0, offset)
    line_start = data.rfind(b"\n", 0, offset) + 1
    return row, offset - line_start


def utf8(text: str) -> bytes:
    """`text` as UTF-8 for tree-sitter. A lone surrogate (JSON can carry one, as `\\ud800`) becomes its
    three-byte form instead of an exception: tree-sitter reads it as an error, like any invalid byte."""
    return text.encode("utf-8", "surrogatepass")


def byte_offset(text: str, offset: int) -> int:
    """The UTF-8 byte offset of string index `offset` (0 to `len(text)`) in `text`."""
    if text.isascii():  # known without a scan (CPython keeps the flag): one byte per character
        return max(0, min(offset, len(text)))
    return len(utf8(text[:offset]))


class DocumentSyntax:
    """A document's text and its syntax tree, kept current by incremental re-parsing.

    `update` finds the one changed span between the old and new text (common prefix and suffix), tells
    a copy of the old tree about it, and lets tree-sitter re-parse reusing everything outside that span.
    Updates come from one thread (the server's); other threads (the completion worker) read through
    `snapshot()`, which gives them a text and the tree of that very text, never touched again: a
    published tree is never edited in place.
    """

    def __init__(self, language: str, text: str) -> None:
        self.language = language
        self._parser = new_parser(language)
        self._lock = threading.Lock()
        data = utf8(text)
        self._state: tuple[str, bytes, Tree] = (text, data, self._parser.parse(data))

    @property
    def text(self) -> str:
        return self._state[0]

    @property
    def data(self) -> bytes:
        """The text as UTF-8, as the tree sees it."""
        return self._state[1]

    @property
    def tree(self) -> Tree:
        return self._state[2]

    def snapshot(self) -> DocumentSyntax:
        """A view of the current text and tree that later updates leave alone (do not update it)."""
        view = object.__new__(DocumentSyntax)
        view.language, view._parser, view._lock, view._state = (
            self.language,
            self._parser,
            self._lock,
            self._state,
        )
        return view

    def update(self, new_text: str) -> None:
        """Replace the text with `new_text`, re-parsing only what changed."""
        with self._lock:
            _text, old, tree = self._state
            new = utf8(new_text)
            if old == new:
                self._state = (new_text, new, tree)
                return
            start = _common_prefix_length(old, new)
            # Never split a UTF-8 sequence: move back to the first byte of the character.
            while start > 0 and start < len(old) and _is_continuation(old[start]):
                start -= 1
            tail = _common_suffix_length(old, new, min(len(old), len(new)) - start)
            while tail > 0 and len(old) - tail < len(old) and _is_continuation(old[len(old) - tail]):
                tail -= 1
            old_end, new_end = len(old) - tail, len(new) - tail
            edited = tree.copy()
            edited.edit(
                start_byte=start,
                old_end_byte=old_end,
                new_end_byte=new_end,
                start_point=_point_of(old, start),
                old_end_point=_point_of(old, old_end),
                new_end_point=_point_of(new, new_end),
            )
            self._state = (new_text, new, self._parser.parse(new, edited))

    def error_count(self) -> int:
        """ERROR and MISSING nodes in the whole document."""
        return count_errors(self.tree.root_node)

    def node_at(self, offset: int) -> Node:
        """The smallest node that spans string index `offset` (or the node that ends there)."""
        text, _data, tree = self._state
        position = byte_offset(text, offset)
        return tree.root_node.descendant_for_byte_range(position, position) or tree.root_node

    def byte_offset(self, offset: int) -> int:
        """UTF-8 byte offset of string index `offset`."""
        return byte_offset(self.text, offset)


#: Documents longer than this (in characters) keep no whole-document tree: a 10 MB file takes seconds
#: to parse, hundreds of MiB of tree, and ~150 ms per keystroke to re-parse on two cores. For them the
#: pipeline parses only the prompt's window, a few kilobytes, whatever the file's size.
MAX_TREE_CHARS = 1_000_000


def follow_document(tree: DocumentSyntax | None, language: str | None, text: str) -> DocumentSyntax | None:
    """The tree of an open document after a change: `tree` re-parsed incrementally when it is of the
    same language, a new one when there was none, None when the document has no grammar or is too
    long to keep whole (see MAX_TREE_CHARS)."""
    if language is None or len(text) > MAX_TREE_CHARS:
        return None
    try:
        if tree is None or tree.language != language:
            return DocumentSyntax(language, text)
        tree.update(text)
        return tree
    except Exception:  # a grammar failing on odd text must cost the tree, not the server
        logger.warning("cannot parse the document as %s; the prompt window is parsed instead", language)
        logger.debug("parse failure", exc_info=True)
        return None


# --------------------------------------------------------------------------------------------------
# The cursor's line, within a window
# --------------------------------------------------------------------------------------------------

#: The most characters of the cursor's line, on each side of the cursor, that the line rules read
#: (brackets, strings and comments; whether the line opens a block or goes on to the next). Code lines
#: are far shorter, so for them nothing changes; a longer line is minified code or data, where the
#: characters next to the cursor say as much as the rest of the line, and lexing all of it with the
#: regexes below took seconds per request at the end of a 10 MB line. Brackets, strings and comments
#: that start further from the cursor are not seen. Kept below what `fim_lsp.context` keeps before the
#: cursor of a line too long for the budget (3,456 characters at the default 1536 tokens: budget x
#: LONG_LINE_CHARS_PER_TOKEN x the prefix's share), so that the shape judged on the prompt's text is
#: the one judged on the document (after the cursor only the first character and whether the rest is
#: blank count).
LINE_WINDOW_CHARS = 2048


def _line_before(text: str, offset: int) -> str:
    """The cursor's line before `offset`: at most its last LINE_WINDOW_CHARS characters."""
    low = max(0, offset - LINE_WINDOW_CHARS)
    return text[max(low, text.rfind("\n", low, offset) + 1) : offset]


def _line_after(text: str, offset: int) -> str:
    """The cursor's line from `offset` on: at most its first LINE_WINDOW_CHARS characters."""
    high = min(len(text), offset + LINE_WINDOW_CHARS)
    end = text.find("\n", offset, high)
    return text[offset : high if end == -1 else end]


# --------------------------------------------------------------------------------------------------
# A small lexer: brackets outside strings and comments
# --------------------------------------------------------------------------------------------------

_STRING_DQ = r'"(?:\\.|[^"\\\n])*"?'
_STRING_SQ = r"'(?:\\.|[^'\\\n])*'?"
_CHAR_LITERAL = r"'(?:\\.|[^'\\\n])'"
_BACKTICK = r"`(?:\\.|[^`\\])*`?"
_TRIPLE = r'"""[\s\S]*?(?:"""|$)|' + r"'''[\s\S]*?(?:'''|$)"
_BLOCK_COMMENT = r"/\*[\s\S]*?(?:\*/|$)"


@cache
def _token_pattern(language: str | None) -> re.Pattern[str]:
    """Strings and comments (to skip) and brackets (to count) of a language family."""
    if language == "python":
        parts = [_TRIPLE, r"#[^\n]*", _STRING_DQ, _STRING_SQ]
    elif language in ("ruby", "bash"):
        parts = [r"#[^\n]*", _STRING_DQ, _STRING_SQ]
    elif language == "lua":
        parts = [r"--[^\n]*", _STRING_DQ, _STRING_SQ]
    elif language == "rust":
        # Single quotes are lifetimes ('a) as often as characters: only a whole char literal is one.
        parts = [r"//[^\n]*", _BLOCK_COMMENT, _STRING_DQ, _CHAR_LITERAL]
    elif language == "php" or language is None:  # unknown languages: the common comment markers
        parts = [r"//[^\n]*", r"#[^\n]*", _BLOCK_COMMENT, _STRING_DQ, _STRING_SQ]
    else:
        parts = [r"//[^\n]*", _BLOCK_COMMENT, _STRING_DQ, _STRING_SQ, _BACKTICK]
    return re.compile("|".join(f"(?:{p})" for p in parts) + r"|(?P<bracket>[()\[\]{}])")


_OPENERS = "([{"


def _bracket_events(text: str, language: str | None) -> list[tuple[int, int]]:
    """(position, +1 or -1) for every bracket in `text` outside strings and comments."""
    events = []
    for match in _token_pattern(language).finditer(text):
        bracket = match.group("bracket")
        if bracket:
            events.append((match.start(), 1 if bracket in _OPENERS else -1))
    return events


def _code_part(line: str, language: str | None) -> str:
    """`line` without its trailing comment (strings are kept)."""
    for match in _token_pattern(language).finditer(line):
        # Every token that is neither a bracket nor a string (which start with a quote) is a comment.
        if match.group("bracket") is None and match.group(0)[0] in "#/-":
            return line[: match.start()]
    return line


def _unclosed_openers(line: str, language: str | None) -> int:
    """Openers in `line` that the line itself does not close (0 when balanced or over-closed)."""
    depth = 0
    for _position, step in _bracket_events(line, language):
        depth = max(0, depth + step)
    return depth


# --------------------------------------------------------------------------------------------------
# Cursor classification
# --------------------------------------------------------------------------------------------------


_WORD = re.compile(r"\w", re.UNICODE)
# A line ending in one of these continues on the next line as part of the same expression.
_CONTINUES_EXPRESSION = re.compile(
    r"(?:[-+*/%=<>!&|^~,.?:]|\b(?:and|or|not|in|is|return|yield|await|new|typeof|instanceof)|=>|->)\s*$"
)
_PYTHON_BLOCK_START = re.compile(r":\s*$")
_RUBY_BLOCK_START = re.compile(r"(?:\bdo(?:\s*\|[^|]*\|)?|\{\s*\|[^|]*\||\bthen)\s*$")
# Read from the line's start: only on a line that fits LINE_WINDOW_CHARS (not on a window's cut start).
_RUBY_BLOCK_HEADER = re.compile(
    r"\s*(?:def|class|module|if|unless|while|until|for|case|begin|else|elsif|when|rescue|ensure)\b"
)
_LUA_BLOCK_START = re.compile(r"(?:\bthen|\bdo|\belse|\brepeat|\bfunction\b[^()]*\([^)]*\))\s*$")
_BASH_BLOCK_START = re.compile(r"(?:\bthen|\bdo|\belse|\{|\(\))\s*$")
_SWITCH_LABEL = re.compile(r"^\s*(?:case\b.*|default\s*):$")

COMMENT_TYPES = ("comment", "line_comment", "block_comment")
"""Node types of comments in the grammars we ship."""
_STRING_TYPES = (
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


def opens_block(line: str, language: str | None) -> bool:
    """Whether `line` (code before the cursor) ends where a block of statements starts.

    Only the line's last LINE_WINDOW_CHARS characters are read.
    """
    whole = len(line) <= LINE_WINDOW_CHARS
    code = _code_part(line[-LINE_WINDOW_CHARS:], language).rstrip()
    if not code:
        return False
    if language == "python":
        return bool(_PYTHON_BLOCK_START.search(code)) and _unclosed_openers(code, language) == 0
    if language == "ruby":
        return bool(_RUBY_BLOCK_START.search(code) or (whole and _RUBY_BLOCK_HEADER.match(code)))
    if language == "lua":
        return bool(_LUA_BLOCK_START.search(code))
    if language == "bash":
        return bool(_BASH_BLOCK_START.search(code))
    if language is None and code.endswith(":") and _unclosed_openers(code, language) == 0:
        return True  # unknown language: a colon that ends a line opens a block in most that use one
    return code.endswith("{") or (whole and bool(_SWITCH_LABEL.match(code)))


def inside_comment_or_string(syntax: DocumentSyntax, text: str, offset: int) -> str | None:
    """'comment' or 'string' when the cursor is inside one (per the tree), else None."""
    if syntax.text is not text and syntax.text != text:
        return None  # the tree is of another version of the text: do not trust it
    position = syntax.byte_offset(offset)
    probe = max(0, position - 1)
    node: Node | None = syntax.tree.root_node.descendant_for_byte_range(probe, position)
    while node is not None:
        if node.type in COMMENT_TYPES and node.start_byte < position <= node.end_byte:
            return "comment"
        if node.type in _STRING_TYPES and node.start_byte < position < node.end_byte:
            return "string"
        node = node.parent
    return None


def literal_start_row(syntax: DocumentSyntax, row: int, column: int) -> int | None:
    """The row where the string or comment that holds the point (`row`, byte `column`) begins, when it
    begins on an earlier row (a docstring's second line, the middle of a block comment), per the tree."""
    point = (row, column)
    node: Node | None = syntax.tree.root_node.descendant_for_point_range(point, point)
    while node is not None:
        if node.type in COMMENT_TYPES or node.type in _STRING_TYPES:
            return node.start_point.row if node.start_point.row < row else None
        node = node.parent
    return None


def classify(syntax: DocumentSyntax | None, text: str, offset: int) -> Shape:
    """The shape of completion that makes sense at string index `offset` of `text`.

    - NONE inside a word (word characters on both sides of the cursor).
    - LINE with code on both sides of the cursor on its line, inside a comment or string, or at the end
      of a line that is an unfinished expression (open bracket, trailing operator).
    - BLOCK on a blank line, at the start of a line (whole lines go above what follows), and at the end
      of a line that opens a block or is a finished statement (the next lines are what comes).

    Comments are completed: people write them as prompts. `syntax` refines the decision (comments,
    strings) when its text is `text`; without it the text alone decides. Of the cursor's line only
    LINE_WINDOW_CHARS characters on each side of the cursor are read, whatever its length.
    """
    offset = max(0, min(offset, len(text)))
    before = _line_before(text, offset)
    after = _line_after(text, offset)

    if before and after and _WORD.match(before[-1]) and _WORD.match(after[0]):
        return Shape.NONE
    if not before.strip():
        return Shape.BLOCK
    if after.strip():
        return Shape.LINE
    language = syntax.language if syntax is not None else None
    if syntax is not None and inside_comment_or_string(syntax, text, offset):
        return Shape.LINE
    if opens_block(before, language):
        return Shape.BLOCK
    code = _code_part(before, language)
    if code.strip() != before.strip():
        return Shape.LINE  # the line ends in a comment: finish the comment
    if _unclosed_openers(code, language) or _CONTINUES_EXPRESSION.search(code):
        return Shape.LINE
    return Shape.BLOCK


# --------------------------------------------------------------------------------------------------
# Truncation of a generated middle
# --------------------------------------------------------------------------------------------------

# FIM and other special-token spellings of the families we know; the model's text never contains them.
_SPECIAL_TOKEN = re.compile(
    r"<\|[A-Za-z_][A-Za-z0-9_]*\|>"  # Qwen, CodeGemma: <|fim_prefix|>, <|endoftext|>, <|file_sep|>
    r"|<(?:fim_prefix|fim_suffix|fim_middle|fim_pad|file_sep|repo_name|filename|gh_stars)>"  # StarCoder
    r"|<｜[^｜>]*｜>"  # DeepSeek-Coder (full-width bars)
    r"|\s?<(?:PRE|SUF|MID|EOT)>"  # CodeLlama
    r"|\[(?:PREFIX|SUFFIX|MIDDLE)\]"  # Codestral
)
_FENCE = re.compile(r"^\s*```")
# An English sentence at column 0: a capitalised word, at least three more words, no code punctuation.
_PROSE = re.compile(r"^[A-Z][a-z']+(?:[ ,]+[A-Za-z0-9'`\-]+){3,}[.:!?]?\s*$")
_TRAILING_SPACES_THEN_NEWLINE = re.compile(r"^[ \t]+\n")
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


def _drop_end_of_line_comment(middle: str, language: str | None) -> str:
    """The middle without a comment it starts with on the cursor's line, when the cursor ends a line of
    code: instruct-tuned models like to remark on the line just written (`  # remove the maximum`)
    before the line they were asked for, and such a remark is not what the user was about to type."""
    first, newline, rest = middle.partition("\n")
    if first.strip().startswith(comment_starts(language)):
        return newline + rest
    return middle


_INDENTATION = re.compile(r"[ \t]*")


def _leading_whitespace(line: str) -> str:
    """The spaces and tabs `line` starts with (read no further: the line may be a long one)."""
    match = _INDENTATION.match(line)
    return match.group() if match else ""


_TRAILING_BLANK_LINES = re.compile(r"\n[ \t\n]*\n[ \t]*$|\n[ \t]+$")
# Definition headers, whose body a block middle never leaves.
_DEFINITIONS = {
    "python": re.compile(r"^\s*(?:async\s+def|def|class)\b"),
    "ruby": re.compile(r"^\s*(?:def|class|module)\b"),
    "lua": re.compile(r"^\s*(?:local\s+)?function\b|=\s*function\b"),
    "bash": re.compile(r"^\s*(?:function\s+\w+|\w+\s*\(\s*\))"),
}


@dataclass(frozen=True)
class _Cursor:
    """The cursor's line, split at the cursor: what the rules about lines and newlines look at."""

    before: str
    """Text before the cursor on its line (its last LINE_WINDOW_CHARS characters at most)."""
    after: str
    """Text after the cursor on its line (its first LINE_WINDOW_CHARS characters at most)."""
    rest_of_suffix: str
    """The suffix after the cursor's line (after its newline); empty when the suffix has no newline."""
    suffix_has_newline: bool

    @classmethod
    def of(cls, prefix: str, suffix: str) -> _Cursor:
        newline = suffix.find("\n")
        return cls(
            before=_line_before(prefix, len(prefix)),
            after=_line_after(suffix, 0),
            rest_of_suffix="" if newline == -1 else suffix[newline + 1 :],
            suffix_has_newline=newline != -1,
        )

    @property
    def at_line_start(self) -> bool:
        return not self.before.strip()

    @property
    def text_after(self) -> bool:
        return bool(self.after.strip())

    def next_suffix_line(self) -> str | None:
        """The first non-blank line of the file after the cursor, as a whole line (with indentation)."""
        if self.text_after:
            return self.before + self.after if self.at_line_start else self.after
        for line in self.rest_of_suffix.split("\n"):
            if line.strip():
                return line
        return None


def _indent_width(line: str) -> int:
    return len(_leading_whitespace(line).expandtabs(8))


def _strip_special_and_fences(middle: str) -> tuple[str, bool]:
    """The middle before any special token, fence or prose; and whether something was cut (an end)."""
    cut = False
    special = _SPECIAL_TOKEN.search(middle)
    if special:
        middle, cut = middle[: special.start()], True
    lines = middle.split("\n")
    # A fence before any code: the model wrapped its answer in Markdown; the code follows the fence.
    first_code = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first_code is not None and _FENCE.match(lines[first_code]) and first_code + 1 < len(lines):
        lines = lines[:first_code] + lines[first_code + 1 :]
        middle = "\n".join(lines)
    for index, line in enumerate(lines):
        if index > 0 and (_FENCE.match(line) or _PROSE.match(line)):
            middle, cut = "\n".join(lines[:index]) + "\n", True
            break
    return middle, cut


def _python_empty_blocks(node: Node, start: int, end: int) -> int:
    """Empty `block` nodes between byte offsets `start` and `end`.

    tree-sitter's Python grammar accepts a block header with nothing indented under it (`if x:` followed
    by a dedent) without an error node; Python does not, so a middle that ends on a header must count it.
    """
    count = 0
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "block" and current.child_count == 0 and start <= current.start_byte <= end:
            count += 1
        stack.extend(
            child for child in current.children if child.end_byte >= start and child.start_byte <= end
        )
    return count


def _first_code_lines(suffix: str) -> str:
    """The suffix up to the end of its first line with code after the cursor's own line."""
    newline = suffix.find("\n")
    if newline == -1 or suffix[:newline].strip():
        return suffix if newline == -1 else suffix[: newline + 1]
    position = newline + 1
    while True:
        end = suffix.find("\n", position)
        line = suffix[position:] if end == -1 else suffix[position : end + 1]
        if line.strip() or end == -1:
            return suffix[: position + len(line)]
        position = end + 1


def _python_indent_errors(text: str, depth: int) -> int:
    """Lines of `text` indented deeper than the statement before them when that one opens no block.

    Python calls that "unexpected indent"; tree-sitter's Python grammar accepts it silently. Lines that
    continue a statement (inside brackets or a string, after a backslash) do not count. `depth` is the
    bracket depth at the start of `text`.
    """
    line_starts = [0] + [match.end() for match in re.finditer("\n", text)]
    brackets: list[tuple[int, int]] = []
    strings: list[tuple[int, int]] = []
    for match in _token_pattern("python").finditer(text):
        bracket = match.group("bracket")
        if bracket:
            brackets.append((match.start(), 1 if bracket in _OPENERS else -1))
        elif match.group(0)[0] in "\"'":
            strings.append((match.start(), match.end()))
    errors = 0
    previous_indent: int | None = None
    previous_opens = False
    event = 0
    for number, start in enumerate(line_starts):
        while event < len(brackets) and brackets[event][0] < start:
            depth = max(0, depth + brackets[event][1])
            event += 1
        end = line_starts[number + 1] - 1 if number + 1 < len(line_starts) else len(text)
        line = text[start:end]
        continues = depth > 0 or any(a < start < b for a, b in strings)
        if continues or not line.strip() or line.lstrip().startswith("#"):
            if continues and line.strip() and previous_indent is not None:
                previous_opens = opens_block(line, "python") or line.rstrip().endswith("\\")
            continue
        indent = _indent_width(line)
        if previous_indent is not None and indent > previous_indent and not previous_opens:
            errors += 1
        previous_indent = indent
        previous_opens = opens_block(line, "python") or line.rstrip().endswith("\\")
    return errors


class _InsertionChecker:
    """Counts syntax errors of `prefix + middle + suffix` for many middles, re-parsing incrementally."""

    def __init__(self, language: str, prefix: str, suffix: str) -> None:
        self._prefix = utf8(prefix)
        self._suffix = utf8(suffix)
        self._language = language
        self._parser = new_parser(language)
        self._base = self._parser.parse(self._prefix + self._suffix)
        self.base_errors = count_errors(self._base.root_node)
        self._start_point = _point_of(self._prefix, len(self._prefix))
        if language == "python":
            # Indentation is checked around the insertion only: from the last code line before the
            # cursor to the first one after the middle, with the bracket depth where that starts.
            last = prefix.rstrip().rfind("\n") + 1
            self._head, self._tail = prefix[last:], _first_code_lines(suffix)
            self._depth = sum(step for _, step in _bracket_events(prefix[:last], "python"))
            self.base_errors += _python_indent_errors(self._head + self._tail, max(0, self._depth))

    def errors_with(self, middle: str) -> int:
        """Syntax errors of the file with `middle` inserted (see `_python_empty_blocks` for Python)."""
        inserted = utf8(middle)
        data = self._prefix + inserted + self._suffix
        tree = self._base.copy()
        start = len(self._prefix)
        end_point = _point_of(data, start + len(inserted))
        tree.edit(
            start_byte=start,
            old_end_byte=start,
            new_end_byte=start + len(inserted),
            start_point=self._start_point,
            old_end_point=self._start_point,
            new_end_point=end_point,
        )
        root = self._parser.parse(data, tree).root_node
        errors = count_errors(root)
        if self._language == "python":
            errors += _python_empty_blocks(root, start, start + len(inserted))
            errors += _python_indent_errors(self._head + middle + self._tail, max(0, self._depth))
        return errors


def _make_checker(language: str | None, prefix: str, suffix: str) -> _InsertionChecker | None:
    if language not in LANGUAGES:
        return None
    try:
        return _InsertionChecker(language, prefix, suffix)
    except Exception:  # a grammar that fails to load must not take completion down with it
        logger.exception("cannot parse %s for truncation; cutting by lines only", language)
        return None


def _fit_line_end(text: str, cursor: _Cursor, inserted_lines: bool) -> str:
    """Get the newline right between the middle and what follows the cursor on its line.

    When the middle is whole lines inserted before text that follows on the cursor's line, it must end
    with a newline (and the indentation the cursor was at), or that text would join its last line. When
    nothing follows on the line, the suffix brings the line end, so the middle must not add one.
    """
    if cursor.text_after:
        if inserted_lines:
            if not text.endswith("\n"):
                text += "\n"
            if cursor.at_line_start:
                text += cursor.before  # the indentation before the cursor, for the line that follows
        return text
    if cursor.suffix_has_newline:
        text = text.rstrip(" \t")
        if text.endswith("\n"):
            text = text[:-1].rstrip(" \t")
    return text


def _trim_suffix_overlap(line: str, cursor: _Cursor, checker: _InsertionChecker | None) -> str:
    """Drop what the rest of the cursor's line already has from the end of `line`: the whole rest (the
    model wrote past the hole), or closing characters it starts with. The syntax decides when it can."""
    line = line.rstrip()
    rest = cursor.after.strip()
    options = []
    if rest and line.endswith(rest) and line != rest:
        options.append(line[: -len(rest)])
    closers = re.match(r"[)\]}>;,:'\"`]+", rest)
    if closers:
        options += [
            line[:-size] for size in range(len(closers.group(0)), 0, -1) if line.endswith(rest[:size])
        ]
    options = [option for option in options if option.strip()]
    if not options:
        return line
    if checker is None:
        return options[0]
    # Fewest errors wins; on a tie, the rest of the line is the user's text, so the trimmed one.
    return min([*options, line], key=checker.errors_with)


def _truncate_line(
    middle: str, cursor: _Cursor, checker: _InsertionChecker | None, whole: bool
) -> str | None:
    line = _first_line(middle, cursor, checker, whole)
    if line is not None and _restates_next_line(line, cursor):
        return None
    # A middle the model ended itself, on several lines, that fits the file: the model knew better than
    # the cursor that the hole spans lines (mid-line, this is the only way to get more than one line).
    # Unless its first line alone fits better: a model that writes the line asked for and then the
    # suffix's closing line again leaves as many errors as the hole did, but a different one.
    if whole and checker is not None and "\n" in middle.strip():
        text = _fit_line_end(middle.rstrip(" \t"), cursor, cursor.at_line_start or middle.startswith("\n"))
        if text.strip():
            return _fewest_errors([text] if line is None else [text, line], checker) or line
    return line


def _opens_unfilled_block(middle: str, cursor: _Cursor, language: str | None) -> bool:
    """Whether the middle's first line, finishing the cursor's line (`for i in range(` + `len(xs)):`),
    opens a block whose body the code after the cursor does not have (its next line is not indented
    deeper). The line alone is then half a thought (in Python a syntax error), and the body the model
    writes after it belongs to the answer, as Copilot shows a loop with its body."""
    if cursor.text_after or cursor.at_line_start or middle.startswith("\n"):
        return False
    line = middle.split("\n", 1)[0]
    if not line.strip() or not opens_block(cursor.before + line, language):
        return False
    following = cursor.next_suffix_line()
    return following is None or _indent_width(following) <= _indent_width(cursor.before)


def _restates_next_line(line: str, cursor: _Cursor) -> bool:
    """Whether `line`, an answer that starts a new line after the cursor's, is the file's next line again:
    the model skipped the hole and went on with what follows it (BLOCK cuts such lines the same way)."""
    if not line.startswith("\n") or cursor.text_after:
        return False
    following = cursor.next_suffix_line()
    return following is not None and _same_line(line.strip("\n"), following)


def _first_line(middle: str, cursor: _Cursor, checker: _InsertionChecker | None, whole: bool) -> str | None:
    """The middle's first line of code, its line end fitted to what follows the cursor; None when that
    line never ended (and the model did not end the middle either)."""
    lead = ""
    body = middle
    if not cursor.at_line_start:
        # At the end of a code line the model often starts the next line: that line is the answer.
        newlines = re.match(r"(?:[ \t]*\n)+", middle)
        if newlines:
            lead, body = middle[: newlines.end()], middle[newlines.end() :]
    newline = body.find("\n")
    if newline == -1:
        if not whole:
            return None  # the line never ended
        line = body
    else:
        line = body[:newline]
    line = line.rstrip()
    if not line.strip():
        return None
    if cursor.text_after and not lead and not cursor.at_line_start:
        line = _trim_suffix_overlap(line, cursor, checker)
    inserted_lines = bool(lead) or cursor.at_line_start
    text = _fit_line_end(lead + line, cursor, inserted_lines)
    return text if text.strip() else None


def _block_floor(prefix: str, cursor: _Cursor, language: str | None, first_line: str | None) -> int | None:
    """Least indentation a middle line may have before it has left the block the cursor is in.

    That block is the body of the definition (function, class) around the cursor: a middle may close
    inner blocks (in Python by dedenting, as the code after the cursor often does), but it may not go on
    to write the next definition. When the user typed indentation on an empty line, that indentation is
    where they want to write, down to where the code after the cursor continues.

    For Python a line below the floor ends the middle; for keyword-block languages (Ruby, Lua, Bash) it
    may be the block's closing line and ends the middle after it. None for brace languages, where braces
    decide. `first_line` is the middle's first non-blank line when the cursor is at column 0.
    """
    definition = _DEFINITIONS.get(language or "")
    if definition is None:
        return None
    # The lines above the cursor's, and the cursor's own as far as `cursor` read it (it may be long).
    lines = prefix[: prefix.rfind("\n") + 1].split("\n")
    current = cursor.before
    typed_indent = _indent_width(current + "x") if current and not current.strip() else None
    # How deep the cursor is, to find the definition around it.
    if current.strip():
        reference = _indent_width(current) + int(opens_block(current, language))
    elif typed_indent is not None:
        reference = typed_indent
    elif first_line is not None:
        reference = _indent_width(first_line)
    else:
        previous = next((line for line in reversed(lines[:-1]) if line.strip()), None)
        reference = 0 if previous is None else _indent_width(previous) + int(opens_block(previous, language))
    # The definition the cursor is in: the nearest header above that is less indented than the cursor
    # and than every line between them (a less indented line in between means that one was closed).
    body = 0
    innermost = reference
    for line in reversed(lines[:-1]):
        if not line.strip():
            continue
        width = _indent_width(line)
        if width < innermost and definition.match(line):
            body = width + 1
            break
        innermost = min(innermost, width)
    if typed_indent is None:
        return body
    floor = typed_indent
    following = cursor.next_suffix_line()
    if following is not None and language == "python":
        # Keyword languages show the way out with a closing line, which must not lower the floor.
        floor = min(floor, _indent_width(following))
    return max(floor, body)


def _same_line(written: str, expected: str) -> bool:
    """Whether a middle line is the suffix's line again. The indentation may differ (the model nested
    its own version of the code differently), unless the line is too short to be telling (`}`, `else:`)."""
    return written.strip() == expected.strip() and (len(expected.strip()) >= 8 or written == expected)


def _suffix_repeat_start(
    lines: list[str], cursor: _Cursor, continues_line: bool, following: str, confirmed: bool = False
) -> int:
    """Index of the first middle line from which the middle repeats the lines after the cursor.

    The lines after the first equal one must agree too, as far as the middle goes; with `confirmed`, as
    far as three lines (or the whole suffix), so that a middle still being written is not cut early.
    """
    expected = [line.rstrip() for line in cursor.rest_of_suffix.split("\n") if line.strip()]
    if cursor.text_after:
        expected.insert(0, following.rstrip())  # the cursor's own line comes first
    complete = [line.rstrip("\n").rstrip() for line in lines if line.endswith("\n")]
    for index, line in enumerate(complete):
        if (index == 0 and continues_line) or not _same_line(line, expected[0]):
            continue
        ahead = [other for other in complete[index:] if other.strip()][:3]
        agree = all(_same_line(a, b) for a, b in zip(ahead, expected, strict=False))
        # Moved to another indentation, one equal line may be the model's own code: want a second.
        enough = 1 if line == expected[0] else 2
        if confirmed:
            enough = max(enough, min(3, len(expected)))
        if agree and min(len(ahead), len(expected)) >= enough:
            return index
    return len(lines)


def _repetition_start(lines: list[str]) -> int | None:
    """Index of the first line that starts an immediate repeat of the 1 to 4 lines before it."""
    for index in range(1, len(lines)):
        for size in range(1, 5):
            if index - size < 0 or index + size > len(lines):
                continue
            window = lines[index - size : index]
            if lines[index : index + size] != window:
                continue
            if any(len(line.strip()) >= 6 for line in window):
                return index
    return None


def _block_limit(
    lines: list[str], prefix: str, cursor: _Cursor, language: str | None, streaming: bool = False
) -> tuple[int, bool]:
    """How many of the middle's lines may stay, and whether a rule cut (an end the model ran past).

    `streaming`: the middle is still being written; cut only where more lines cannot undo the cut.
    """
    limit = len(lines)
    following = cursor.next_suffix_line()
    continues_line = not cursor.at_line_start  # line 0 continues the code on the cursor's line
    if lines and cursor.at_line_start:
        # The lines as they will stand in the file: the first one after the indentation before the cursor.
        lines = [cursor.before + lines[0], *lines[1:]]
    # Lines that repeat the start of the suffix: the model wrote past the hole into what follows. One
    # equal line is not enough (code repeats lines), so the next ones must agree too.
    if following is not None:
        limit = min(limit, _suffix_repeat_start(lines, cursor, continues_line, following, streaming))
    repeat = _repetition_start(lines)
    if repeat is not None:
        limit = min(limit, repeat)
    # Indentation: leaving the block the cursor is in.
    first_line = None
    if cursor.at_line_start and not cursor.before:
        first_line = next((line for line in lines if line.strip()), None)
    floor = _block_floor(prefix, cursor, language, first_line)
    if floor is not None:
        for index, line in enumerate(lines[:limit]):
            if (index == 0 and continues_line) or not line.strip():
                continue
            if _indent_width(line) < floor:
                inclusive = (
                    language in _KEYWORD_BLOCK_LANGUAGES and line.rstrip() != (following or "").rstrip()
                )
                limit = min(limit, index + 1 if inclusive else index)
                break
    # Braces: the line that closes the block the cursor is in is the last that may stay, and not even
    # that one when the suffix's next line is that same closing line, indentation included (a `}` less
    # indented closes an outer block). Parentheses and square brackets are expressions, which a middle
    # may well close and go on after.
    if language not in _DEFINITIONS:
        depth = 0
        line_of = [index for index, line in enumerate(lines) for _ in line]
        text = "".join(lines)
        for position, step in _bracket_events(text, language):
            if text[position] not in "{}":
                continue
            depth += step
            if depth < 0:
                index = line_of[position]
                same_as_suffix = following is not None and (
                    # Text after the cursor on its line has no indentation of its own to compare.
                    lines[index].strip() == following.strip()
                    if continues_line and cursor.text_after
                    else lines[index].rstrip() == following.rstrip()
                )
                limit = min(limit, index if same_as_suffix else index + 1)
                break
    return limit, limit < len(lines)


def _truncate_block(
    prefix: str, middle: str, suffix: str, cursor: _Cursor, language: str | None, whole: bool
) -> str | None:
    lines = middle.splitlines(keepends=True)
    limit, cut = _block_limit(lines, prefix, cursor, language)
    lines = lines[:limit]
    whole = whole or cut
    # Candidate ends: after every complete line; the unfinished last line only when the middle is whole.
    ends = []
    position = 0
    for line in lines:
        position += len(line)
        if line.endswith("\n") or whole:
            ends.append(position)
    text = "".join(lines)
    inserted_lines = cursor.at_line_start or text.startswith("\n")
    candidates = []
    for end in reversed(ends):
        # Trailing blank lines are not part of the answer; the line end is settled by _fit_line_end.
        candidate = _fit_line_end(_TRAILING_BLANK_LINES.sub("\n", text[:end]), cursor, inserted_lines)
        if candidate.strip() and candidate not in candidates:
            candidates.append(candidate)
    if not candidates:
        return None
    checker = _make_checker(language, prefix, suffix)
    if checker is None:
        return candidates[0]
    # None: every whole cut breaks the file, and showing a broken block is worse than showing nothing.
    return _fewest_errors(candidates, checker)


def _fewest_errors(candidates: list[str], checker: _InsertionChecker) -> str | None:
    """The first of `candidates` (longest first) with the fewest syntax errors once inserted, and none
    that the file did not have; None when each adds an error. Where the hole itself broke the file (a
    missing closing line), a cut that mends it beats a longer one that breaks it again elsewhere (the
    suffix's own closing brace written once more)."""
    best, best_errors = None, checker.base_errors
    for candidate in candidates:
        errors = checker.errors_with(candidate)
        if errors < best_errors or (best is None and errors <= best_errors):
            best, best_errors = candidate, errors
            if errors == 0:
                break
    return best


def truncate_middle(
    prefix: str,
    middle: str,
    suffix: str,
    language: str | None,
    shape: Shape,
    reached_eot: bool,
) -> str | None:
    """The part of a generated `middle` worth showing between `prefix` and `suffix`, or None to drop it.

    - Special-token text, a Markdown fence and English prose after the code end the middle.
    - LINE keeps the first line (the next line's, when the cursor ends a line and the model began a new
      one, unless that is the file's next line again), without closing characters the rest of the
      cursor's line already has; a line that opens a block the file does not fill is cut as a BLOCK,
      its body with it.
    - BLOCK keeps the longest run of whole lines that (a) does not repeat the line after the cursor,
      repeat itself, or leave the block the cursor is in (indentation for Python, brackets elsewhere),
      and (b) adds no syntax error to the file that was not already there.
    - Both get the newline right for what follows the cursor on its line.
    - A middle that never reached end-of-text (`reached_eot` False) and has no whole cut is dropped.

    `language` is a tree-sitter grammar name (see `language_of`); None cuts by lines and brackets only.
    """
    if shape is Shape.NONE:
        return None
    middle, cut = _strip_special_and_fences(middle)
    whole = reached_eot or cut
    cursor = _Cursor.of(prefix, suffix)
    if not cursor.at_line_start:
        # Spaces the model puts at the end of the cursor's line before starting the next are noise.
        middle = _TRAILING_SPACES_THEN_NEWLINE.sub("\n", middle, count=1)
        middle = _drop_end_of_line_comment(middle, language)
    if shape is Shape.LINE and _opens_unfilled_block(middle, cursor, language):
        return _truncate_block(prefix, middle, suffix, cursor, language, whole)
    if shape is Shape.LINE:
        needs_checker = (cursor.text_after and not cursor.at_line_start) or (whole and "\n" in middle.strip())
        checker = _make_checker(language, prefix, suffix) if needs_checker else None
        return _truncate_line(middle, cursor, checker, whole)
    return _truncate_block(prefix, middle, suffix, cursor, language, whole)


#: Lines a middle written mid-line may run to before generation stops (see `middle_is_done`): holes
#: that span lines from the middle of one are short (the rest of a call's arguments).
MID_LINE_SPAN_LINES = 3


def middle_is_done(prefix: str, middle: str, suffix: str, language: str | None, shape: Shape) -> bool:
    """Whether more tokens can no longer change what `truncate_middle` would show, so generation may stop.

    Cheap (no parsing): meant to be called after every generated token.

    - BLOCK: a special token, fence or prose line was written, or a line rule (repeating the suffix,
      repeating itself, leaving the block) cut before the last complete line.
    - LINE: the first line is complete, where the cursor ends its line (unless it opened a block the file
      does not fill: then as BLOCK, for its body). Mid-line the model may still end
      the middle with end-of-text on a later line (a hole that spans lines), so generation goes on
      until MID_LINE_SPAN_LINES more lines show that it is writing on rather than filling a hole.
    """
    if shape is Shape.NONE:
        return True
    cleaned, cut = _strip_special_and_fences(middle)
    if cut:
        return True
    cursor = _Cursor.of(prefix, suffix)
    if shape is Shape.LINE:
        body = cleaned if cursor.at_line_start else cleaned.lstrip(" \t\n")
        first_line_done = "\n" in body and bool(body.split("\n", 1)[0].strip())
        if cursor.text_after and not cursor.at_line_start:
            return first_line_done and body.count("\n") > MID_LINE_SPAN_LINES
        if not (first_line_done and _opens_unfilled_block(cleaned, cursor, language)):
            return first_line_done
        # The line opened a block the file does not fill: its body is written as a block's would be.
    lines = cleaned.splitlines(keepends=True)
    complete = sum(1 for line in lines if line.endswith("\n"))
    limit, _ = _block_limit(lines, prefix, cursor, language, streaming=True)
    return limit < complete


def _indent_unit(lines: list[str]) -> str:
    """One level of indentation as this file writes it: a tab, or the narrowest indentation in use."""
    widths = []
    for line in lines:
        indentation = _leading_whitespace(line)
        if indentation and len(indentation) < len(line):
            if indentation[0] == "\t":
                return "\t"
            widths.append(len(indentation))
    narrowest = min(widths, default=4)
    return " " * (narrowest if narrowest in (2, 3, 4, 8) else 4)


#: Code rows above the cursor searched for a block and its body, to learn the file's indentation step.
STEP_SEARCH_ROWS = 200


def _block_step(lines: list[str], code_rows: list[int], language: str | None) -> str | None:
    """The indentation the nearest block above (within STEP_SEARCH_ROWS code rows) adds to its body's
    first line: how this file indents a body, which its narrowest indentation may not say (a file
    indented by 4 whose function bodies step by 2 more). None when no block above has a body yet."""
    following = None
    for row in reversed(code_rows[-STEP_SEARCH_ROWS:]):
        line = lines[row]
        if following is not None and opens_block(line, language):
            outer, inner = _leading_whitespace(line), _leading_whitespace(following)
            if len(inner) > len(outer) and inner.startswith(outer):
                return inner[len(outer) :]
        following = line
    return None


def indentation_to_type(prefix: str, suffix: str, language: str | None) -> str:
    """The indentation the cursor's line must start with, when the cursor is at column 0 (lines go in
    there) and the code above leaves no choice; "" otherwise (the model chooses).

    - After a line that opens a block: one level deeper than that line, a level being what the nearest
      block above adds to its body (the file's narrowest indentation when there is none).
    - In Python, after a definition whose body so far is only its docstring: the docstring's.

    Small models write very different middles with and without that indentation at the end of the
    prompt (at column 0 they often start a new top-level definition instead of the body), so the
    pipeline puts it in the prompt, as if the user had typed it, and in front of the middle.
    """
    if not prefix.endswith("\n"):
        return ""  # the cursor is not at column 0
    lines = prefix.split("\n")[:-1]
    code_rows = [row for row, line in enumerate(lines) if line.strip()]
    if not code_rows:
        return ""
    previous = lines[code_rows[-1]]
    if opens_block(previous, language):
        step = _block_step(lines, code_rows[:-1], language) or _indent_unit(lines)
        return _leading_whitespace(previous) + step
    if language != "python":
        return ""
    # A docstring as the whole body so far: from the last block opener above to the cursor, where that
    # opener ends a definition's header (which may span lines: its parameters).
    opener = next((row for row in reversed(code_rows) if opens_block(lines[row], language)), None)
    if opener is None:
        return ""
    header = next(
        (row for row in range(opener, max(-1, opener - 20), -1) if _DEFINITIONS["python"].match(lines[row])),
        None,
    )
    if header is None or any(
        _indent_width(lines[row]) <= _indent_width(lines[header])
        for row in range(header + 1, opener + 1)
        if lines[row].strip() and not lines[row].lstrip().startswith(")")
    ):
        return ""
    body = "\n".join(lines[opener + 1 :]).strip()
    if not body or body[0] not in "\"'":
        return ""
    docstring = _token_pattern("python").match(body)
    if docstring is None or docstring.end() != len(body):
        return ""
    first_body_row = next(row for row in code_rows if row > opener)
    return _leading_whitespace(lines[first_body_row])
