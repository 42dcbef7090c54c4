"""What never belongs in a middle: special-token spellings, a Markdown fence, English prose after the
code. Each ends the middle where it starts."""

from __future__ import annotations

import re

# FIM and other special-token spellings of the families we know; the model's text never contains them.
_SPECIAL_TOKEN = re.compile(
    r"<\|[A-Za-z_][A-Za-z0-9_]*\|>"  # Qwen, CodeGemma: <|fim_prefix|>, <|endoftext|>, <|file_sep|>
    r"|<(?:fim_prefix|fim_suffix|fim_middle|fim_pad|file_sep|repo_name|filename|gh_stars)>"  # StarCoder
    r"|<｜[^｜>]*｜>"  # DeepSeek-Coder (full-width bars)
    r"|\s?<(?:PRE|SUF|MID|EOT)>"  # CodeLlama
    r"|\[(?:PREFIX|SUFFIX|MIDDLE)\]"  # Codestral
)


_FENCE = re.compile(r"^\s*```")


# An English sentence at column 0: a capitalised word, at least three more words, no code punctuation.
_PROSE = re.compile(r"^[A-Z][a-z']+(?:[ ,]+[A-Za-z0-9'`\-]+){3,}[.:!?]?\s*$")


def is_fence(line: str) -> bool:
    """Whether `line` is a Markdown fence (a model wrapping its answer, or ending it)."""
    return _FENCE.match(line) is not None


def strip_special_and_fences(middle: str) -> tuple[str, bool]:
    """The middle before any special token, fence or prose; and whether something was cut (an end)."""
    cut = False
    special = _SPECIAL_TOKEN.search(middle)
    if special:
        middle, cut = middle[: special.start()], True
    lines = middle.split("\n")
    # A fence before any code: the model wrapped its answer in Markdown; the code follows the fence.
    first_code = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first_code is not None and _FENCE.match(lines[first_code]) and first_code + 1 < len(lines):
        lines = lines[:first_code] + lines[first_code + 1 :]
        middle = "\n".join(lines)
    for index, line in enumerate(lines):
        if index > 0 and (_FENCE.match(line) or _PROSE.match(line)):
            middle, cut = "\n".join(lines[:index]) + "\n", True
            break
    return middle, cut
