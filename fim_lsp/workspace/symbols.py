"""Symbols of source text: the definitions a file makes, and the names a piece of code uses or imports.

Definitions come from tree-sitter queries, one small set of patterns per language (the grammar's node
types for functions, classes, methods, structs, interfaces, type aliases, enums, macros and top-level
constants). A definition carries its rows and where its header ends: the signature lines, with the
docstring or the doc comment above it, bounded, which is what a prompt wants to show of a long
definition. Languages without patterns, or a grammar that fails to load, fall back to a line pattern.

Names are read with a regular expression, not the tree: the code around the cursor is usually broken
while the user types, and an identifier is an identifier either way. Imports are read the same way
from the head of the file, each with its module as a hint of which file defines the name.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

from fim_lsp.syntax import get_language, new_parser

if TYPE_CHECKING:
    from tree_sitter import Node, Query

    from fim_lsp.syntax.languages import SyntaxParser

logger = logging.getLogger(__name__)

#: Rows of a definition's header (signature) kept at most, after its doc comment.
MAX_HEADER_ROWS = 8
#: Rows of doc comment (or attributes) above a definition kept at most, and of docstring below its header.
MAX_DOC_ROWS = 6


class Definition(NamedTuple):
    """A named definition in a file. Rows are 0-based and inclusive."""

    name: str
    kind: str
    """function, method, class, struct, interface, type, enum, constant, macro or module."""
    start: int
    """First row: the doc comment, decorators or attributes above the definition included."""
    end: int
    header_end: int
    """Last row of the header: the signature up to where the body opens, and a docstring, bounded."""


class ImportedName(NamedTuple):
    """A name a file imports, with the module it comes from (a path-like hint, `/`-separated)."""

    name: str
    module: str


# --------------------------------------------------------------------------------------------------
# Definitions
# --------------------------------------------------------------------------------------------------

# Each pattern captures the definition node as @<kind> and its name as @name. Methods are functions
# found inside a class-like node (see _CLASS_LIKE), so most patterns say "function".
_JS_COMMON = """
(function_declaration name: (identifier) @name) @function
(generator_function_declaration name: (identifier) @name) @function
(method_definition name: (property_identifier) @name) @method
(program (lexical_declaration (variable_declarator name: (identifier) @name)) @constant)
(program (variable_declaration (variable_declarator name: (identifier) @name)) @constant)
(program (export_statement declaration: (lexical_declaration
    (variable_declarator name: (identifier) @name)) @constant))
"""
_TS = (
    _JS_COMMON
    + """
(function_signature name: (identifier) @name) @function
(class_declaration name: (type_identifier) @name) @class
(abstract_class_declaration name: (type_identifier) @name) @class
(interface_declaration name: (type_identifier) @name) @interface
(type_alias_declaration name: (type_identifier) @name) @type
(enum_declaration name: (identifier) @name) @enum
(method_signature name: (property_identifier) @name) @method
(abstract_method_signature name: (property_identifier) @name) @method
"""
)
_C_COMMON = """
(function_definition declarator: (function_declarator declarator: (identifier) @name)) @function
(function_definition declarator: (pointer_declarator
    declarator: (function_declarator declarator: (identifier) @name))) @function
(declaration declarator: (function_declarator declarator: (identifier) @name)) @function
(declaration declarator: (pointer_declarator
    declarator: (function_declarator declarator: (identifier) @name))) @function
(struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @struct
(union_specifier name: (type_identifier) @name body: (field_declaration_list)) @struct
(enum_specifier name: (type_identifier) @name body: (enumerator_list)) @enum
(type_definition declarator: (type_identifier) @name) @type
(preproc_def name: (identifier) @name) @macro
(preproc_function_def name: (identifier) @name) @macro
"""
_QUERIES: dict[str, str] = {
    "python": """
(function_definition name: (identifier) @name) @function
(class_definition name: (identifier) @name) @class
(module (assignment left: (identifier) @name) @constant)
""",
    "javascript": _JS_COMMON + "(class_declaration name: (identifier) @name) @class\n",
    "typescript": _TS,
    "tsx": _TS,
    "go": """
(function_declaration name: (identifier) @name) @function
(method_declaration name: (field_identifier) @name) @method
(type_spec name: (type_identifier) @name) @type
(source_file (const_declaration (const_spec name: (identifier) @name) @constant))
(source_file (var_declaration (var_spec name: (identifier) @name) @constant))
""",
    "rust": """
(function_item name: (identifier) @name) @function
(function_signature_item name: (identifier) @name) @function
(struct_item name: (type_identifier) @name) @struct
(union_item name: (type_identifier) @name) @struct
(enum_item name: (type_identifier) @name) @enum
(trait_item name: (type_identifier) @name) @interface
(type_item name: (type_identifier) @name) @type
(const_item name: (identifier) @name) @constant
(static_item name: (identifier) @name) @constant
(macro_definition name: (identifier) @name) @macro
""",
    "java": """
(class_declaration name: (identifier) @name) @class
(interface_declaration name: (identifier) @name) @interface
(enum_declaration name: (identifier) @name) @enum
(record_declaration name: (identifier) @name) @class
(annotation_type_declaration name: (identifier) @name) @interface
(method_declaration name: (identifier) @name) @method
(constructor_declaration name: (identifier) @name) @method
""",
    "c": _C_COMMON,
    "cpp": _C_COMMON
    + """
(function_definition declarator: (function_declarator
    declarator: (qualified_identifier name: (identifier) @name))) @function
(function_definition declarator: (function_declarator declarator: (field_identifier) @name)) @method
(field_declaration declarator: (function_declarator declarator: (field_identifier) @name)) @method
(class_specifier name: (type_identifier) @name body: (field_declaration_list)) @class
(alias_declaration name: (type_identifier) @name) @type
""",
    "csharp": """
(class_declaration name: (identifier) @name) @class
(interface_declaration name: (identifier) @name) @interface
(struct_declaration name: (identifier) @name) @struct
(enum_declaration name: (identifier) @name) @enum
(record_declaration name: (identifier) @name) @class
(method_declaration name: (identifier) @name) @method
(constructor_declaration name: (identifier) @name) @method
""",
    "ruby": """
(method name: (identifier) @name) @function
(singleton_method name: (identifier) @name) @function
(class name: (constant) @name) @class
(module name: (constant) @name) @module
""",
    "lua": """
(function_declaration name: (_) @name) @function
""",
    "php": """
(function_definition name: (name) @name) @function
(class_declaration name: (name) @name) @class
(interface_declaration name: (name) @name) @interface
(trait_declaration name: (name) @name) @interface
(method_declaration name: (name) @name) @method
""",
    "bash": """
(function_definition name: (word) @name) @function
""",
}

# Nodes whose functions are methods.
_CLASS_LIKE = frozenset(
    {
        "class_definition",
        "class_declaration",
        "class_body",
        "abstract_class_declaration",
        "interface_declaration",
        "interface_body",
        "class_specifier",
        "struct_specifier",
        "impl_item",
        "trait_item",
        "class",
        "module",  # Ruby's; Python's root is a `module` too, which _inside_class never reaches
    }
)
# Nodes that wrap a definition and start before it (decorators, templates, `export`).
_WRAPPERS = frozenset({"decorated_definition", "template_declaration", "export_statement"})
# What may stand just above a definition and belongs to it.
_DOC_TYPES = frozenset({"comment", "line_comment", "block_comment", "attribute_item", "decorator"})
# A definition's body when it is a function value: `const handler = (event) => { ... }`.
_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function", "generator_function"})

# Fallback: one line that opens a definition, in most languages' spelling.
_DEFINITION_LINE = re.compile(
    r"^[ \t]*(?:(?:export|pub(?:\([\w:]+\))?|public|private|protected|static|async|abstract|final|default"
    r"|inline|virtual|override|unsafe|extern|const)\s+)*"
    r"(?P<kind>def|class|function|func|fn|struct|interface|trait|enum|type|module|sub|macro_rules!)"
    r"\s+(?:\([^)]*\)\s*)?(?P<name>[A-Za-z_]\w*)",
    re.MULTILINE,
)
_FALLBACK_KINDS = {
    "def": "function",
    "function": "function",
    "func": "function",
    "fn": "function",
    "sub": "function",
    "class": "class",
    "struct": "struct",
    "interface": "interface",
    "trait": "interface",
    "enum": "enum",
    "type": "type",
    "module": "module",
    "macro_rules!": "macro",
}

_local = threading.local()


@cache
def _query(language: str) -> Query | None:
    """The compiled definition patterns of `language`, or None (no patterns, or they do not compile)."""
    source = _QUERIES.get(language)
    if source is None:
        return None
    from tree_sitter import Query

    try:
        return Query(get_language(language), source)
    except Exception as error:  # a grammar whose node types moved on: fall back to line patterns
        logger.warning("workspace: no definition patterns for %s: %s", language, error)
        return None


def _parser(language: str) -> SyntaxParser:
    """This thread's parser for `language`: parsers are not thread-safe, and creating one costs."""
    parsers: dict[str, SyntaxParser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    parser = parsers.get(language)
    if parser is None:
        parser = parsers[language] = new_parser(language)
    return parser


def definitions(text: str, language: str | None) -> list[Definition]:
    """The definitions in `text` (a whole file) of grammar `language`, in document order."""
    if language is None:
        return _fallback_definitions(text)
    query = _query(language)
    if query is None:
        return _fallback_definitions(text)
    from tree_sitter import QueryCursor

    data = text.encode("utf-8")
    try:
        tree = _parser(language).parse(data)
        matches = QueryCursor(query).matches(tree.root_node)
    except Exception as error:  # tree-sitter is C code fed with anything: never let it stop the indexer
        logger.warning("workspace: tree-sitter failed on a %s file: %s", language, error)
        return _fallback_definitions(text)
    found: dict[tuple[int, str], Definition] = {}
    for _pattern, captures in matches:
        names = captures.get("name")
        kind = next((capture for capture in captures if capture != "name"), None)
        if not names or kind is None:
            continue
        node = captures[kind][0]
        name = _name_text(data, names[0])
        if name:
            definition = _definition(data, node, name, kind)
            found.setdefault((definition.start, name), definition)
    if tree.root_node.has_error:
        # A syntax error (an unclosed bracket in a buffer being edited) can swallow the rest of the
        # file into one error node: the line patterns find the definitions the tree lost there.
        known = {(d.name, row) for d in found.values() for row in range(d.start, d.header_end + 1)}
        for definition in _fallback_definitions(text):
            if (definition.name, definition.start) not in known:
                found.setdefault((definition.start, definition.name), definition)
    return sorted(found.values(), key=lambda d: (d.start, d.end, d.name))


def _name_text(data: bytes, node: Node) -> str:
    # `M.helper` and `obj:method` (Lua) are defined under their last part, as they are called.
    text = data[node.start_byte : node.end_byte].decode("utf-8", errors="replace")
    return re.split(r"[.:]", text)[-1].strip()


def _definition(data: bytes, node: Node, name: str, kind: str) -> Definition:
    outer = node
    while outer.parent is not None and outer.parent.type in _WRAPPERS:
        outer = outer.parent
    # `type Foo struct` in Go: the spec starts after `type`, on its declaration's row.
    while (
        outer.parent is not None
        and outer.parent.parent is not None
        and outer.parent.start_point.row == outer.start_point.row
        and outer.parent.type.endswith("declaration")
        and outer.parent.named_child_count == 1
    ):
        outer = outer.parent
    start, end = outer.start_point.row, node.end_point.row
    if node.end_point.column == 0 and end > start:
        end -= 1  # a node that ends with its line break ends on the row before
    # Doc comments and attributes directly above, bounded.
    above = outer.prev_named_sibling
    top = start
    while above is not None and above.type in _DOC_TYPES and above.end_point.row >= top - 1:
        if start - above.start_point.row > MAX_DOC_ROWS:
            break
        top = above.start_point.row
        above = above.prev_named_sibling
    if kind == "function" and _inside_class(node):
        kind = "method"
    body = node.child_by_field_name("body")
    if node.type == "type_spec":
        body = node.child_by_field_name("type")
        kind = {"struct_type": "struct", "interface_type": "interface"}.get(body.type if body else "", "type")
    elif kind == "constant":
        declarator = node.named_children[0] if node.named_children else None
        value = declarator.child_by_field_name("value") if declarator is not None else None
        if value is not None and value.type in _FUNCTION_VALUES:
            kind, body = "function", value.child_by_field_name("body")
        else:
            body = None
    return Definition(name, kind, top, end, _header_end(data, node, body, end))


def _header_end(data: bytes, node: Node, body: Node | None, end: int) -> int:
    """The last row of a definition's header: up to where its body opens, then a docstring; bounded."""
    row = node.start_point.row
    docstring_end = None
    if body is None:
        header = end  # a constant, a prototype, an alias: all of it is header
    elif body.start_point.row > row and data[body.start_byte : body.start_byte + 1] != b"{":
        # The body starts on a row of its own (Python, Ruby): the header ends on the row before.
        header = body.start_point.row - 1
        first = body.named_children[0] if body.named_children else None
        if first is not None and first.type == "expression_statement" and first.named_children:
            first = first.named_children[0]  # older grammars wrap the docstring in a statement
        if first is not None and first.type == "string":
            docstring_end = first.end_point.row
    else:
        header = body.start_point.row  # the row with the opening brace
    header = min(header, row + MAX_HEADER_ROWS - 1)
    if docstring_end is not None:
        header = min(docstring_end, header + MAX_DOC_ROWS)
    return max(row, min(header, end))


def _inside_class(node: Node) -> bool:
    parent = node.parent
    for _ in range(4):
        if parent is None or parent.parent is None:  # the root is no class
            return False
        if parent.type in _CLASS_LIKE:
            return True
        parent = parent.parent
    return False


def _fallback_definitions(text: str) -> list[Definition]:
    """Definitions by line pattern: a header row each, ending where the next one starts."""
    found = []
    for match in _DEFINITION_LINE.finditer(text):
        row = text.count("\n", 0, match.start())
        found.append((row, match.group("name"), _FALLBACK_KINDS[match.group("kind")]))
    last_row = text.count("\n")
    result = []
    for index, (row, name, kind) in enumerate(found):
        end = found[index + 1][0] - 1 if index + 1 < len(found) else last_row
        end = max(row, min(end, row + 40))
        result.append(Definition(name, kind, row, end, row))
    return result


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------

IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")

_KEYWORD_WORDS = """
    abstract and as assert async auto await base begin bool boolean break byte case catch char class
    const constexpr continue crate def default defer del delete do double dyn elif else elsif end ensure
    enum except explicit export extends extern false final finally float fn for foreach friend from func
    function go goto if impl implements import in include inline instanceof int interface internal is
    lambda let local long loop match mod module mut namespace native new nil none None not null nullptr
    object of operator or override package pass private protected pub public raise readonly redo ref
    register rescue retry return sealed select self Self short signed sizeof static str string struct
    super switch synchronized template then this throw throws trait true True False try type typedef
    typeof typename undef union unless unsigned until use using var virtual void volatile when where
    while with yield println printf print len args kwargs cls int32 int64 uint8 uint32 uint64 usize
    isize u8 u16 u32 u64 i32 i64 f32 f64 err nil error ok Ok Err Some Vec any unknown never undefined
    number std fmt require
"""
#: Words that are syntax (or so common they say nothing) in the languages fim-lsp knows.
KEYWORDS: frozenset[str] = frozenset(_KEYWORD_WORDS.split())


def identifiers(text: str) -> list[str]:
    """Every identifier in `text`, in order, keywords included."""
    return IDENTIFIER.findall(text)


def used_names(text: str) -> list[str]:
    """The names `text` uses, nearest its end first, each once; keywords and one-letter names left out."""
    seen: dict[str, None] = {}
    for name in reversed(IDENTIFIER.findall(text)):
        if len(name) > 1 and name not in KEYWORDS:
            seen.setdefault(name, None)
    return list(seen)


# Import statements per language family; each pattern's groups are read by _imports_of.
_PY_FROM = re.compile(r"^[ \t]*from[ \t]+([.\w]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)", re.MULTILINE)
_PY_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#;]+)", re.MULTILINE)
_JS_IMPORT = re.compile(
    r"""^[ \t]*import[ \t]+(?:type[ \t]+)?([^'";]+?)[ \t]+from[ \t]+['"]([^'"]+)['"]""", re.MULTILINE
)
_JS_REQUIRE = re.compile(
    r"""(?:const|let|var)[ \t]+(\{[^}]*\}|[\w$]+)[ \t]*=[ \t]*require\(['"]([^'"]+)['"]\)"""
)
_GO_IMPORT = re.compile(r"""^[ \t]*(?:import[ \t]+)?(?:[\w.]+[ \t]+)?"([^"\n]+)"[ \t]*$""", re.MULTILINE)
_RUST_USE = re.compile(r"^[ \t]*(?:pub[ \t]+)?use[ \t]+([^;]+);", re.MULTILINE)
_JAVA_IMPORT = re.compile(r"^[ \t]*import[ \t]+(?:static[ \t]+)?([\w.]+)(?:\.\*)?[ \t]*;", re.MULTILINE)
_C_INCLUDE = re.compile(r"""^[ \t]*#[ \t]*include[ \t]*["<]([^">]+)[">]""", re.MULTILINE)
_OTHER_IMPORT = re.compile(
    r"""^[ \t]*(?:using[ \t]+(?:static[ \t]+)?([\w.]+)[ \t]*;|require(?:_relative)?[ \t(]+['"]([^'"]+)['"]"""
    r"""|use[ \t]+([\w\\]+)[ \t]*;|(?:local[ \t]+\w+[ \t]*=[ \t]*)?require[ \t(]*['"]([^'"]+)['"])""",
    re.MULTILINE,
)


def _module_path(module: str, separator: str) -> str:
    """A module name as the tail of a file path: `pkg.sub` -> `pkg/sub`, `./lib/x.js` -> `lib/x`."""
    path = module.replace(separator, "/") if separator != "/" else module
    path = re.sub(r"^(?:\.{1,2}/)+|^/+", "", path).strip("/")
    path = re.sub(r"^(?:crate|self|super)(?:/|$)", "", path)
    return re.sub(r"\.(?:[cm]?[jt]sx?|py|h|hpp|hh|rb|lua)$", "", path)


def _names_in(group: str) -> list[str]:
    """`a, b as c, (d)` -> [a, b, d]: the names as defined, not as renamed."""
    names = []
    for part in group.strip("(){} \n").split(","):
        words = part.split()
        if words and IDENTIFIER.fullmatch(words[0]) and words[0] not in KEYWORDS:
            names.append(words[0])
    return names


def imported_names(text: str, language: str | None) -> list[ImportedName]:
    """The names `text` imports (as defined where they come from) and their modules, in order.

    A module imported whole (`import os`, Go packages, `#include`) is listed with an empty name: its
    module is still a hint of where the names used with it are defined.
    """
    found: list[ImportedName] = []
    if language == "python":
        for match in _PY_FROM.finditer(text):
            module = _module_path(match.group(1).lstrip("."), ".")
            found += [ImportedName(name, module) for name in _names_in(match.group(2))]
        for match in _PY_IMPORT.finditer(text):
            for part in match.group(1).split(","):
                words = part.split()
                if words:
                    found.append(ImportedName("", _module_path(words[0], ".")))
    elif language in ("javascript", "typescript", "tsx"):
        for match in _JS_IMPORT.finditer(text):
            module = _module_path(match.group(2), "/")
            clause = match.group(1)
            braces = re.search(r"\{([^}]*)\}", clause)
            names = _names_in(braces.group(1)) if braces else []
            default = re.match(r"\s*([\w$]+)\s*(?:,|$)", clause)
            if default and default.group(1) not in KEYWORDS:
                names.insert(0, default.group(1))
            found += [ImportedName(name, module) for name in names] or [ImportedName("", module)]
        for match in _JS_REQUIRE.finditer(text):
            module = _module_path(match.group(2), "/")
            found += [ImportedName(name, module) for name in _names_in(match.group(1))]
    elif language == "go":
        head = text[: text.find("\nfunc ") + 1 or len(text)]
        found += [ImportedName("", match.group(1)) for match in _GO_IMPORT.finditer(head)]
    elif language == "rust":
        for match in _RUST_USE.finditer(text):
            path = re.sub(r"\s+as\s+\w+", "", match.group(1))  # `X as Y` is defined as X
            path = re.sub(r"\s+", "", path)
            base, _, group = path.partition("{")
            base = base.rstrip(":")
            if group:
                # Only the group's plain names: `a::{b, c::D}` imports b from a (D's path is skipped).
                names = [name for name in group.rstrip("}").split(",") if IDENTIFIER.fullmatch(name)]
                found += [ImportedName(name, _module_path(base, "::")) for name in names]
            else:
                module, _, name = base.rpartition("::")
                found.append(ImportedName(name, _module_path(module, "::")))
    elif language == "java":
        for match in _JAVA_IMPORT.finditer(text):
            module, _, name = match.group(1).rpartition(".")
            # The class lives in its own file: `a.b.Thing` is defined in a/b/Thing.java.
            found.append(ImportedName(name, _module_path(match.group(1), ".")))
    elif language in ("c", "cpp"):
        found += [ImportedName("", _module_path(m.group(1), "/")) for m in _C_INCLUDE.finditer(text)]
    else:
        for match in _OTHER_IMPORT.finditer(text):
            module = next(group for group in match.groups() if group)
            separator = "\\" if "\\" in module else "." if "/" not in module else "/"
            name = module.rsplit(separator, 1)[-1] if separator == "\\" else ""
            found.append(ImportedName(name, _module_path(module, separator)))
    return found
