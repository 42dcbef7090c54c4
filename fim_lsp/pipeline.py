"""One completion, start to end: document + cursor + settings + engine -> the middle to show.

No LSP here: the server (and the CLI, and the benchmarks) call `complete` with plain text and an offset,
so the same steps serve every entry point. The steps, in order: decide what shape of answer fits the
cursor (nothing, one line, a block), cut the context to the budget, render the model family's FIM
prompt, generate, and cut the middle where it stops being whole.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from fim_lsp.completion import Completion, CompletionRequest, Reason, Shape, WorkspaceContext
from fim_lsp.config import Settings
from fim_lsp.context import PromptContext, cut_context
from fim_lsp.engine.base import CancelToken, Engine, Generation, GenerationRequest
from fim_lsp.postprocess import finish_middle, middle_is_done, shown_so_far
from fim_lsp.prompt import FimPrompt, Order, RepoFile, comment_out
from fim_lsp.syntax import (
    DocumentSyntax,
    block_goes_on,
    classify,
    indentation_to_type,
    inside_word,
    language_of,
)

logger = logging.getLogger(__name__)

#: Share of the time budget a prompt the cache does not hold may take to evaluate: the rest is for
#: writing the answer, and for a machine busier than when its speed was measured.
COLD_PROMPT_SHARE = 0.6
#: The least context a prompt is cut to, however slow the machine: less says too little to answer from.
MIN_CONTEXT_BUDGET = 256
#: Seconds from a request where the user is typing to its ghost text, that the prompt is cut to fit when
#: the cache does not hold enough of it (see `plan`).
TYPING_LATENCY_S = 2.0
#: Tokens of a typical one-line answer: what the writing beside a prompt is reckoned at.
LINE_TOKENS = 12
#: Seconds a line is written for at the least, where the user types, before what is written of it may
#: be shown without its end (see `_LineInTime`): less than that is seldom more than a word.
MIN_PARTIAL_WRITING_S = 0.75
#: The context budget chosen from the measured speed moves in steps of this many tokens, so that small
#: changes of the speed do not change the prompt (and the cached evaluation of it stays valid).
BUDGET_STEP = 128


def choose_shape(text: str, offset: int, syntax: DocumentSyntax | None = None) -> Shape:
    """The answer's shape at the cursor (see `fim_lsp.syntax.classify`).

    Inside a word with more word to its right there is nothing to insert; text after the cursor on its
    line, or an unfinished expression, means one line; otherwise (a blank line, a line that opens a
    block or ends a statement) a block may follow.
    """
    return classify(syntax, text, offset)


def max_new_tokens(settings: Settings, shape: Shape) -> int:
    """Token cap for a shape: a single line needs fewer tokens than a block. Half, not less: a long
    line (a condition, a call with its arguments) takes 30-50 tokens, and generation stops as soon as
    the line is whole (`middle_is_done`), so the cap costs only where the model rambles."""
    return max(16, settings.max_new_tokens // 2) if shape is Shape.LINE else settings.max_new_tokens


def build_context(
    request: CompletionRequest, settings: Settings, engine: Engine, budget: int | None = None
) -> PromptContext:
    """The text around the cursor that goes in the prompt, cut to the context budget."""
    return cut_context(
        request.text,
        request.offset,
        budget or settings.budget_cap,
        settings.suffix_share,
        engine.count_tokens,
        syntax=_document_syntax(request),
    )


def workspace_snippets(
    request: CompletionRequest, settings: Settings, engine: Engine, budget: int | None = None
) -> list[RepoFile]:
    """The workspace snippets for a request, within their share of the budget.

    They come on top of the file's own context rather than out of it: measured on cross-file lines of
    httpx (0.5B, 40 tasks), the file's nearer context is worth more than the snippets that would
    displace it (exact match 0.45 with snippets taking 30% of the budget from the file, 0.525 with
    them on top; see docs/design/workspace-context.md)."""
    if request.workspace is None or not settings.workspace_context:
        return []
    share = int((budget or settings.budget_cap) * settings.workspace_context_share)
    if share <= 0:
        return []
    try:
        return list(request.workspace.snippets(share, engine.count_tokens))
    except Exception:  # a broken index must cost the snippets, not the completion
        logger.warning("workspace snippets failed; completing without them", exc_info=True)
        return []


def prompt_order(engine: Engine, settings: Settings, suffix: str) -> Order:
    """The FIM order of this prompt: the setting's (the family's measured best for `auto`), but PSM
    when nothing follows the cursor."""
    order = engine.template.resolve_order(settings.fim_order)
    if order == "spm" and not suffix.strip():
        # Nothing after the cursor: an SPM prompt then puts the middle token right after the suffix
        # token, and models often end the middle at once (the 1.5B wrote nothing for a function body
        # at the end of a file); PSM writes. Typing at the end of a file appends to either.
        return "psm"
    return order


def fim_prompt(
    engine: Engine,
    settings: Settings,
    prefix: str,
    suffix: str,
    snippets: Sequence[RepoFile] = (),
    workspace: WorkspaceContext | None = None,
    language: str | None = None,
    order: Order | None = None,
) -> FimPrompt:
    """The model's prompt: snippets in its repository-level format where it has one (as comments at
    the prefix's start otherwise), then the FIM layout of prefix and suffix."""
    order = order or prompt_order(engine, settings, suffix)
    if not snippets or workspace is None:
        return FimPrompt(prefix, suffix, order)
    if engine.template.file_sep is None:
        return FimPrompt(comment_out(snippets, language) + prefix, suffix, order)
    return FimPrompt(prefix, suffix, order, repo=workspace.repo, path=workspace.path, files=tuple(snippets))


