"""The settings table of the README, generated from `fim_lsp.config` so that it cannot drift: one row per
setting (camelCase, as clients send it), its default and the first sentence of its docstring.

`python -m fim_lsp.settings_doc` prints the table; `tests/unit/test_settings_doc.py` checks that the
README holds exactly that table between its `<!-- settings -->` markers.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from typing import Any

import attrs

from fim_lsp import config
from fim_lsp.config import EngineSettings, Settings, camel_case, settings_to_wire

BEGIN, END = "<!-- settings -->", "<!-- /settings -->"
#: How a default reads where its JSON value would say less.
_SHOWN_DEFAULTS = {
    "threads": "one per core",
    "contextBudget": "by speed, at most 1536",
    "exclude": "keys, `.env` files, credentials (see below)",
}


def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string right after its annotated assignment in the class body)."""
    module = ast.parse(inspect.getsource(config))
    body = next(node for node in module.body if isinstance(node, ast.ClassDef) and node.name == cls.__name__)
    docs = {}
    for statement, following in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not one inside `e.g.` or a number)."""
    match = re.search(r"(?<!e\.g)(?<!i\.e)\.(?=\s|$)", text)
    return text[: match.end()] if match else text


def _default(name: str, value: Any) -> str:
    if name in _SHOWN_DEFAULTS:
        return _SHOWN_DEFAULTS[name]
    return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"


def rows() -> list[tuple[str, str, str]]:
    """(setting, default, meaning) for every setting, the engine's as `engine.<key>`."""
    wire = settings_to_wire(Settings())
    found = []
    for cls, prefix, defaults in ((Settings, "", wire), (EngineSettings, "engine.", wire["engine"])):
        docs = field_docs(cls)
        for field in attrs.fields(cls):
            if field.name == "engine":
                continue  # its fields have rows of their own
            key = camel_case(field.name)
            found.append((prefix + key, _default(key, defaults[key]), first_sentence(docs[field.name])))
    return found


def settings_table() -> str:
    """The Markdown table of every setting."""
    lines = ["| setting | default | meaning |", "|---|---|---|"]
    lines += [f"| `{key}` | {default} | {meaning.replace('|', '/')} |" for key, default, meaning in rows()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(settings_table())
