"""The person at the keyboard: the holes cut in a file, the keys that type them again (pauses, typos,
Enter with the editor's indentation), and the requests an editor would send (the debounce rule). Pure
functions of a seed: a script is reproducible."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import zip_longest
from pathlib import Path
from typing import Literal

from fim_lsp.holes import line_starts, row_span
from fim_lsp.syntax.lines import indent_chars

#: Language ids by file suffix, for the files replayed.
LANGUAGE_IDS = {
    ".py": "python",
    ".ts": "typescript",
    ".tsx": "typescriptreact",
    ".js": "javascript",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".rb": "ruby",
    ".lua": "lua",
}


@dataclass(frozen=True)
class TypingPace:
    """How the simulated person types. Gaps are drawn from a seeded RNG, so a script is reproducible."""

    chars_per_second: float = 10.0
    """Average typing speed between pauses."""
    jitter: float = 0.35
    """Sigma of the log-normal factor on each gap between keys: some gaps are twice the average."""
    line_pause_probability: float = 0.5
    """Chance of a thinking pause after a new line."""
    word_pause_probability: float = 0.12
    """Chance of a pause after a space or punctuation."""
    pause_s: tuple[float, float] = (0.4, 1.6)
    """Range of a thinking pause (uniform)."""
    arrival_pause_s: tuple[float, float] = (1.0, 2.5)
    """Pause after the cursor lands on a hole, before the first key."""
    typo_probability: float = 0.02
    """Chance that a letter is first mistyped, then erased with a backspace."""
    type_along_probability: float = 0.3
    """Chance that a correct suggestion is typed out by hand instead of accepted with Tab."""

    def gap(self, rng: random.Random) -> float:
        """An ordinary gap between two keys."""
        return rng.lognormvariate(0.0, self.jitter) / self.chars_per_second

    def pause(self, rng: random.Random) -> float:
        return rng.uniform(*self.pause_s)


@dataclass(frozen=True)
class Hole:
    """A piece of the file taken out, to be typed again where it was."""

    start: int
    """Offset of the piece in the whole file."""
    text: str
    kind: Literal["block", "line-tail"]

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class Keystroke:
    """One key (or one editor action that inserts several characters, like Enter with auto-indent)."""

    gap_s: float
    """Time since the previous key (or since the cursor arrived)."""
    insert: str = ""
    backspace: bool = False
    before: int = 0
    """Characters of the hole typed correctly before this key."""
    after: int = 0
    """... and after it: equal to `before` for a typo and for the backspace that erases it."""

    @property
    def advances(self) -> bool:
        return self.after > self.before


@dataclass(frozen=True)
class HoleScript:
    """How one hole is typed: its keys, and the pause after the last one before the cursor moves on."""

    hole: Hole
    keystrokes: tuple[Keystroke, ...]
    leave_s: float

    def resume_at(self, typed: int) -> int:
        """Index of the key to continue with once `typed` characters are on screen (after a Tab)."""
        for index, key in enumerate(self.keystrokes):
            if key.before == typed and key.advances:
                return index
        return len(self.keystrokes)


@dataclass(frozen=True)
class FileScript:
    """A file, the holes cut in it (by position), and the order they are typed again in."""

    name: str
    language_id: str
    text: str
    holes: tuple[HoleScript, ...]
    order: tuple[int, ...]

    @property
    def initial_text(self) -> str:
        """The file with every hole taken out: what the editor opens."""
        return text_without(self.text, [h.hole for h in self.holes])

    def offset_of(self, index: int, filled: set[int]) -> int:
        """Where hole `index` begins in the document once the holes in `filled` are typed again."""
        hole = self.holes[index].hole
        missing = sum(
            len(h.hole.text)
            for i, h in enumerate(self.holes)
            if h.hole.start < hole.start and i not in filled
        )
        return hole.start - missing


def script_uri(script: FileScript) -> str:
    """The document URI a replayed file is opened under."""
    return f"file:///bench/{script.name}"


def text_without(text: str, holes: Sequence[Hole]) -> str:
    """`text` with the holes' pieces taken out."""
    pieces, position = [], 0
    for hole in sorted(holes, key=lambda h: h.start):
        pieces.append(text[position : hole.start])
        position = hole.end
    pieces.append(text[position:])
    return "".join(pieces)


_BLOCK_OPENERS = (":", "{", "(", "[")


_TAIL_MARKERS = (" = ", " := ", "return ", " => ", " += ", " -= ", "(")


