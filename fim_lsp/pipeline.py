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

from fim_lsp.completion import Completion, CompletionRequest, Reason, Shape, WorkspaceContext
from fim_lsp.config import Settings
from fim_lsp.context import PromptContext, cut_context
from fim_lsp.engine.base import CancelToken, Engine, GenerationRequest
from fim_lsp.postprocess import finish_middle, middle_is_done
from fim_lsp.prompt import Order, RepoFile, comment_out
from fim_lsp.syntax import (
    DocumentSyntax,
    classify,
    indentation_to_type,
    language_of,
)

logger = logging.getLogger(__name__)


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


def build_context(request: CompletionRequest, settings: Settings, engine: Engine) -> PromptContext:
    """The text around the cursor that goes in the prompt, cut to the context budget."""
    return cut_context(
        request.text,
        request.offset,
        settings.context_budget,
        settings.suffix_share,
        engine.count_tokens,
        syntax=_document_syntax(request),
    )


def workspace_snippets(request: CompletionRequest, settings: Settings, engine: Engine) -> list[RepoFile]:
    """The workspace snippets for a request, within their share of the budget.

    They come on top of the file's own context rather than out of it: measured on cross-file lines of
    httpx (0.5B, 40 tasks), the file's nearer context is worth more than the snippets that would
    displace it (exact match 0.45 with snippets taking 30% of the budget from the file, 0.525 with
    them on top; see docs/design/workspace-context.md)."""
    if request.workspace is None or not settings.workspace_context:
        return []
    budget = int(settings.context_budget * settings.workspace_context_share)
    if budget <= 0:
        return []
    try:
        return list(request.workspace.snippets(budget, engine.count_tokens))
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


def render_prompt(
    engine: Engine,
    settings: Settings,
    prefix: str,
    suffix: str,
    snippets: Sequence[RepoFile] = (),
    workspace: WorkspaceContext | None = None,
    language: str | None = None,
    order: Order | None = None,
) -> str:
    """The model's prompt: snippets in its repository-level format where it has one (as comments at
    the prefix's start otherwise), then the FIM layout of prefix and suffix."""
    template = engine.template
    order = order or prompt_order(engine, settings, suffix)
    if not snippets or workspace is None:
        return template.render(prefix, suffix, order)
    if template.file_sep is None:
        return template.render(comment_out(snippets, language) + prefix, suffix, order)
    return template.render(
        prefix, suffix, order, repo=workspace.repo, path=workspace.path, repo_files=snippets
    )


def _suffix_second_line(prompt: str, suffix: str) -> int | None:
    """Where the suffix's second line starts in the prompt (None when it has one line, or is not found
    once). A BPE tokenizer joins the spaces before a line break to it, so the tokens of the suffix's
    first line depend on where the cursor is; from the next line on they do not."""
    newline = suffix.find("\n")
    if newline < 0 or prompt.count(suffix) != 1:
        return None
    return prompt.index(suffix) + newline + 1


def _warm_up_request(prompt: str, prompt_prefix: str, split_at: int | None) -> GenerationRequest | None:
    """The prompt up to the start of the cursor's line, where `prompt_prefix` (the prefix as the prompt
    has it) is found last in the prompt: what typing on the line does not change."""
    where = prompt.rfind(prompt_prefix)
    if where < 0 or not prompt_prefix:
        return None
    cut = where + prompt_prefix.rfind("\n") + 1
    if split_at is not None and split_at >= cut:
        split_at = None
    return GenerationRequest(prompt=prompt[:cut], max_tokens=0, split_at=split_at)


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


def complete(
    request: CompletionRequest,
    settings: Settings,
    engine: Engine,
    *,
    cancel: CancelToken | None = None,
    deadline: float | None = None,
) -> Completion:
    """Write the middle for the cursor in `request`. Runs on the engine's worker thread."""
    started = time.monotonic()
    if not 0 <= request.offset <= len(request.text):
        return Completion(None, Shape.NONE, Reason.OUTSIDE_DOCUMENT)
    # The text alone says when the cursor is inside a word: no need to build a prompt for nothing.
    if choose_shape(request.text, request.offset) is Shape.NONE:
        return Completion(None, Shape.NONE, Reason.INSIDE_WORD)
    if deadline is None:
        deadline = started + settings.time_budget_ms / 1000

    language = language_of(request.language_id, request.path)
    snippets = workspace_snippets(request, settings, engine)
    context = build_context(request, settings, engine)
    shape = _shape_in_context(request, context, language)
    if shape is Shape.NONE:
        return Completion(None, shape, Reason.INSIDE_WORD)
    # At column 0 where the code above fixes the indentation, the model is shown it as typed: it then
    # writes the body it should rather than a new top-level definition.
    typed = indentation_to_type(context.prefix, context.suffix, language) if shape is Shape.BLOCK else ""
    order = prompt_order(engine, settings, context.suffix)
    shown_prefix = context.prefix + typed
    held = _held_back(shown_prefix, order)
    prompt_prefix = shown_prefix[: len(shown_prefix) - len(held)]
    prompt = render_prompt(
        engine,
        settings,
        prompt_prefix,
        context.suffix,
        snippets,
        request.workspace,
        language,
        order,
    )
    split_at = _suffix_second_line(prompt, context.suffix)
    prompt_built = time.monotonic()

    def middle_of(generated: str) -> str:
        """The middle at the cursor for what the model wrote after the prompt's prefix."""
        return _after_typed(typed, _after_held(held, generated))

    def done(middle: str) -> bool:
        # Stop generating once nothing more could be shown: saves the tokens small models write past
        # the end of the hole.
        return middle_is_done(context.prefix, middle_of(middle), context.suffix, language, shape)

    generation = engine.generate(
        GenerationRequest(
            prompt=prompt,
            split_at=split_at,
            max_tokens=max_new_tokens(settings, shape),
            deadline=deadline,
            cancel=cancel or CancelToken(),
            reuse_cache=settings.reuse,
            on_text=done,
            write_something=True,
            heal_word_end=order != "psm" and _ends_in_word(prompt_prefix) and not held,
        )
    )
    warm_up = None
    if generation.stop_reason in ("cancelled", "deadline") and generation.generated_tokens == 0:
        warm_up = _warm_up_request(prompt, prompt_prefix, split_at)
    if generation.stop_reason == "cancelled":
        text = None
    else:
        text = finish_middle(
            context.prefix,
            middle_of(generation.text),
            context.suffix,
            language=language,
            shape=shape,
            # Only the model's own end counts: where `done` stopped it, the same rules cut again.
            reached_eot=generation.reached_eot,
        )
    finished = time.monotonic()
    return Completion(
        text=text,
        shape=shape,
        reason=Reason(generation.stop_reason),
        generation=generation,
        timings_ms={
            "prompt_build": (prompt_built - started) * 1000,
            "prompt_eval": generation.prompt_ms,
            "generate": generation.generate_ms,
            "total": (finished - started) * 1000,
        },
        warm_up=warm_up,
    )
