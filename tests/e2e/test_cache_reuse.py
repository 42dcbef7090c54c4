"""The KV cache across cursor moves, counted in evaluated tokens through `fim-lsp.stats`: the embedded
engine keeps several evaluated prompts (one per llama.cpp sequence), so a cursor that comes back to a place
asked about before evaluates almost nothing; with reuse off every request evaluates its whole prompt."""

from __future__ import annotations

import asyncio
from importlib import resources

import pytest
from lsprotocol import types

from tests.e2e.conftest import FAST_MODEL

pytestmark = pytest.mark.model

SOURCE = resources.files("fim_lsp").joinpath("data/replay/jobs.py").read_text("utf-8")


async def evaluated_at(editor, uri: str, line: int) -> tuple[int, int]:
    """(tokens evaluated, prompt tokens) of a completion at the end of `line`'s indentation."""
    before = await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="fim-lsp.stats")
    )
    await editor.inline(uri, line, 4)
    after = await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="fim-lsp.stats")
    )
    return (
        after["evaluated_tokens"] - before["evaluated_tokens"],
        after["prompt_tokens"] - before["prompt_tokens"],
    )


@pytest.mark.parametrize("reuse", [True, False], ids=["reuse-on", "reuse-off"])
async def test_coming_back_to_a_place_finds_its_prompt_still_evaluated(start_editor, reuse):
    settings = {"model": FAST_MODEL, "maxNewTokens": 8, "reuse": reuse, "prefetch": False}
    editor = await start_editor({**settings, "workspaceContext": False})
    await editor.wait_until("ready")
    lines = SOURCE.split("\n")
    # Blank lines inside function bodies, apart from each other: the places the cursor visits.
    rows = [row for row, line in enumerate(lines) if line == "" and lines[row - 1].startswith("    ")][:3]
    text = "\n".join(line if row not in rows else "    " for row, line in enumerate(lines))
    uri = "file:///work/jobs.py"
    editor.open(uri, text)
    first, prompt = await evaluated_at(editor, uri, rows[0])
    assert first == prompt  # a cold start evaluates everything
    for row in rows[1:]:
        await evaluated_at(editor, uri, row)
    back, prompt = await evaluated_at(editor, uri, rows[0])
    if reuse:
        # All but the prompt's last token were still in the cache.
        assert back <= 2, (back, prompt)
    else:
        assert back == prompt


FIZZBUZZ = """def fizzbuzz(n):
    for i in range(1, n + 1):
        if i % 15 == 0:
            print("FizzBuzz")
        elif i % 3 == 0:
            \n"""


async def stats_of(editor) -> dict:
    return await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="fim-lsp.stats")
    )


async def test_prefetch_answers_the_accepted_suggestion_from_the_cache(start_editor):
    editor = await start_editor({"model": FAST_MODEL, "prefetch": True, "workspaceContext": False})
    await editor.wait_until("ready")
    uri = "file:///work/fizzbuzz.py"
    editor.open(uri, FIZZBUZZ)
    row, column = FIZZBUZZ.count("\n") - 1, 12
    (item,) = await editor.inline(uri, row, column)
    shown = item.insert_text
    assert isinstance(shown, str) and shown.strip(), shown
    # While the suggestion is read, the server computes the next one for the document with it accepted.
    for _ in range(600):
        before = await stats_of(editor)
        if before["prefetched"]:
            break
        await asyncio.sleep(0.1)
    assert before["prefetched"] == 1
    editor.change(uri, shown, (row, column), (row, column))  # Tab
    items = await editor.inline(uri, row, column + len(shown))
    after = await stats_of(editor)
    # The model wrote the rest of the branches (elif ... "Buzz", else) during the prefetch; accepting
    # costs a cache lookup, no generation.
    assert items and items[0].insert_text, "the prefetched answer is shown"
    assert after["generated"] == before["generated"]
    assert after["cache_hits"] == before["cache_hits"] + 1


def jobs_with_a_blank_body_line() -> tuple[str, int]:
    lines = SOURCE.split("\n")
    row = next(r for r, line in enumerate(lines) if line == "" and lines[r - 1].startswith("    "))
    return "\n".join(line if r != row else "    " for r, line in enumerate(lines)), row


async def wait_for_stat(editor, name: str) -> dict:
    for _ in range(1200):
        stats = await stats_of(editor)
        if stats[name]:
            return stats
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} stayed 0: {stats}")


async def test_a_prompt_the_editor_cancelled_is_evaluated_in_the_pause_that_follows(start_editor):
    editor = await start_editor({"model": FAST_MODEL, "maxNewTokens": 8, "workspaceContext": False})
    await editor.wait_until("ready")
    text, row = jobs_with_a_blank_body_line()
    uri = "file:///work/jobs.py"
    editor.open(uri, text)
    # A cold prompt of ~900 tokens takes seconds on a CPU: the editor cancels it well before.
    await editor.cancelled_inline(uri, row, 4, after_s=0.3)
    # In the pause, the server evaluates the cancelled prompt up to the cursor's line.
    before = await wait_for_stat(editor, "warm_ups")
    assert before["warm_ups"] == 1 and before["warm_up_evaluated_tokens"] > 0, before
    await editor.inline(uri, row, 4)
    after = await stats_of(editor)
    evaluated = after["evaluated_tokens"] - before["evaluated_tokens"]
    # The next request found all but the cursor's line (and the prompt's last token) in the cache.
    assert 0 < evaluated <= 10, evaluated


async def test_a_keystroke_has_its_prompt_evaluated_before_the_editor_asks(start_editor):
    settings = {"model": FAST_MODEL, "maxNewTokens": 8, "workspaceContext": False, "prefetch": False}
    editor = await start_editor(settings)
    await editor.wait_until("ready")
    text, row = jobs_with_a_blank_body_line()
    uri = "file:///work/jobs.py"
    editor.open(uri, text)
    editor.change(uri, "r", (row, 4), (row, 4))
    before = await wait_for_stat(editor, "prepared")
    assert before["prepared_evaluated_tokens"] > 100, before  # the whole cold prompt, no request yet
    assert before["requests"] == 0
    await editor.inline(uri, row, 5)
    after = await stats_of(editor)
    # The request there found its whole prompt evaluated: only its last token is.
    assert after["evaluated_tokens"] - before["evaluated_tokens"] <= 2
