"""The README's settings table is generated from `fim_lsp/config.py`: it may not drift from the code."""

from __future__ import annotations

from pathlib import Path

import attrs

from fim_lsp.config import EngineSettings, Settings
from fim_lsp.settings_doc import BEGIN, END, field_docs, first_sentence, rows, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_holds_the_generated_settings_table():
    text = README.read_text("utf-8")
    assert text.count(BEGIN) == text.count(END) == 1
    shown = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert shown == settings_table(), "paste the table `python -m fim_lsp.settings_doc` prints into README.md"


def test_every_setting_has_a_row_and_a_docstring():
    keys = [key for key, _default, _meaning in rows()]
    expected = [f.name for f in attrs.fields(Settings) if f.name != "engine"]
    assert len(keys) == len(expected) + len(attrs.fields(EngineSettings))
    assert all(meaning for _key, _default, meaning in rows())
    assert set(field_docs(Settings)) == {f.name for f in attrs.fields(Settings)}


def test_a_first_sentence_stops_at_the_sentence_not_at_an_abbreviation():
    assert first_sentence("Base URL, e.g. `http://x/v1` for `openai`. More.") == (
        "Base URL, e.g. `http://x/v1` for `openai`."
    )
    assert first_sentence("No full stop") == "No full stop"