def _held_back(prefix: str, order: Order) -> str:
    """Spaces and tabs at the end of the prefix that are left out of a prompt the prefix ends (SPM,
    psm-line). A BPE tokenizer puts a space in front of the word after it (` return`, ` 5`): a prompt
    that ends in spaces is one the model never saw, and it answers with one space too many, or
    nothing. The model writes them again, and `_after_held` takes them off."""
    if order == "psm":
        return ""
    return prefix[len(prefix.rstrip(" \t")) :]


def _ends_in_word(text: str) -> bool:
    """Whether `text` ends with a letter, digit or underscore: a word the user may still be writing."""
    return bool(text) and (text[-1].isalnum() or text[-1] == "_")


def _after_held(held: str, generated: str) -> str:
    """What the model wrote, as it goes after the spaces `held` back from its prompt."""
    if not held:
        return generated
    if generated.startswith(held):
        return generated[len(held) :]
    return generated.lstrip(" \t") if generated[:1] in (" ", "\t") else generated


def _after_typed(typed: str, generated: str) -> str:
    """The middle when `typed` was put in the prompt for the model: `typed`, then what it wrote. A model
    shown indentation at the end of its prompt sometimes indents once more (the prompt then ends where
    its tokenizer would not have cut): the first line goes where the code above says."""
    if typed and generated[:1] in (" ", "\t"):
        generated = generated.lstrip(" \t")
    return typed + generated


def _document_syntax(request: CompletionRequest) -> DocumentSyntax | None:
    """A stable view of the caller's tree when it is of the request's text (the document may have
    changed since the request was made)."""
    if request.syntax is None:
        return None
    view = request.syntax.snapshot()
    return view if view.text == request.text else None


def _shape_in_context(request: CompletionRequest, context: PromptContext, language: str | None) -> Shape:
    """The shape, judged with a syntax tree: the document's when the caller keeps one, else one of the
    prompt's text only (a few kilobytes, whatever the document's size)."""
    syntax = _document_syntax(request)
    if syntax is not None:
        return choose_shape(request.text, request.offset, syntax)
    window = context.prefix + context.suffix
    window_syntax = DocumentSyntax(language, window) if language else None
    return choose_shape(window, len(context.prefix), window_syntax)


