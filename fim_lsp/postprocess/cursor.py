"""The cursor's line, split at the cursor, as the truncation rules see it, and the line end a middle
needs for what follows the cursor."""

from __future__ import annotations

from dataclasses import dataclass

from fim_lsp.syntax.lines import line_after, line_before


@dataclass(frozen=True)
class CursorLine:
    """The cursor's line, split at the cursor: what the rules about lines and newlines look at."""

    before: str
    """Text before the cursor on its line (its last LINE_WINDOW_CHARS characters at most)."""
    after: str
    """Text after the cursor on its line (its first LINE_WINDOW_CHARS characters at most)."""
    rest_of_suffix: str
    """The suffix after the cursor's line (after its newline); empty when the suffix has no newline."""
    suffix_has_newline: bool

    @classmethod
    def of(cls, prefix: str, suffix: str) -> CursorLine:
        newline = suffix.find("\n")
        return cls(
            before=line_before(prefix, len(prefix)),
            after=line_after(suffix, 0),
            rest_of_suffix="" if newline == -1 else suffix[newline + 1 :],
            suffix_has_newline=newline != -1,
        )

    @property
    def at_line_start(self) -> bool:
        return not self.before.strip()

    @property
    def text_after(self) -> bool:
        return bool(self.after.strip())

    def next_suffix_line(self) -> str | None:
        """The first non-blank line of the file after the cursor, as a whole line (with indentation)."""
        if self.text_after:
            return self.before + self.after if self.at_line_start else self.after
        for line in self.rest_of_suffix.split("\n"):
            if line.strip():
                return line
        return None


def same_line(written: str, expected: str) -> bool:
    """Whether a middle line is the suffix's line again. The indentation may differ (the model nested
    its own version of the code differently), unless the line is too short to be telling (`}`, `else:`)."""
    return written.strip() == expected.strip() and (len(expected.strip()) >= 8 or written == expected)


def fit_line_end(text: str, cursor: CursorLine, inserted_lines: bool) -> str:
    """Get the newline right between the middle and what follows the cursor on its line.

    When the middle is whole lines inserted before text that follows on the cursor's line, it must end
    with a newline (and the indentation the cursor was at), or that text would join its last line. When
    nothing follows on the line, the suffix brings the line end, so the middle must not add one.
    """
    if cursor.text_after:
        if inserted_lines:
            if not text.endswith("\n"):
                text += "\n"
            if cursor.at_line_start:
                text += cursor.before  # the indentation before the cursor, for the line that follows
        return text
    if cursor.suffix_has_newline:
        text = text.rstrip(" \t")
        if text.endswith("\n"):
            text = text[:-1].rstrip(" \t")
    return text
