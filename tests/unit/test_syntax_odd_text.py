"""tree-sitter works in UTF-8 and fim-lsp in Python strings: no text a client can send makes the syntax
layer raise. Lone surrogates included (JSON can carry `"\\ud800"`; UTF-8 cannot encode it), with NUL,
CR, CRLF, Unicode line separators and astral characters, in every grammar."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fim_lsp.completion import Shape
from fim_lsp.postprocess import middle_is_done, truncate_middle
from fim_lsp.syntax import (
    LANGUAGES,
    DocumentSyntax,
    classify,
    indentation_to_type,
)

odd_text = st.lists(
    st.one_of(
        st.characters(blacklist_categories=()),  # any code point, surrogates too
        st.sampled_from(
            ["\ud800", "\udfff", "\x00", "\r", "\r\n", "\n", "\u2028", "😀", "{", "}", "(", '"', "#"]
        ),
        st.sampled_from(["def f(x):\n    ", "if (a) {\n\t", "/* ", '"""', "end\n"]),
    ),
    max_size=50,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(
    language=st.sampled_from(sorted(LANGUAGES)),
    text=odd_text,
    changed=odd_text,
    where=st.floats(0, 1),
    middle=odd_text,
    shape=st.sampled_from(list(Shape)),
    eot=st.booleans(),
)
def test_the_syntax_layer_takes_any_text(language, text, changed, where, middle, shape, eot):
    syntax = DocumentSyntax(language, text)
    offset = int(len(text) * where)
    syntax.update(text[:offset] + changed + text[offset:])
    view = syntax.snapshot()
    offset = int(len(view.text) * where)
    syntax.node_at(offset)
    syntax.error_count()
    classify(view, view.text, offset)
    prefix, suffix = view.text[:offset], view.text[offset:]
    truncate_middle(prefix, middle, suffix, language, shape, eot)
    middle_is_done(prefix, middle, suffix, language, shape)
    indentation_to_type(prefix, suffix, language)


def test_bash_is_given_characters_outside_the_bmp_as_ascii_of_the_same_length() -> None:
    # tree-sitter-bash's scanner can crash the process on `{}` before such characters; what it is given
    # instead keeps every byte offset of the document.
    text = "echo {}\U00101ca2\U0007b7f3{\U000d7950{ x\necho 😀done\n"
    data = text.encode("utf-8")
    tree = DocumentSyntax("bash", text).tree
    assert tree.root_node.end_byte == len(data)
    words = [node for node in _walk(tree.root_node) if node.type == "word"]
    assert any(data[w.start_byte : w.end_byte] == "😀done".encode() for w in words)


def _walk(node):
    yield node
    for child in node.children:
        yield from _walk(child)
