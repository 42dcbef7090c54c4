"""Remarks a model appends to the lines it writes, dropped where the file itself writes none.

Instruct-tuned builds (the only Qwen2.5-Coder builds packaged) explain the code they write at the end of
its lines: `let minSum = sum; // Initialize minSum to the sum of the first element`. In ghost text that
is noise the user deletes, and an exact-match scorer counts the line wrong. A file whose own code lines
end in comments (`# type: ignore`, `// fallthrough`) keeps them: there they are the file's style.
Comments on lines of their own are kept everywhere (people write those as prompts, and models write them
before the code they describe), except an answer that is nothing but a placeholder for code (`# Your code
here`, `// TODO: implement`): what instruct builds write where they saw no hole to fill.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from fim_lsp.syntax.languages import COMMENT_TYPES, LANGUAGES, comment_starts, get_language, new_parser, utf8

if TYPE_CHECKING:
    from tree_sitter import Node, Query


# What a comment says when it stands in for code rather than describing it (`# sort by date` is not one).
_PLACEHOLDER = re.compile(
    r"\b(?:"
    r"(?:your|the) code (?:goes )?here|code goes here|implement(?:ation)? (?:goes )?here"
    r"|add (?:your )?(?:code|logic|implementation) here|write (?:your )?code here|fill (?:this|me|it) in"
    r"|(?:todo|fixme)\W*(?:add code|implement(?: (?:this|me|it|the))?"
    r"(?: (?:function|method|class|logic))?)\W*$"
    r")",
    re.IGNORECASE,
)


def is_placeholder(middle: str, language: str | None) -> bool:
    """Whether `middle` is only comment lines that stand in for code (`# Your code here`), which a user
    would delete: no answer is better. A comment that describes code (`# sort by date`) is not one."""
    lines = [line.strip() for line in middle.splitlines() if line.strip()]
    starts = comment_starts(language)
    if not lines or not all(line.startswith(starts) for line in lines):
        return False
    return any(_PLACEHOLDER.search(line) for line in lines)


@cache
def _comment_query(language: str) -> Query:
    from tree_sitter import Query

    grammar = get_language(language)
    kinds = [kind for kind in COMMENT_TYPES if grammar.id_for_node_kind(kind, True)]
    return Query(grammar, " ".join(f"({kind}) @comment" for kind in kinds))


def _comments(language: str, root: Node) -> list[Node]:
    from tree_sitter import QueryCursor

    return QueryCursor(_comment_query(language)).captures(root).get("comment", [])


def _ends_a_code_line(data: bytes, comment: Node) -> bool:
    """Whether `comment` is on one line and follows code on it."""
    if comment.start_point.row != comment.end_point.row:
        return False
    line_start = data.rfind(b"\n", 0, comment.start_byte) + 1
    return bool(data[line_start : comment.start_byte].strip())


def drop_line_end_remarks(prefix: str, middle: str, suffix: str, language: str | None) -> str:
    """`middle` without the comments it ends its code lines with, unless the code in `prefix` and
    `suffix` ends lines with comments too."""
    if language not in LANGUAGES or not any(start in middle for start in comment_starts(language)):
        return middle
    head, body = utf8(prefix), utf8(middle)
    data = head + body + utf8(suffix)
    start, end = len(head), len(head) + len(body)
    remarks = []
    for comment in _comments(language, new_parser(language).parse(data).root_node):
        if not _ends_a_code_line(data, comment):
            continue
        if start <= comment.start_byte and comment.end_byte <= end:
            remarks.append(comment)
        elif comment.end_byte <= start or comment.start_byte >= end:
            return middle  # the file writes such comments itself
    for comment in sorted(remarks, key=lambda node: node.start_byte, reverse=True):
        cut_from = comment.start_byte - start
        while cut_from > 0 and body[cut_from - 1 : cut_from] in (b" ", b"\t"):
            cut_from -= 1
        body = body[:cut_from] + body[comment.end_byte - start :]
    return body.decode("utf-8", "surrogatepass")