@dataclass(frozen=True)
class Plan:
    """A completion's prompt and what is needed to read the model's answer as a middle."""

    prompt: FimPrompt
    shape: Shape
    context: PromptContext
    language: str | None
    typed: str
    """Indentation typed into the prompt for the model (see `indentation_to_type`)."""
    held: str
    """Spaces held back from the prompt's end (see `_held_back`)."""
    shortened: bool = False
    """Cut shorter than the budget, so that typing gets an answer in time (see `plan`)."""

    def middle_of(self, generated: str) -> str:
        """The middle at the cursor for what the model wrote after the prompt's prefix."""
        return _after_typed(self.typed, _after_held(self.held, generated))

    def finish(self, generated: str, reached_eot: bool) -> str | None:
        """The middle to show for what the model wrote (None: nothing worth showing)."""
        context = self.context
        return finish_middle(
            context.prefix,
            self.middle_of(generated),
            context.suffix,
            language=self.language,
            shape=self.shape,
            # Only the model's own end counts: where `done` stopped it, the same rules cut again.
            reached_eot=reached_eot,
        )

    def done(self, generated: str) -> bool:
        """Whether nothing more the model writes could be shown: stops the tokens small models write past
        the end of the hole."""
        context = self.context
        return middle_is_done(
            context.prefix, self.middle_of(generated), context.suffix, self.language, self.shape
        )

    def so_far(self, generated: str) -> str | None:
        """What may be shown of a line the model is still writing (None: nothing yet)."""
        context = self.context
        return shown_so_far(
            context.prefix,
            self.middle_of(generated),
            context.suffix,
            language=self.language,
            shape=self.shape,
        )


class _LineInTime:
    """The `on_text` of a line written where the user types: besides the rules' own end, stops once
    `until` (a monotonic time) has passed, and `MIN_PARTIAL_WRITING_S` since the first token came, with
    a part of the line worth showing written (`shown`). On two slow cores a long line (a call with its
    arguments, a message) takes seconds to write after its prompt: the start of it by then is ghost text
    that keeps up with the keys, and the next request, or accepting it, gets the rest."""

    def __init__(self, planned: Plan, until: float) -> None:
        self.planned = planned
        self.until = until
        self.first_text_at: float | None = None
        self.shown: str | None = None

    def __call__(self, generated: str) -> bool:
        if self.planned.done(generated):
            return True
        now = time.monotonic()
        if self.first_text_at is None:
            self.first_text_at = now
        if now < max(self.until, self.first_text_at + MIN_PARTIAL_WRITING_S):
            return False
        self.shown = self.planned.so_far(generated)
        return self.shown is not None


def context_budget(settings: Settings, engine: Engine) -> int:
    """Tokens of file the prompt may take: the setting, or less where this machine could not evaluate
    that many before the time budget runs out (a deadline is a target, not a cliff: a shorter prompt
    answered in time beats a longer one cut off). Measured from the engine's own prompt speed, so the
    same on every request until the speed changes, and cached prompts stay valid."""
    rate = engine.prompt_rate()
    if settings.context_budget is not None or rate is None:
        return settings.budget_cap
    return min(settings.budget_cap, affordable_budget(rate, settings))