def find_holes(text: str, rng: random.Random, count: int, max_block_lines: int = 4) -> list[Hole]:
    """Up to `count` non-overlapping holes, about half block bodies and half line tails, sorted.

    A block hole starts at the first character of the first line of an indented body and runs to the end
    of one to `max_block_lines` lines of it; the cursor then waits on an indented empty line, as when a
    person starts a body. A line tail runs from after `=`, `return`, `(`... to the end of its line.
    """
    lines = text.split("\n")
    starts = line_starts(lines)
    blocks: list[tuple[int, int]] = []  # (first line, last line)
    for number in range(1, len(lines)):
        line, above = lines[number], lines[number - 1].rstrip()
        if line.strip() and above.endswith(_BLOCK_OPENERS) and indent_chars(line) > indent_chars(above):
            last = number
            while (
                last + 1 < len(lines)
                and last + 1 - number < max_block_lines
                and lines[last + 1].strip()
                and indent_chars(lines[last + 1]) >= indent_chars(line)
            ):
                last += 1
            blocks.append((number, number + rng.randint(0, last - number)))
    tails: list[tuple[int, int]] = []  # (line, column where the tail starts)
    for number, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith(("#", "//", '"""', "*", "/*")):
            continue
        for marker in _TAIL_MARKERS:
            column = line.find(marker)
            if column > indent_chars(line) or (column >= 0 and marker == "return "):
                column += len(marker)
                if len(line[column:].strip()) >= 4:
                    tails.append((number, column))
                break
    block_holes = []
    for first, last in blocks:
        begin, end = row_span(lines, first, last, starts)
        block_holes.append((first, last, Hole(begin, text[begin:end], "block")))
    tail_holes = [
        (number, number, Hole(starts[number] + column, lines[number][column:], "line-tail"))
        for number, column in tails
    ]
    rng.shuffle(block_holes)
    rng.shuffle(tail_holes)
    # Alternate the kinds, so a few holes still mix bodies and line tails.
    candidates = [c for pair in zip_longest(block_holes, tail_holes) for c in pair if c is not None]
    chosen: list[tuple[int, int, Hole]] = []
    for first, last, hole in candidates:
        if len(chosen) == count:
            break
        # Keep a line of untouched text between holes, so each hole has real code on both sides.
        if all(last < c_first - 1 or first > c_last + 1 for c_first, c_last, _ in chosen):
            chosen.append((first, last, hole))
    return sorted((hole for _, _, hole in chosen), key=lambda h: h.start)


def typing_script(text: str, rng: random.Random, pace: TypingPace) -> tuple[Keystroke, ...]:
    """The keys that type `text`: one per character, Enter with the next line's indentation as one (the
    editor indents), now and then a typo erased with a backspace, and pauses where people pause."""
    keys: list[Keystroke] = []
    gap = rng.uniform(*pace.arrival_pause_s)
    position = 0
    while position < len(text):
        char = text[position]
        if char == "\n":
            end = position + 1
            while end < len(text) and text[end] in " \t":
                end += 1
            chunk = text[position:end]
        else:
            chunk = char
        if char.isalpha() and rng.random() < pace.typo_probability:
            wrong = rng.choice([c for c in "asdfghjklqwertyuiopzxcvbnm" if c != char.lower()])
            keys.append(Keystroke(gap, wrong, False, position, position))
            # Noticing the typo sometimes takes a moment (long enough for the editor to ask).
            notice = pace.pause(rng) if rng.random() < 0.5 else pace.gap(rng) * 2
            keys.append(Keystroke(notice, "", True, position, position))
            # ... and so does going on after it: the editor asks again where it asked before the typo.
            gap = pace.pause(rng) if rng.random() < 0.5 else pace.gap(rng)
        keys.append(Keystroke(gap, chunk, False, position, position + len(chunk)))
        position += len(chunk)
        gap = pace.gap(rng)
        if chunk.startswith("\n"):
            chance = pace.line_pause_probability
        else:
            chance = pace.word_pause_probability if chunk in " ,.;:()[]{}" else 0.0
        if rng.random() < chance:
            gap += pace.pause(rng)
    return tuple(keys)


def file_script(
    name: str, text: str, seed: int, pace: TypingPace, holes: int = 4, language_id: str | None = None
) -> FileScript:
    """The whole replay of one file, reproducible from `seed`."""
    # A seed per file (not one stream for all files), so adding a file does not change the others.
    rng = random.Random(f"{seed}:{name}")
    found = find_holes(text, rng, holes)
    scripts = tuple(HoleScript(h, typing_script(h.text, rng, pace), pace.pause(rng)) for h in found)
    order = list(range(len(scripts)))
    rng.shuffle(order)
    language = language_id or LANGUAGE_IDS.get(Path(name).suffix, "plaintext")
    return FileScript(name, language, text, scripts, tuple(order))


def asks_after(gap_s: float, debounce_s: float) -> bool:
    """The debounce rule: a request goes out when no key follows within the debounce delay."""
    return gap_s >= debounce_s


@dataclass(frozen=True)
class PlannedRequest:
    hole: int
    at_s: float
    """Seconds since the cursor arrived at the hole."""
    typed: int
    """Characters of the hole on screen (a typo counts as one)."""


def planned_requests(script: FileScript, debounce_s: float) -> list[PlannedRequest]:
    """The requests an editor would send if no suggestion were ever accepted (a dry run of the script)."""
    planned = []
    for index in script.order:
        hole = script.holes[index]
        clock, on_screen = 0.0, 0
        gaps = [key.gap_s for key in hole.keystrokes[1:]] + [hole.leave_s]
        if hole.keystrokes and asks_after(hole.keystrokes[0].gap_s, debounce_s):
            planned.append(PlannedRequest(index, debounce_s, 0))
        if hole.keystrokes:
            clock = hole.keystrokes[0].gap_s
        for key, gap in zip(hole.keystrokes, gaps, strict=True):
            on_screen += -1 if key.backspace else len(key.insert)
            if asks_after(gap, debounce_s):
                planned.append(PlannedRequest(index, clock + debounce_s, on_screen))
            clock += gap
    return planned


def bundled_files() -> list[tuple[str, str]]:
    """(name, text) of the files shipped for the replay."""
    folder = resources.files("fim_lsp").joinpath("data/replay")
    return [
        (entry.name, entry.read_text("utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if Path(entry.name).suffix in LANGUAGE_IDS
    ]
