"""What a completion request carries and what comes back: the types every layer shares.

The server, the CLI and the benchmarks build a `CompletionRequest`; the service and the pipeline answer
it with a `Completion`. The workspace index fills in a `WorkspaceContext`, and the syntax module decides
the answer's `Shape`. Nothing here does any work, so any layer may import it without importing the
layers above it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fim_lsp.engine.base import Generation, GenerationRequest
    from fim_lsp.pipeline import Plan
    from fim_lsp.prompt import RepoFile
    from fim_lsp.syntax import DocumentSyntax


class Shape(enum.Enum):
    """What kind of middle makes sense at the cursor."""

    NONE = "none"
    """No completion: nothing was asked of the model (the request never got that far)."""
    LINE = "line"
    """The rest of one line (or, at the end of a line, the next line)."""
    BLOCK = "block"
    """Several lines: a body, or statements inserted where the cursor is."""


class Reason(enum.StrEnum):
    """Why a completion ended as it did: the engine's stop reason, or why no generation ran. The values
    are what logs and `fim-lsp complete --json` show."""

    EOT = "eot"
    """The model said the middle is complete."""
    STOP = "stop"
    """A stop string, or the rules saw that more tokens could change nothing shown."""
    LENGTH = "length"
    """The token cap."""
    CANCELLED = "cancelled"
    """The request was cancelled while the engine ran."""
    DEADLINE = "deadline"
    """The time budget ran out; what was whole so far is answered."""
    PARTIAL = "partial"
    """Where the user types, the line as far as the model wrote it by `pipeline.TYPING_LATENCY_S` (the
    rest would come late). Not cached; the answer after accepting it is written ahead."""
    SUPERSEDED = "superseded"
    """A newer request for the same document came, or the request was cancelled before it ran."""
    TYPED_THROUGH = "typed-through"
    """The user typed the start of the suggestion shown: the rest of it, without the model."""
    CACHED = "cached"
    """Answered from the completion cache."""
    OUTSIDE_DOCUMENT = "position outside the document"
    ENGINE_NOT_READY = "engine not ready"
    """No engine is loaded (still loading, or it failed: `Completion.detail` says which)."""
    ENGINE_UNAVAILABLE = "engine unavailable"
    PROMPT_TOO_LONG = "prompt too long"
    ENGINE_ERROR = "engine error"


#: Reasons of an answer that the same prompt would get again (not cut by a cancel or the deadline).
REPEATABLE = frozenset({Reason.EOT, Reason.STOP, Reason.LENGTH})


@dataclass(frozen=True)
class WorkspaceContext:
    """Where the document sits in the user's workspace, and how to find snippets of the workspace for it."""

    repo: str
    """The workspace's name (the repository-level format's repository name)."""
    path: str
    """The document's path in the workspace."""
    snippets: Callable[[int, Callable[[str], int]], Sequence[RepoFile]]
    """Snippets for the cursor within a token budget, counted with the given counter."""
    state: str = ""
    """Names the state of the rest of the workspace: answers cached under another state are stale."""


@dataclass(frozen=True)
class CompletionRequest:
    """A document's text and the cursor in it (a code point offset)."""

    text: str
    offset: int
    language_id: str | None = None
    path: str | None = None
    syntax: DocumentSyntax | None = None
    """The document's syntax tree, kept current by the caller (the server parses each open document
    incrementally); used when its text is `text`. Without it the pipeline parses only the prompt's text."""
    workspace: WorkspaceContext | None = None
    """Snippets from the rest of the workspace, when the caller indexes one."""
    typing: bool = False
    """The user is typing here: the answer is wanted within `pipeline.TYPING_LATENCY_S`, from a shorter
    prompt when the whole one could not be evaluated by then (see `pipeline.plan`)."""


@dataclass
class Completion:
    """The middle to show (None: nothing worth showing), and how it came about."""

    text: str | None
    shape: Shape
    reason: Reason
    """Why generation ended, or why it never started."""
    generation: Generation | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    warm_up: GenerationRequest | None = None
    """Set when the request was stopped before its prompt was evaluated: the part of the prompt that
    typing on the cursor's line leaves as it is, worth evaluating into the cache while the user types."""
    plan: Plan | None = None
    """The prompt it was answered from, when the model ran."""
    alternatives: tuple[str, ...] = ()
    """Other middles to offer after `text`, best first: distinct, each cut as `text` is."""
    detail: str = ""
    """More about the reason, for logs (the engine's state when there is none to answer)."""

    @property
    def why(self) -> str:
        """The reason as a person reads it: the reason, and its detail when there is one."""
        return f"{self.reason.value}: {self.detail}" if self.detail else self.reason.value
