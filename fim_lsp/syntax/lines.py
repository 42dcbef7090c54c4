"""What a line of code says, read without a tree: the cursor's line within a window, a small lexer
(brackets outside strings and comments), indentation, and whether a line opens a block.

Cheap enough to run after every generated token; a tree is not always at hand (a document too long to
keep one, a middle still being written)."""

from __future__ import annotations

import re
from functools import cache

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


def line_before(text: str, offset: int) -> str:
    """The cursor's line before `offset`: at most its last LINE_WINDOW_CHARS characters."""
    low = max(0, offset - LINE_WINDOW_CHARS)
    return text[max(low, text.rfind("\n", low, offset) + 1) : offset]


def line_after(text: str, offset: int) -> str:
    """The cursor's line from `offset` on: at most its first LINE_WINDOW_CHARS characters."""
    high = min(len(text), offset + LINE_WINDOW_CHARS)
    end = text.find("\n", offset, high)
    return text[offset : high if end == -1 else end]


_STRING_DQ = r'"(?:\\.|[^"\\\n])*"?'


_STRING_SQ = r"'(?:\\.|[^'\\\n])*'?"


_CHAR_LITERAL = r"'(?:\\.|[^'\\\n])'"


_BACKTICK = r"`(?:\\.|[^`\\])*`?"


_TRIPLE = r'"""[\s\S]*?(?:"""|$)|' + r"'''[\s\S]*?(?:'''|$)"


_BLOCK_COMMENT = r"/\*[\s\S]*?(?:\*/|$)"


@cache
def token_pattern(language: str | None) -> re.Pattern[str]:
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


OPENERS = "([{"


def bracket_events(text: str, language: str | None) -> list[tuple[int, int]]:
    """(position, +1 or -1) for every bracket in `text` outside strings and comments."""
    events = []
    for match in token_pattern(language).finditer(text):
        bracket = match.group("bracket")
        if bracket:
            events.append((match.start(), 1 if bracket in OPENERS else -1))
    return events


def code_part(line: str, language: str | None) -> str:
    """`line` without its trailing comment (strings are kept)."""
    for match in token_pattern(language).finditer(line):
        # Every token that is neither a bracket nor a string (which start with a quote) is a comment.
        if match.group("bracket") is None and match.group(0)[0] in "#/-":
            return line[: match.start()]
    return line


def unclosed_openers(line: str, language: str | None) -> int:
    """Openers in `line` that the line itself does not close (0 when balanced or over-closed)."""
    depth = 0
    for _position, step in bracket_events(line, language):
        depth = max(0, depth + step)
    return depth


_INDENTATION = re.compile(r"[ \t]*")


def leading_whitespace(line: str) -> str:
    """The spaces and tabs `line` starts with (read no further: the line may be a long one)."""
    match = _INDENTATION.match(line)
    return match.group() if match else ""


def indent_chars(line: str) -> int:
    """Characters of indentation at the start of `line` (a tab counts one)."""
    return len(leading_whitespace(line))


def indent_width(line: str) -> int:
    return len(leading_whitespace(line).expandtabs(8))


_PYTHON_BLOCK_START = re.compile(r":\s*$")


_RUBY_BLOCK_START = re.compile(r"(?:\bdo(?:\s*\|[^|]*\|)?|\{\s*\|[^|]*\||\bthen)\s*$")


# Read from the line's start: only on a line that fits LINE_WINDOW_CHARS (not on a window's cut start).
_RUBY_BLOCK_HEADER = re.compile(
    r"\s*(?:def|class|module|if|unless|while|until|for|case|begin|else|elsif|when|rescue|ensure)\b"
)


_LUA_BLOCK_START = re.compile(r"(?:\bthen|\bdo|\belse|\brepeat|\bfunction\b[^()]*\([^)]*\))\s*$")


_BASH_BLOCK_START = re.compile(r"(?:\bthen|\bdo|\belse|\{|\(\))\s*$")


_SWITCH_LABEL = re.compile(r"^\s*(?:case\b.*|default\s*):$")


def opens_block(line: str, language: str | None) -> bool:
    """Whether `line` (code before the cursor) ends where a block of statements starts.

    Only the line's last LINE_WINDOW_CHARS characters are read.
    """
    whole = len(line) <= LINE_WINDOW_CHARS
    code = code_part(line[-LINE_WINDOW_CHARS:], language).rstrip()
    if not code:
        return False
    if language == "python":
        return bool(_PYTHON_BLOCK_START.search(code)) and unclosed_openers(code, language) == 0
    if language == "ruby":
        return bool(_RUBY_BLOCK_START.search(code) or (whole and _RUBY_BLOCK_HEADER.match(code)))
    if language == "lua":
        return bool(_LUA_BLOCK_START.search(code))
    if language == "bash":
        return bool(_BASH_BLOCK_START.search(code))
    if language is None and code.endswith(":") and unclosed_openers(code, language) == 0:
        return True  # unknown language: a colon that ends a line opens a block in most that use one
    return code.endswith("{") or (whole and bool(_SWITCH_LABEL.match(code)))