def affordable_budget(rate: float, settings: Settings) -> int:
    """The context budget whose prompt (workspace snippets included) a machine evaluating `rate` prompt
    tokens a second gets through in its share of the time budget."""
    snippets = settings.workspace_context_share if settings.workspace_context else 0.0
    tokens = rate * settings.time_budget_ms / 1000 * COLD_PROMPT_SHARE / (1 + snippets)
    return max(MIN_CONTEXT_BUDGET, int(tokens) // BUDGET_STEP * BUDGET_STEP)


def plan(request: CompletionRequest, settings: Settings, engine: Engine) -> Plan | Completion:
    """The prompt for the cursor in `request`, or the empty completion when there is nothing to ask.

    Where the user is typing and the cache holds too little of the prompt to evaluate the rest within
    `TYPING_LATENCY_S`, the prompt is cut to what fits (the cursor's block and the code nearest to it),
    and the answer to the cursor's line: ghost text that keeps up with typing, from less context, rather
    than none until the user stops (a block would take seconds more to write). The whole prompt is
    evaluated afterwards, while the user reads or types on, for the next request (`Plan.shortened`)."""
    whole, shortened = _whole_and_shortened(request, settings, engine)
    return shortened or whole


def _whole_and_shortened(
    request: CompletionRequest, settings: Settings, engine: Engine
) -> tuple[Plan | Completion, Plan | None]:
    """The request's whole plan, and the plan cut short for typing when `plan` answers from that."""
    whole = _plan(request, settings, engine, context_budget(settings, engine))
    if not request.typing or not isinstance(whole, Plan):
        return whole, None
    short = typing_budget(whole.prompt, settings, engine)
    if short is None:
        return whole, None
    shortened = _plan(request, settings, engine, short, workspace=False, line_only=True)
    return whole, replace(shortened, shortened=True) if isinstance(shortened, Plan) else None


def typing_budget(prompt: FimPrompt, settings: Settings, engine: Engine) -> int | None:
    """The context budget of a prompt whose evaluation fits `TYPING_LATENCY_S` beside the writing, when
    `prompt` would take longer than that with what the cache holds of it; None when it would not."""
    rate, writing = engine.prompt_rate(), engine.write_rate()
    if rate is None or writing is None:
        return None
    seconds = TYPING_LATENCY_S - LINE_TOKENS / writing
    affordable = int(rate * seconds)
    uncached = engine.uncached_tokens(prompt)
    if uncached is None or uncached <= affordable:
        return None
    return max(MIN_CONTEXT_BUDGET // 2, min(affordable, settings.budget_cap))


def _plan(
    request: CompletionRequest,
    settings: Settings,
    engine: Engine,
    budget: int,
    *,
    workspace: bool = True,
    line_only: bool = False,
) -> Plan | Completion:
    if not 0 <= request.offset <= len(request.text):
        return Completion(None, Shape.NONE, Reason.OUTSIDE_DOCUMENT)
    language = language_of(request.language_id, request.path)
    if not workspace:
        request = replace(request, workspace=None)
    snippets = workspace_snippets(request, settings, engine, budget)
    context = build_context(request, settings, engine, budget)
    shape = _shape_in_context(request, context, language)
    if line_only and shape is Shape.BLOCK:
        shape = Shape.LINE
    # At column 0 where the code above fixes the indentation, the model is shown it as typed: it then
    # writes the body it should rather than a new top-level definition.
    typed = indentation_to_type(context.prefix, context.suffix, language) if shape is Shape.BLOCK else ""
    order = prompt_order(engine, settings, context.suffix)
    shown_prefix = context.prefix + typed
    held = _held_back(shown_prefix, order)
    prompt = fim_prompt(
        engine,
        settings,
        shown_prefix[: len(shown_prefix) - len(held)],
        context.suffix,
        snippets,
        request.workspace,
        language,
        order,
    )
    return Plan(prompt, shape, context, language, typed, held)


def prepare(
    request: CompletionRequest, settings: Settings, engine: Engine
) -> list[tuple[GenerationRequest, bool]]:
    """What to evaluate into the engine's cache, in order, for a request that is likely to come (the
    user typed there), written nothing: its whole prompt, and before it the prompt cut short for typing
    when the request would be answered from that; each with whether it is the one cut short. Nothing
    when there would be nothing to ask."""
    whole, shortened = _whole_and_shortened(request, settings, engine)
    plans = [planned for planned in (shortened, whole) if isinstance(planned, Plan)]
    return [(GenerationRequest(prompt=planned.prompt, max_tokens=0), planned.shortened) for planned in plans]


def stream(planned: Plan) -> GenerationRequest | None:
    """What to evaluate into the cache once a request is answered, while the user reads: its prompt's
    start, followed by the rest of its window in the file's own order (the suffix's text as prefix). A
    later request anywhere in that window whose prompt starts the same (a file that fits the budget: any
    line of it) then finds its prefix evaluated, and evaluates only its suffix and cursor line, where it
    would otherwise evaluate the lines the cursor moved over too. Only for prompts that start with the
    prefix (PSM, psm-line): an SPM prompt starts with the suffix, which every move changes."""
    prompt = planned.prompt
    if prompt.order == "spm":
        return None
    whole = replace(prompt, prefix=planned.context.prefix + planned.context.suffix, suffix="", order="psm")
    return GenerationRequest(prompt=whole, max_tokens=0)


def complete(
    request: CompletionRequest,
    settings: Settings,
    engine: Engine,
    *,
    cancel: CancelToken | None = None,
    deadline: float | None = None,
    alternatives: int = 0,
) -> Completion:
    """Write the middle for the cursor in `request`, and up to `alternatives` others. Runs on the engine's
    worker thread."""
    started = time.monotonic()
    planned = plan(request, settings, engine)
    if isinstance(planned, Completion):
        return planned
    if deadline is None:
        deadline = started + settings.time_budget_ms / 1000
    # Where the user types, ghost text keeps up with the keys: a block must come within TYPING_LATENCY_S.
    target = min(deadline, started + TYPING_LATENCY_S) if request.typing else deadline
    if (
        planned.shape is Shape.BLOCK
        and block_goes_on(request.text, request.offset, planned.language, planned.typed)
        and not _block_in_time(planned.prompt, engine, target, settings.max_new_tokens)
    ):
        # Where code follows in the block, one line is an answer in its own right (Copilot-style
        # completion gives one between lines); a block this machine cannot write by then would be late.
        planned = replace(planned, shape=Shape.LINE)
    prompt, shape = planned.prompt, planned.shape
    # An invoked request (alternatives asked for) gets whole lines: the user asked, and waits for them.
    partial = request.typing and shape is Shape.LINE and not alternatives
    in_time = _LineInTime(planned, target) if partial else None
    prompt_built = time.monotonic()
    generation = engine.generate(
        GenerationRequest(
            prompt=prompt,
            max_tokens=max_new_tokens(settings, shape),
            deadline=deadline,
            cancel=cancel or CancelToken(),
            reuse_cache=settings.reuse,
            on_text=in_time or planned.done,
            # Inside a word the model may well say it is whole; elsewhere the cursor is where the user
            # writes (see `GenerationRequest.write_something`).
            write_something=not inside_word(request.text, request.offset),
            heal_word_end=prompt.order != "psm" and _ends_in_word(prompt.prefix) and not planned.held,
            alternatives=alternatives,
        )
    )
    warm_up = None
    if generation.stop_reason in ("cancelled", "deadline") and generation.generated_tokens == 0:
        warm_up = GenerationRequest(prompt=prompt, max_tokens=0, before_line=True)
    text: str | None = None
    others: tuple[str, ...] = ()
    reason = Reason(generation.stop_reason)
    if in_time is not None and in_time.shown is not None and generation.stop_reason == "stop":
        text, reason = in_time.shown, Reason.PARTIAL
    elif generation.stop_reason != "cancelled":
        text = planned.finish(generation.text, generation.reached_eot)
        others = _other_middles(planned, generation, text)
        if text is None and others:
            text, others = others[0], others[1:]
    finished = time.monotonic()
    return Completion(
        text=text,
        shape=shape,
        reason=reason,
        generation=generation,
        timings_ms={
            "prompt_build": (prompt_built - started) * 1000,
            "prompt_eval": generation.prompt_ms,
            "generate": generation.generate_ms,
            "total": (finished - started) * 1000,
        },
        warm_up=warm_up,
        plan=planned,
        alternatives=others,
    )


def _block_in_time(prompt: FimPrompt, engine: Engine, target: float, tokens: int) -> bool:
    """Whether the engine, at the speeds it measures, writes a block of `tokens` (its cap: between lines
    a model writes on until a rule stops it) by `target` (a monotonic time) after evaluating what its
    cache lacks of `prompt`; True where it cannot tell."""
    rate, writing = engine.prompt_rate(), engine.write_rate()
    uncached = engine.uncached_tokens(prompt)
    if rate is None or writing is None or uncached is None:
        return True
    seconds = target - time.monotonic() - uncached / rate
    return seconds * writing >= tokens


def _other_middles(planned: Plan, generation: Generation, first: str | None) -> tuple[str, ...]:
    """The alternatives, each cut as the first middle is; those cut to nothing, or to the code of a
    middle already offered (the same lines but for indentation and blank lines: a model's next likeliest
    first token is often only other whitespace), are left out; the rest in the order of the model's own
    log-probability for them."""
    ranked = sorted(generation.alternatives, key=lambda other: -other.log_probability)
    offered: list[str] = [first] if first else []
    for other in ranked:
        text = planned.finish(other.text, other.stop_reason == "eot")
        if text and all(_code_lines(text) != _code_lines(shown) for shown in offered):
            offered.append(text)
    return tuple(offered[1:] if first else offered)


def _code_lines(middle: str) -> list[str]:
    return [line.strip() for line in middle.split("\n") if line.strip()]
