"""`fim-lsp --stdio` driven as an editor drives it, with the real model.

The small model (0.5B) serves where only the protocol's behaviour is checked; the default model (1.5B)
where the code it writes must run.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib

import pytest
from lsprotocol import types

from tests.e2e.conftest import DEFAULT_MODEL, FAST_MODEL

pytestmark = pytest.mark.model

FUNCTION_WITHOUT_BODY = (
    "def sum_of_squares(numbers):\n"
    '    """Return the sum of the squares of the given numbers."""\n'
    "    \n"  # the cursor waits here, indented, as in an editor
    "\n\n"
    'if __name__ == "__main__":\n'
    "    print(sum_of_squares([1, 2, 3]))\n"
)
BODY_LINE = 2


def insert(text: str, line: int, character: int, middle: str) -> str:
    lines = text.split("\n")
    lines[line] = lines[line][:character] + middle + lines[line][character:]
    return "\n".join(lines)


async def test_initialize_advertises_inline_completion_and_loads_in_the_background(start_editor):
    editor = await start_editor({"model": FAST_MODEL}, progress=True)
    capabilities = editor.server_capabilities
    assert capabilities.inline_completion_provider is not None
    assert capabilities.completion_provider is not None
    assert capabilities.text_document_sync.change == types.TextDocumentSyncKind.Incremental

    await editor.wait_until("ready")
    assert editor.statuses[0]["state"] == "loading"
    (reports,) = editor.client.progress_reports.values()
    assert [type(r).__name__ for r in reports] == ["WorkDoneProgressBegin", "WorkDoneProgressEnd"]


async def test_a_missing_body_is_written_and_the_program_runs(start_editor):
    editor = await start_editor({"model": DEFAULT_MODEL})
    await editor.wait_until("ready")
    # `adapter: auto` (the default) applies the warm-up adapter shipped with the 1.5B.
    assert "with the adapter qwen2.5-coder-1.5b.warmup.gguf" in editor.statuses[-1]["message"]
    uri = "file:///work/squares.py"
    editor.open(uri, FUNCTION_WITHOUT_BODY)

    (item,) = await editor.inline(uri, BODY_LINE, 4)
    completed = insert(FUNCTION_WITHOUT_BODY, BODY_LINE, 4, item.insert_text)
    assert item.range == types.Range(types.Position(BODY_LINE, 4), types.Position(BODY_LINE, 4))
    module = ast.parse(completed)  # the file parses
    namespace: dict = {}
    exec(compile(module, "squares.py", "exec"), namespace)  # our own test program, not user input
    assert namespace["sum_of_squares"]([1, 2, 3]) == 14
    assert namespace["sum_of_squares"]([]) == 0


async def test_completion_provider_offers_the_same_text_as_one_item(start_editor):
    editor = await start_editor({"model": FAST_MODEL})
    await editor.wait_until("ready")
    assert "adapter" not in editor.statuses[-1]["message"]  # the 0.5B ships none
    uri = "file:///work/point.py"
    editor.open(uri, "import math\n\n\ndef distance(x, y):\n    return math.sqrt(\n")
    result = await editor.client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(uri), types.Position(4, 21))
    )
    assert isinstance(result, types.CompletionList) and result.is_incomplete
    (item,) = result.items
    assert item.text_edit.new_text.strip()
    assert item.text_edit.range.start == types.Position(4, 21)


async def test_bad_requests_get_empty_answers_and_the_server_stays_up(start_editor):
    editor = await start_editor({"model": FAST_MODEL, "enabledLanguages": ["python"]})
    await editor.wait_until("ready")
    uri = "file:///work/app.py"
    editor.open(uri, "def greet(name):\n    return \n")
    editor.open("file:///work/app.go", "package main\n\nfunc main() {\n\t\n}\n", language_id="go")

    assert await editor.inline(uri, 40, 0) == []  # a line past the end
    assert await editor.inline("file:///never/opened.py", 0, 0) == []
    assert await editor.inline("file:///work/app.go", 3, 1) == []  # language not enabled
    assert await editor.inline(uri, 0, 6) == []  # inside the word "greet": nothing to insert
    items = await editor.inline(uri, 1, 11)
    assert items and items[0].insert_text.strip()


async def test_utf16_edits_keep_the_servers_copy_equal_to_the_editors(start_editor):
    editor = await start_editor({"model": FAST_MODEL})
    uri = "file:///work/emoji.py"
    text = 'faces = ["😀", "😎"]\nlabel = "naïve"\r\ncount = 1\n'
    editor.open(uri, text)
    # Replace "😎" (UTF-16 columns 16-18 on line 0), then insert after "naïve" across the CRLF line.
    editor.change(uri, "🙂", (0, 16), (0, 18))
    editor.change(uri, " café", (1, 14), (1, 14))
    expected = 'faces = ["😀", "🙂"]\nlabel = "naïve café"\r\ncount = 1\n'
    state = await editor.document_state(uri)
    assert state["sha256"] == hashlib.sha256(expected.encode()).hexdigest()
    assert state["version"] == 3


async def test_a_missing_model_is_shown_once_and_a_new_setting_recovers(start_editor, tmp_path):
    editor = await start_editor({"model": str(tmp_path / "absent.gguf")})
    status = await editor.wait_until("error")
    assert "absent.gguf" in status["message"]
    uri = "file:///work/a.py"
    editor.open(uri, "def double(x):\n    return \n")
    assert await editor.inline(uri, 1, 11) == []
    assert await editor.inline(uri, 1, 11) == []
    errors = [m for m in editor.client.messages if m.type == types.MessageType.Error]
    assert len(errors) == 1 and "absent.gguf" in errors[0].message

    editor.statuses.clear()
    editor.client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"fimLsp": {"model": FAST_MODEL}})
    )
    await editor.wait_until("ready")
    assert await editor.inline(uri, 1, 11)


async def test_a_bad_setting_is_reported_and_its_default_used(start_editor):
    editor = await start_editor({"model": FAST_MODEL, "threads": 0, "maxNewTokens": "many"})
    await editor.wait_until("ready")
    (warning,) = [m for m in editor.client.messages if m.type == types.MessageType.Warning]
    assert "threads" in warning.message and "maxNewTokens" in warning.message


async def test_cancel_request_and_a_newer_request_both_stop_the_older_one(start_editor):
    editor = await start_editor({"model": FAST_MODEL, "maxNewTokens": 96})
    await editor.wait_until("ready")
    uri = "file:///work/big.py"
    editor.open(uri, "class Inventory:\n    \n")
    params = types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri),
        position=types.Position(1, 4),
        context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Automatic),
    )
    # An explicit $/cancelRequest.
    await editor.cancelled_inline(uri, 1, 4, after_s=0.3)

    # A newer request for the same document supersedes the running one: its answer is empty.
    older = editor.client.text_document_inline_completion_async(params)
    older_task = asyncio.ensure_future(older)
    await asyncio.sleep(0.3)
    newer = await editor.inline(uri, 1, 4)
    superseded = await older_task
    assert superseded is not None and list(superseded.items) == []
    assert newer and newer[0].insert_text.strip()


async def test_typing_the_ghost_text_and_undoing_cost_no_model_time(start_editor):
    editor = await start_editor({"model": FAST_MODEL})
    await editor.wait_until("ready")
    uri = "file:///work/names.py"
    editor.open(uri, 'names = ["ada", "grace"]\nshout = [name.upper() for name in \n')
    (first,) = await editor.inline(uri, 1, 34)
    suggestion = first.insert_text
    assert len(suggestion) >= 2

    # The user types the first two characters of the ghost text: the rest comes back without the model.
    editor.change(uri, suggestion[:2], (1, 34), (1, 34))
    (rest,) = await editor.inline(uri, 1, 36)
    assert rest.insert_text == suggestion[2:]
    # Undo: the same text and cursor as the first request come from the completion cache.
    editor.change(uri, "", (1, 34), (1, 36))
    (again,) = await editor.inline(uri, 1, 34)
    assert again.insert_text == suggestion

    stats = await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="fim-lsp.stats")
    )
    assert (stats["generated"], stats["typed_through"], stats["cache_hits"]) == (1, 1, 1)
