"""Several candidates and what became of them, through `fim-lsp --stdio` as an editor sees it: the
candidates arrive as items best first, each with the accept command; the editor says which one is on
screen (typed-through answers follow it), what was partly accepted, and runs the command on acceptance;
`fim-lsp.stats` and the status report the counts, and nothing is written anywhere. Requests are invoked
(asked for on purpose) where the test wants the alternatives; typing (automatic) gets the first alone.

The candidates are scripted (tests/fakes/scripted_fim_lsp.py, the real server with a scripted pipeline):
what is checked here is the server around the pipeline, not what a model writes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from lsprotocol import converters, types

from tests.e2e.conftest import Editor, StartEditor

SCRIPTED = Path(__file__).parents[1] / "fakes" / "scripted_fim_lsp.py"
CANDIDATES = ["sum(values)", "max(values)", "max(values, default=0)"]
TEXT = "def largest(values):\n    return \n"
URI = "file:///work/stats/largest.py"
ACCEPT = "fim-lsp.didAcceptCompletion"
_converter = converters.get_converter()


def as_json(item: types.InlineCompletionItem) -> Any:
    return _converter.unstructure(item)


async def stats(editor: Editor) -> dict[str, Any]:
    return await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="fim-lsp.stats")
    )


async def accept(editor: Editor, item: types.InlineCompletionItem) -> None:
    """What an editor does once it inserted the whole item: run its command."""
    assert item.command is not None
    await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments)
    )


async def scripted_editor(start_editor: StartEditor, tmp_path: Path, *suggestions: str) -> Editor:
    """The scripted server with HOME and the XDG folders in `tmp_path/home`, which must stay empty."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home)} | {
        f"XDG_{k}_HOME": str(home / k.lower()) for k in ("CACHE", "STATE", "DATA", "CONFIG")
    }
    args = [a for s in suggestions for a in ("--suggest", s)]
    editor = await start_editor(command=[sys.executable, str(SCRIPTED), *args], env=env)
    await editor.wait_until("ready", timeout=60)
    return editor


async def test_candidates_arrive_best_first_each_with_its_accept_command(start_editor, tmp_path):
    editor = await scripted_editor(start_editor, tmp_path, *CANDIDATES)
    editor.open(URI, TEXT)
    typing = await editor.inline(URI, 1, 11)  # typing asks automatically: the first alone
    assert [item.insert_text for item in typing] == CANDIDATES[:1]
    items = await editor.inline(URI, 1, 11, invoked=True)  # asked on purpose: the others too
    assert [item.insert_text for item in items] == CANDIDATES
    tags = [item.command.arguments[0] for item in items if item.command and item.command.arguments]
    assert [item.command.command for item in items if item.command] == [ACCEPT] * 3
    assert [tag["rank"] for tag in tags] == [0, 1, 2]
    assert len({tag["suggestion"] for tag in tags}) == 1
    assert [tag["length"] for tag in tags] == [len(c) for c in CANDIDATES]

    # The completion fallback answers the same candidates, in the same order.
    result = await editor.client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(URI), types.Position(1, 11))
    )
    assert isinstance(result, types.CompletionList)
    ordered = sorted(result.items, key=lambda item: item.sort_text or "")
    assert [item.text_edit.new_text for item in ordered if item.text_edit] == CANDIDATES


async def test_show_cycle_type_through_partly_and_wholly_accept(start_editor, tmp_path):
    editor = await scripted_editor(start_editor, tmp_path, *CANDIDATES)
    editor.open(URI, TEXT)
    items = await editor.inline(URI, 1, 11, invoked=True)
    editor.client.protocol.notify("fimLsp/didShowCompletion", {"item": as_json(items[0])})
    # Cycling to the third candidate: it is on screen now; the suggestion was shown once.
    editor.client.protocol.notify("fimLsp/didShowCompletion", {"item": as_json(items[2])})
    await asyncio.sleep(0.2)
    counted = await stats(editor)
    assert (counted["shown"], counted["accepted"], counted["partly_accepted"]) == (1, 0, 0)

    # Typing what both max candidates begin with: the rest of the one on screen comes first.
    editor.change(URI, "max(", (1, 11), (1, 11))
    typed = await editor.inline(URI, 1, 15)
    assert [item.insert_text for item in typed] == ["values, default=0)", "values)"]
    assert typed[0].command is not None and typed[0].command.arguments is not None
    assert typed[0].command.arguments[0]["rank"] == 2
    assert typed[0].command.arguments[0]["suggestion"] == items[0].command.arguments[0]["suggestion"]  # type: ignore[union-attr,index]

    # Accept a word of it, then (the editor keeps the same item on screen) the next word.
    partly = "fimLsp/didPartiallyAcceptCompletion"
    for accepted in ("values,", " default"):
        editor.client.protocol.notify(partly, {"item": as_json(typed[0]), "acceptedLength": len(accepted)})
    editor.change(URI, "values, default", (1, 15), (1, 15))
    rest = await editor.inline(URI, 1, 30)
    assert [item.insert_text for item in rest] == ["=0)"]
    await accept(editor, rest[0])
    await accept(editor, rest[0])  # an editor running the command twice does not count twice
    counted = await stats(editor)
    assert (counted["shown"], counted["accepted"], counted["partly_accepted"]) == (1, 1, 1)
    assert counted["accepted_chars"] == len("values, default=0)")
    assert counted["accepted_alternatives"] == 1  # the third candidate, not the first

    # The status carries the same counts, in camelCase.
    await asyncio.sleep(0.2)
    last = editor.acceptance[-1]
    assert (last.shown, last.accepted, last.partlyAccepted, last.acceptedChars) == (1, 1, 1, 18)
    assert not any((tmp_path / "home").rglob("*")), "nothing may be written to disk"


async def test_asking_again_is_the_same_suggestion_and_what_is_not_ours_is_ignored(start_editor, tmp_path):
    editor = await scripted_editor(start_editor, tmp_path, *CANDIDATES)
    editor.open(URI, TEXT)
    first = await editor.inline(URI, 1, 11, invoked=True)
    editor.client.protocol.notify("fimLsp/didShowCompletion", {"item": as_json(first[0])})
    again = await editor.inline(URI, 1, 11)  # a re-trigger at the same place, answered by the cache
    editor.client.protocol.notify("fimLsp/didShowCompletion", {"item": as_json(again[0])})
    await accept(editor, again[0])
    editor.change(URI, CANDIDATES[0] + "\n    ", (1, 11), (1, 11))
    second = await editor.inline(URI, 2, 4)  # after the acceptance: a new suggestion
    assert second and second[0].command is not None
    editor.client.protocol.notify("fimLsp/didShowCompletion", {"item": as_json(second[0])})
    for bad in (None, 5, {"item": 5}, {"item": {"insertText": "x", "command": {"command": ACCEPT}}}):
        editor.client.protocol.notify("fimLsp/didShowCompletion", bad)
        editor.client.protocol.notify("fimLsp/didPartiallyAcceptCompletion", bad)
    editor.client.protocol.notify(
        "fimLsp/didPartiallyAcceptCompletion", {"item": as_json(second[0]), "acceptedLength": -3}
    )
    for arguments in ([], ["x"], [{"suggestion": 10**6, "rank": 0, "length": 3}], [{"suggestion": True}]):
        await editor.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=ACCEPT, arguments=arguments)
        )
    counted = await stats(editor)
    assert (counted["shown"], counted["accepted"], counted["partly_accepted"]) == (2, 1, 0)
    assert counted["accepted_chars"] == len(CANDIDATES[0])
