"""tree-sitter and a light lexer for fim-lsp: which language a document is, its syntax tree, and what the
cursor wants. All pure functions of text (no pygls, no model).

- `languages`: LSP language ids and file names to grammars, the grammars, comment and definition forms.
- `tree`: `DocumentSyntax`, a document's tree kept current by incremental re-parsing, and what it says
  about a point (inside a comment or a string).
- `lines`: what a line says without a tree: brackets outside strings and comments, indentation, whether
  it opens a block; the cursor's line read within a window.
- `cursor`: `classify`, the shape of the answer at the cursor (nothing, one line, a block), and
  `block_goes_on`, whether code follows it in its block.
- `indentation`: `indentation_to_type`, the indentation the code above fixes for the cursor's line.

Where a generated middle is cut is `fim_lsp.postprocess`'s job; it uses these.
"""

from fim_lsp.syntax.cursor import block_goes_on, classify, inside_word
from fim_lsp.syntax.indentation import indentation_to_type
from fim_lsp.syntax.languages import (
    LANGUAGES,
    byte_offset,
    comment_starts,
    count_errors,
    get_language,
    language_of,
    new_parser,
    utf8,
)
from fim_lsp.syntax.lines import LINE_WINDOW_CHARS, opens_block
from fim_lsp.syntax.tree import (
    MAX_TREE_CHARS,
    DocumentSyntax,
    follow_document,
    inside_comment_or_string,
    literal_start_row,
)

__all__ = [
    "LANGUAGES",
    "LINE_WINDOW_CHARS",
    "MAX_TREE_CHARS",
    "DocumentSyntax",
    "block_goes_on",
    "byte_offset",
    "classify",
    "comment_starts",
    "count_errors",
    "follow_document",
    "get_language",
    "indentation_to_type",
    "inside_comment_or_string",
    "inside_word",
    "language_of",
    "literal_start_row",
    "new_parser",
    "opens_block",
    "utf8",
]
