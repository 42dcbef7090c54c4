"""Workspace context through the server: the folder the editor opened is indexed in the background
(with `$/progress`), and a completion uses a function that only another file of the workspace defines,
as it stands in an open editor buffer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.e2e.conftest import FAST_MODEL

pytestmark = pytest.mark.model

MONEY = '''\
"""Money amounts as integers of the currency's minor unit."""

from decimal import Decimal


def convert_to_minor_units(amount: Decimal, exponent: int) -> int:
    """The amount in the currency's minor unit (cents for exponent 2), rounded half up."""
    return int((amount * (10**exponent)).quantize(Decimal(1)))
'''

ORDERS = '''\
from decimal import Decimal

from shop import money


def order_total_in_cents(prices: list[Decimal]) -> int:
    """The order's total in cents."""
    return money.'''


async def indexing_ended(client: LanguageClient, timeout: float = 120, times: int = 1) -> None:
    """Wait for the end of the `$/progress` whose title says the workspace is indexed (the `times`th
    such end: the workspace is indexed again after some settings change)."""

    async def ended() -> None:
        while True:
            ends = 0
            for reports in list(client.progress_reports.values()):
                titles = [getattr(r, "title", "") for r in reports]
                if any("indexing workspace" in (t or "") for t in titles) and isinstance(
                    reports[-1], types.WorkDoneProgressEnd
                ):
                    ends += 1
            if ends >= times:
                return
            await asyncio.sleep(0.1)

    await asyncio.wait_for(ended(), timeout)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "money.py").write_text(MONEY)
    (tmp_path / "shop" / "orders.py").write_text(ORDERS)
    return tmp_path


async def test_a_function_from_another_file_of_the_workspace_is_used(start_editor, shop: Path):
    editor = await start_with_folder(start_editor, shop)
    await editor.wait_until("ready")
    await indexing_ended(editor.client)

    uri = (shop / "shop" / "orders.py").as_uri()
    editor.open(uri, ORDERS)
    lines = ORDERS.split("\n")
    (item,) = await editor.inline(uri, len(lines) - 1, len(lines[-1]))
    # The name is known only from the other file: the snippet reached the model.
    assert item.insert_text.startswith("convert_to_minor_units"), item.insert_text

    # The other file open and edited in the editor: its buffer, not the disk, is what the index reads.
    money_uri = (shop / "shop" / "money.py").as_uri()
    editor.open(money_uri, MONEY)
    row = MONEY.split("\n").index(next(line for line in MONEY.split("\n") if line.startswith("def ")))
    editor.change(money_uri, "def to_cents_rounded", (row, 0), (row, len("def convert_to_minor_units")))
    (item,) = await editor.inline(uri, len(lines) - 1, len(lines[-1]))
    assert item.insert_text.startswith("to_cents_rounded"), item.insert_text


async def start_with_folder(start_editor, folder: Path, settings: dict | None = None):
    """Start the editor with `folder` as its workspace and snippets from it in prompts (off by default):
    the fixture's initialize carries the folder through `rootUri`, which fim-lsp reads when
    `workspaceFolders` is absent."""
    return await start_editor(
        {"model": FAST_MODEL, "maxNewTokens": 24, "workspaceContext": True, **(settings or {})},
        progress=True,
        root_uri=folder.as_uri(),
    )
