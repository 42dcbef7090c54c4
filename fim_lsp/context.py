"""What goes in the prompt: the prefix and suffix around the cursor, cut to the token budget.

The cut is made at line boundaries, outward from the cursor, so the model never sees half a line at the
edge of its context, and the budget is counted with the model's own tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PromptContext:
    """The text around the cursor that fits the budget, and where it was cut in the document."""

    prefix: str
    suffix: str
    prefix_start: int
    """Offset in the document of the prefix's first character."""
    suffix_end: int
    """Offset in the document just after the suffix's last character."""


def _lines_before(text: str, offset: int) -> list[str]:
    """Whole lines before the cursor's line, nearest first (each with its line break)."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text[:line_start].splitlines(keepends=True)[::-1]


def _lines_after(text: str, offset: int) -> list[str]:
    """Whole lines after the cursor's line, nearest first."""
    line_end = text.find("\n", offset)
    if line_end < 0:
        return []
    return text[line_end + 1 :].splitlines(keepends=True)


def _take(
    lines: list[str], budget: int, count_tokens: Callable[[str], int], max_lines: int
) -> tuple[int, int]:
    """How many of `lines` (nearest first) fit `budget` tokens, and the tokens they take."""
    used = 0
    taken = 0
    for line in lines[:max_lines]:
        cost = count_tokens(line)
        if used + cost > budget:
            break
        used += cost
        taken += 1
    return taken, used


def cut_context(
    text: str,
    offset: int,
    budget: int,
    suffix_share: float,
    count_tokens: Callable[[str], int],
    *,
    max_lines: int = 2000,
) -> PromptContext:
    """Prefix and suffix around `offset` within `budget` tokens, `suffix_share` of it for the suffix.

    The cursor's own line is always kept whole on both sides. Budget the suffix does not use goes to the
    prefix, which matters more to the model.
    """
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line_end = len(text) if line_end < 0 else line_end + 1
    current_prefix, current_suffix = text[line_start:offset], text[offset:line_end]
    remaining = max(budget - count_tokens(current_prefix) - count_tokens(current_suffix), 0)

    after = _lines_after(text, offset)
    suffix_lines, suffix_used = _take(after, int(remaining * suffix_share), count_tokens, max_lines)
    before = _lines_before(text, offset)
    prefix_lines, _ = _take(before, remaining - suffix_used, count_tokens, max_lines)

    prefix_text = "".join(reversed(before[:prefix_lines])) + current_prefix
    suffix_text = current_suffix + "".join(after[:suffix_lines])
    return PromptContext(
        prefix=prefix_text,
        suffix=suffix_text,
        prefix_start=offset - len(prefix_text),
        suffix_end=offset + len(suffix_text),
    )
