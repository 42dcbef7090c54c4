"""Definitions found with tree-sitter in several languages; names used and imported near a cursor."""

from __future__ import annotations

import pytest

from fim_lsp.workspace.symbols import (
    _QUERIES,
    Definition,
    ImportedName,
    _query,
    definitions,
    imported_names,
    used_names,
)

PYTHON = '''import os
from .store import Store

RETRY_LIMIT = 3


@dataclass
class Invoice:
    """An invoice.

    Totals are in cents.
    """

    number: str

    def total(self, tax: float) -> int:
        """The total with `tax` applied."""
        return round(sum(self.lines) * (1 + tax))


def load_invoice(store: Store,
                 number: str) -> Invoice:
    row = store.get(number)
    return Invoice(row)
'''

TYPESCRIPT = """import { readFile } from "fs";

/** Something with an area. */
export interface Shape {
  area(): number;
}

export type Point = { x: number; y: number };

export const scale = (p: Point, k: number): Point => {
  return { x: p.x * k, y: p.y * k };
};

export class Circle implements Shape {
  area(): number {
    return Math.PI;
  }
}

export enum Color { Red, Green }
"""

GO = """package stack

// Stack is a last-in first-out list.
type Stack struct {
\titems []int
}

type Pusher interface {
\tPush(v int)
}

const (
\tMaxDepth = 100
)

// Push adds v on top.
func (s *Stack) Push(v int) {
\ts.items = append(s.items, v)
}

func New() *Stack {
\treturn &Stack{}
}
"""

RUST = """use std::collections::HashMap;

/// A ledger of accounts.
#[derive(Debug)]
pub struct Ledger {
    entries: HashMap<String, i64>,
}

pub trait Account {
    fn balance(&self) -> i64;
}

impl Ledger {
    pub fn new() -> Self {
        Ledger { entries: HashMap::new() }
    }
}

pub const LIMIT: i64 = 5;
pub enum Kind { Debit, Credit }
"""

JAVA = """package com.shop;

import java.util.List;

/** Orders of a customer. */
public class OrderService {
    private final List<String> orders;

    public OrderService(List<String> orders) {
        this.orders = orders;
    }

    public int count() {
        return orders.size();
    }
}

interface Repository { void save(String id); }
"""

C = """#include "point.h"
#define MAX_POINTS 64

typedef struct point {
    int x;
    int y;
} point_t;

static int add(int a, int b) {
    return a + b;
}

char *copy_name(const char *name);
"""

CPP = """#include <vector>
namespace geo {
class Polygon {
 public:
  double area() const;
};

double Polygon::area() const {
  return 0.0;
}

template <typename T>
T clamp(T v, T lo, T hi) {
  return v < lo ? lo : v;
}
}
"""

JAVASCRIPT = """const path = require("path");

function joinAll(parts) {
  return parts.join(path.sep);
}

class Router {
  route(url) {
    return url;
  }
}

export const VERSION = "1.0";
"""


def simple(found: list[Definition]) -> list[tuple[str, str]]:
    return [(d.name, d.kind) for d in found]


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        pytest.param(
            "python",
            PYTHON,
            [
                ("RETRY_LIMIT", "constant"),
                ("Invoice", "class"),
                ("total", "method"),
                ("load_invoice", "function"),
            ],
            id="python",
        ),
        pytest.param(
            "typescript",
            TYPESCRIPT,
            [
                ("Shape", "interface"),
                ("area", "method"),
                ("Point", "type"),
                ("scale", "function"),
                ("Circle", "class"),
                ("area", "method"),
                ("Color", "enum"),
            ],
            id="typescript",
        ),
        pytest.param(
            "javascript",
            JAVASCRIPT,
            [
                ("path", "constant"),
                ("joinAll", "function"),
                ("Router", "class"),
                ("route", "method"),
                ("VERSION", "constant"),
            ],
            id="javascript",
        ),
        pytest.param(
            "go",
            GO,
            [
                ("Stack", "struct"),
                ("Pusher", "interface"),
                ("MaxDepth", "constant"),
                ("Push", "method"),
                ("New", "function"),
            ],
            id="go",
        ),
        pytest.param(
            "rust",
            RUST,
            [
                ("Ledger", "struct"),
                ("Account", "interface"),
                ("balance", "method"),
                ("new", "method"),
                ("LIMIT", "constant"),
                ("Kind", "enum"),
            ],
            id="rust",
        ),
        pytest.param(
            "java",
            JAVA,
            [
                ("OrderService", "class"),
                ("OrderService", "method"),
                ("count", "method"),
                ("Repository", "interface"),
            ],
            id="java",
        ),
        pytest.param(
            "c",
            C,
            [
                ("MAX_POINTS", "macro"),
                ("point", "struct"),
                ("point_t", "type"),
                ("add", "function"),
                ("copy_name", "function"),
            ],
            id="c",
        ),
        pytest.param(
            "cpp",
            CPP,
            [("Polygon", "class"), ("area", "method"), ("area", "function"), ("clamp", "function")],
            id="cpp",
        ),
    ],
)
def test_definitions_in_several_languages(language, text, expected):
    found = definitions(text, language)
    for name_kind in expected:
        assert name_kind in simple(found), name_kind
    # Rows are in the text: every definition's header row names it.
    lines = text.split("\n")
    for d in found:
        assert d.start <= d.header_end <= d.end < len(lines)
        assert any(d.name in line for line in lines[d.start : d.header_end + 1]), d


