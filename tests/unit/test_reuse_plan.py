"""Which cached tokens a new prompt can reuse by shifting them (llama.cpp's cache reuse), as a plan."""

from __future__ import annotations

import pytest

from fim_lsp.engine.llama_cpp import reuse_plan

HEAD = [1, 2]  # the FIM tokens an SPM prompt starts with
SUFFIX = list(range(100, 160))  # the text after the cursor
MIDDLE = [3]
PREFIX = list(range(200, 260))


@pytest.mark.parametrize(
    ("cached", "tokens", "runs", "reused"),
    [
        pytest.param(
            HEAD + SUFFIX + MIDDLE + PREFIX,
            HEAD + SUFFIX[10:] + MIDDLE + PREFIX + [7],
            [(12, 50 + 1 + 60, -10)],
            len(HEAD + SUFFIX[10:] + MIDDLE + PREFIX),
            id="cursor-moved-down-the-suffix-lost-its-head-the-rest-shifts-back",
        ),
        pytest.param(
            HEAD + SUFFIX + MIDDLE + PREFIX,
            HEAD + SUFFIX + MIDDLE + PREFIX[:20] + [9, 9] + PREFIX[20:] + [7],
            [],
            len(HEAD + SUFFIX + MIDDLE + PREFIX[:20]),
            id="text-inserted-nothing-after-it-can-move-forward",
        ),
        pytest.param(
            HEAD + SUFFIX + MIDDLE + PREFIX,
            HEAD + SUFFIX[:20] + SUFFIX[25:] + MIDDLE + PREFIX,
            [(22 + 5, 35 + 1 + 59, -5)],
            len(HEAD + SUFFIX[:20] + SUFFIX[25:] + MIDDLE + PREFIX) - 1,
            id="lines-deleted-in-the-middle-the-last-prompt-token-is-left-to-evaluate",
        ),
        pytest.param(
            HEAD + SUFFIX + MIDDLE + PREFIX,
            HEAD + SUFFIX[40:] + MIDDLE + [5] * 10,
            [],
            2,
            id="a-run-shorter-than-the-minimum-is-evaluated-again",
        ),
        pytest.param([], HEAD + SUFFIX, [], 0, id="empty-cache"),
    ],
)
def test_reuse_plan(cached, tokens, runs, reused):
    shared = 0
    while shared < min(len(cached), len(tokens) - 1) and cached[shared] == tokens[shared]:
        shared += 1
    assert reuse_plan(cached, tokens, shared) == (runs, reused)