@pytest.mark.parametrize(
    ("language", "text", "name", "header"),
    [
        pytest.param(
            "python",
            PYTHON,
            "Invoice",
            '@dataclass\nclass Invoice:\n    """An invoice.\n\n    Totals are in cents.\n    """',
            id="python-class-decorator-and-docstring",
        ),
        pytest.param(
            "python",
            PYTHON,
            "load_invoice",
            "def load_invoice(store: Store,\n                 number: str) -> Invoice:",
            id="python-signature-over-two-rows",
        ),
        pytest.param(
            "go", GO, "Push", "// Push adds v on top.\nfunc (s *Stack) Push(v int) {", id="go-doc-comment"
        ),
        pytest.param(
            "rust",
            RUST,
            "Ledger",
            "/// A ledger of accounts.\n#[derive(Debug)]\npub struct Ledger {",
            id="rust-doc-and-attribute",
        ),
        pytest.param(
            "typescript",
            TYPESCRIPT,
            "scale",
            "export const scale = (p: Point, k: number): Point => {",
            id="typescript-arrow-function",
        ),
    ],
)
def test_header_is_signature_and_docs(language, text, name, header):
    found = next(d for d in definitions(text, language) if d.name == name)
    assert "\n".join(text.split("\n")[found.start : found.header_end + 1]) == header


def test_every_language_query_compiles():
    for language in _QUERIES:
        assert _query(language) is not None, language


@pytest.mark.parametrize(
    ("language", "text"),
    [
        pytest.param(None, "def fetch_rows(cursor):\n    pass\n\nclass Pool:\n    pass\n", id="no-grammar"),
        pytest.param("kotlin", "fun fetch_rows() {}\nclass Pool {}\n", id="unknown-grammar"),
    ],
)
def test_line_pattern_fallback(language, text):
    names = [d.name for d in definitions(text, language)]
    assert "Pool" in names


def test_broken_code_still_yields_definitions():
    text = PYTHON.replace("return round(", "return round(sum(self.lines")  # an unclosed call
    names = [d.name for d in definitions(text, "python")]
    assert "Invoice" in names and "load_invoice" in names


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        pytest.param(
            "python",
            "from app.pricing import (\n    apply_discount,\n    with_tax as taxed,\n)\nimport os.path\n",
            [
                ImportedName("apply_discount", "app/pricing"),
                ImportedName("with_tax", "app/pricing"),
                ImportedName("", "os/path"),
            ],
            id="python",
        ),
        pytest.param(
            "typescript",
            'import Router, { route, type Params as P } from "./router";\nimport * as fs from "fs";\n',
            [
                ImportedName("Router", "router"),
                ImportedName("route", "router"),
                ImportedName("type", "router"),
                ImportedName("", "fs"),
            ],
            id="typescript",
        ),
        pytest.param(
            "javascript",
            'const { joinAll, splitAll } = require("../lib/paths.js");\n',
            [ImportedName("joinAll", "lib/paths"), ImportedName("splitAll", "lib/paths")],
            id="javascript-require",
        ),
        pytest.param(
            "rust",
            "use crate::ledger::{Ledger, Account};\nuse std::io::Read as R;\n",
            [
                ImportedName("Ledger", "ledger"),
                ImportedName("Account", "ledger"),
                ImportedName("Read", "std/io"),
            ],
            id="rust",
        ),
        pytest.param(
            "java",
            "import com.shop.OrderService;\n",
            [ImportedName("OrderService", "com/shop/OrderService")],
            id="java",
        ),
        pytest.param("c", '#include "geo/point.h"\n', [ImportedName("", "geo/point")], id="c"),
        pytest.param(
            "go", 'import (\n\t"fmt"\n\tst "example.com/app/stack"\n)\n', None, id="go-packages-as-hints"
        ),
    ],
)
def test_imported_names(language, text, expected):
    found = imported_names(text, language)
    if expected is None:
        assert ImportedName("", "example.com/app/stack") in found
    else:
        for item in expected:
            if item.name == "type":
                assert item not in found  # `type` is a keyword, not a name
            else:
                assert item in found, item


def test_used_names_nearest_first_without_keywords():
    window = "order = load_invoice(store, number)\nfor line in order.lines:\n    total += line.price\n"
    assert used_names(window)[:4] == ["price", "line", "total", "lines"]
    assert "for" not in used_names(window) and "in" not in used_names(window)
