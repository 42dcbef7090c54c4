"""The embedded engine: llama.cpp in this process, through llama-cpp-python.

One `Llama` object stays loaded. llama.cpp keeps the KV cache of the last prompt, so a request whose
prompt shares a start with the previous one evaluates only the tokens after the shared part. We evaluate
the prompt ourselves in small chunks before handing over to `Llama.generate`, so that a cancelled or
superseded request stops within one chunk or one token instead of after the whole prompt.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fim_lsp.config import Settings
from fim_lsp.engine.base import Engine, Generation, GenerationRequest, StopReason
from fim_lsp.errors import ConfigurationError, ModelCorruptError, PromptTooLongError
from fim_lsp.prompt import FimTemplate, detect_template, known_templates, template_for_family

logger = logging.getLogger(__name__)
llama_logger = logging.getLogger("fim_lsp.llama_cpp")

#: Prompt tokens evaluated per llama_decode call. Cancellation does not wait for a chunk to finish
#: (llama.cpp's abort callback stops a decode between graph nodes, see `_install_abort_callback`), but an
#: aborted chunk is lost while finished ones stay cached: small chunks let a prompt's evaluation make
#: progress across requests that typing keeps cancelling.
PROMPT_CHUNK_TOKENS = 64
#: Shortest run of cached tokens moved to a new position rather than evaluated again (see `reuse_plan`):
#: shorter runs are likely chance matches, and each move costs a pass over the cache.
MIN_REUSED_RUN = 32
#: Times a middle that ended before writing anything but spaces is made to go on (`write_something`):
#: a model that still wants to end after its best other tokens has nothing to say here.
MAX_EMPTY_RESTARTS = 2
#: A token that is (a space and) part of a word: what `heal_word_end` takes off the end of a prompt.
_WORD_PIECE = re.compile(rb" ?\w+")
#: Word pieces whose tokens are remembered (`_tokens_starting_with`); past that the memory starts afresh.
MAX_REMEMBERED_PIECES = 1024

# ggml.h: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the previous line).
_GGML_TO_LOGGING = {3: logging.WARNING, 4: logging.ERROR}
_log_callback: Any = None  # kept referenced: llama.cpp calls it from C for the life of the process
#: Set while a decode is being aborted on purpose: llama.cpp then logs "failed to decode" as errors,
#: which are no errors of ours.
_aborting = threading.Event()


def route_llama_logs() -> None:
    """Send llama.cpp's own log lines to our logger (debug level) instead of the process's stderr."""
    global _log_callback
    import llama_cpp

    if _log_callback is not None:
        return

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            # llama.cpp is chatty at its INFO level; only its warnings and errors are more than debug to us.
            severity = logging.DEBUG if _aborting.is_set() else _GGML_TO_LOGGING.get(level, logging.DEBUG)
            llama_logger.log(severity, "%s", message)

    _log_callback = callback
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def check_gguf(path: Path) -> None:
    """Raise ModelCorruptError unless `path` is a readable GGUF file."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelCorruptError(f"cannot read model file {path}: {exc.strerror}") from exc
    if magic != b"GGUF":
        raise ModelCorruptError(f"{path} is not a GGUF model file")


def maps_safely(path: Path) -> bool:
    """Whether the model file may be memory-mapped rather than read into the process's own memory.

    A mapped model costs no load-time copy, and its pages are the page cache's: shared by every fim-lsp
    process (one per editor window) and dropped by the kernel under memory pressure. But a mapped file
    truncated or overwritten in place (`cp other.gguf model.gguf`) kills the process with SIGBUS on its
    next read of a missing page. Files in fim-lsp's model cache are only ever replaced by a rename
    (`models.py` writes a temporary file and renames it), which leaves the mapped inode intact: those
    are mapped. A model given by any other path is a file fim-lsp does not control, and is read into
    memory (0.5B: 587 MiB private instead of 486 MiB shared + 151 MiB private; load 0.3 s slower).
    """
    from fim_lsp.models import models_dir

    return path.resolve().is_relative_to(models_dir().resolve())


def reuse_plan(
    cached: Sequence[int], tokens: Sequence[int], shared: int, min_run: int = MIN_REUSED_RUN
) -> tuple[list[tuple[int, int, int]], int]:
    """How to reuse cached tokens that the new prompt has later or earlier than `shared`, the common
    start: runs of at least `min_run` tokens, found in order, each as (cached position, length, shift).
    Returns the runs and how many leading prompt tokens are in the cache once they are moved.

    This is llama.cpp's server's cache reuse: when text is taken out of the prompt (in SPM order, the
    lines between the old and the new cursor when the cursor moves down; the start of a window that
    moved), what follows it is shifted back in the KV cache instead of evaluated again. The shifted
    entries were computed seeing the removed text, an approximation llama.cpp makes too. Only
    removals can be reused: llama.cpp decodes a sequence at consecutive positions, so new text cannot
    be put in front of cached entries. The prompt's last token is always left to evaluate.
    """
    runs: list[tuple[int, int, int]] = []
    head_c = head_p = shared
    limit = len(tokens) - 1
    while head_c < len(cached) and head_p < limit:
        length = 0
        while (
            head_c + length < len(cached)
            and head_p + length < limit
            and cached[head_c + length] == tokens[head_p + length]
        ):
            length += 1
        if length >= min_run:
            runs.append((head_c, length, head_p - head_c))
            head_c += length
            head_p += length
        else:
            head_c += 1
    return runs, head_p


class LlamaCppEngine(Engine):
    """A GGUF model loaded by llama.cpp; generation is greedy (a completion should be deterministic)."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = -1,
        template_family: str | None = None,
        use_mmap: bool = True,
        adapter: Path | None = None,
    ) -> None:
        """`adapter`: a LoRA adapter in llama.cpp's GGUF format, applied over the model (llama.cpp then
        reads the model into memory instead of mapping it)."""
        import llama_cpp

        route_llama_logs()
        check_gguf(model_path)
        self.model_path = model_path
        self.adapter = adapter
        threads = n_threads or os.cpu_count() or 1
        self.gpu_offload = bool(llama_cpp.llama_supports_gpu_offload()) and n_gpu_layers != 0
        started = time.monotonic()
        try:
            self.llama = llama_cpp.Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_batch=512,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=n_gpu_layers if self.gpu_offload else 0,
                flash_attn=True,
                use_mmap=use_mmap,
                lora_path=str(adapter) if adapter else None,
                # verbose=False keeps llama-cpp-python's prints off the process's stdout; our stdio
                # transport does not use file descriptor 1 anyway (see cli.py), and llama.cpp's own log
                # lines reach our logger through route_llama_logs().
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            what = f"{model_path} with the adapter {adapter}" if adapter else str(model_path)
            raise ModelCorruptError(f"llama.cpp could not load {what}: {exc}") from exc
        self.load_seconds = time.monotonic() - started
        self._interrupt: Callable[[], bool] | None = None
        self._install_abort_callback()
        memory = llama_cpp.llama_get_memory(self.llama._ctx.ctx)
        self._can_shift = memory is not None and bool(llama_cpp.llama_memory_can_shift(memory))
        self._vocab = self.llama._model.vocab
        self._vocab_size = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self.template = template_for_family(template_family) if template_family else self._detect_template()
        self._stop_token_ids = self._single_token_ids(self.template.stop)
        self._end_ids: list[int] | None = None
        self._pieces: list[bytes] | None = None
        self._starting_with: dict[bytes, list[int]] = {}
        logger.info(
            "loaded %s%s in %.2f s (%s, template %s, %d threads, gpu offload %s)",
            model_path.name,
            f" with the adapter {adapter.name}" if adapter else "",
            self.load_seconds,
            "mapped" if use_mmap and not adapter else "read into memory",
            self.template.family,
            threads,
            self.gpu_offload,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> LlamaCppEngine:
        from fim_lsp.models import resolve_model

        path = resolve_model(settings.model)
        adapter = None
        if settings.adapter:
            from fim_lsp.warmup.adapters import check_adapter, resolve_adapter

            adapter = resolve_adapter(settings.adapter)
            check_adapter(adapter, path)
        return cls(
            path,
            n_ctx=settings.context_size,
            n_threads=settings.threads,
            n_gpu_layers=settings.gpu_layers,
            template_family=settings.engine.template,
            use_mmap=maps_safely(path),
            adapter=adapter,
        )

    def _install_abort_callback(self) -> None:
        """Let llama.cpp ask, between graph nodes of a decode, whether the running request was cancelled
        or ran out of time, so a superseded generation stops within milliseconds, not after a chunk."""
        import llama_cpp

        @llama_cpp.ggml_abort_callback
        def should_abort(_data: ctypes.c_void_p) -> bool:
            interrupt = self._interrupt
            if interrupt is not None and interrupt():
                _aborting.set()
                return True
            return False

        self._abort_callback = should_abort  # referenced for as long as llama.cpp may call it
        llama_cpp.llama_set_abort_callback(self.llama._ctx.ctx, should_abort, None)

    # -- vocabulary -------------------------------------------------------------------------------------

    def _token_text(self, token: int) -> str:
        import llama_cpp

        return llama_cpp.llama_vocab_get_text(self._vocab, token).decode("utf-8", errors="replace")

    def _single_token_ids(self, spellings: tuple[str, ...]) -> set[int]:
        """Ids of those spellings that are one token in this vocabulary."""
        ids = set()
        for spelling in spellings:
            tokens = self.llama.tokenize(spelling.encode(), add_bos=False, special=True)
            if len(tokens) == 1 and self._token_text(tokens[0]).removeprefix("▁") == spelling:
                ids.add(tokens[0])
        return ids

    def _detect_template(self) -> FimTemplate:
        """The FIM template of this model, from its vocabulary and what llama.cpp read from its metadata."""
        import llama_cpp

        candidates = {m for t in known_templates().values() for m in t.markers}
        vocabulary = {self._token_text(i) for i in self._single_token_ids(tuple(candidates))}
        for getter in ("llama_vocab_fim_pre", "llama_vocab_fim_suf", "llama_vocab_fim_mid"):
            token = getattr(llama_cpp, getter)(self._vocab)
            if token >= 0:
                vocabulary.add(self._token_text(token))
        template = detect_template(vocabulary)
        if template is None:
            raise ConfigurationError(
                f"{self.model_path.name} has no fill-in-the-middle tokens of a family we know; "
                "choose a FIM-trained code model, or name its template family in engine.template"
            )
        return template

    def _ends_middle(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token)) or token in self._stop_token_ids

    def _tokens_starting_with(self, piece: bytes) -> list[int]:
        """Every token whose text starts with `piece` (`piece`'s own token among them)."""
        if self._pieces is None:
            # Once per model, when first needed: 0.4 s for Qwen's 151,936 tokens here; control tokens
            # detokenize to nothing and so never match.
            self._pieces = [self.llama.detokenize([token]) for token in range(self._vocab_size)]
        if piece not in self._starting_with:
            if len(self._starting_with) >= MAX_REMEMBERED_PIECES:
                self._starting_with.clear()
            self._starting_with[piece] = [t for t, text in enumerate(self._pieces) if text.startswith(piece)]
        return self._starting_with[piece]

    def _best_token(self, among: list[int] | None = None) -> int:
        """The model's first choice for the next token among `among`, or among all tokens but the
        end-of-generation ones: read from the logits of the last decode (greedy, as `generate` samples)."""
        import llama_cpp
        import numpy as np

        last = llama_cpp.llama_get_logits_ith(self.llama._ctx.ctx, -1)
        logits = np.ctypeslib.as_array(last, shape=(self._vocab_size,))
        if among is not None:
            return among[int(np.argmax(logits[among]))]
        if self._end_ids is None:
            # Once per model, when first needed: ~150,000 quick calls (0.14 s for Qwen's vocabulary here).
            self._end_ids = [token for token in range(self._vocab_size) if self._ends_middle(token)]
        logits = logits.copy()
        logits[self._end_ids] = -np.inf
        return int(np.argmax(logits))

    def _word_end_piece(self, tokens: list[int]) -> bytes:
        """The text of the prompt's last token when it is part of a word, else nothing."""
        if len(tokens) < 2:
            return b""
        piece = self.llama.detokenize(tokens[-1:])
        return piece if _WORD_PIECE.fullmatch(piece) else b""

    # -- Engine -----------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _reusable_prefix(self, tokens: list[int]) -> int:
        """How many leading tokens of `tokens` are already in the KV cache (at least one is re-evaluated,
        because sampling needs the logits of the prompt's last token)."""
        cached = self.llama.input_ids[: self.llama.n_tokens]
        limit = min(len(cached), len(tokens) - 1)
        shared = 0
        while shared < limit and cached[shared] == tokens[shared]:
            shared += 1
        return shared

    @staticmethod
    def _interruption(request: GenerationRequest) -> StopReason | None:
        """Why the request must stop now, if it must."""
        if request.cancel.cancelled:
            return "cancelled"
        if request.deadline is not None and time.monotonic() > request.deadline:
            return "deadline"
        return None

    def _evaluate_prompt(
        self, tokens: list[int], request: GenerationRequest
    ) -> tuple[int, StopReason | None]:
        """Evaluate all prompt tokens but the last, chunk by chunk; stop early when interrupted."""
        llama = self.llama
        shared = self._reusable_prefix(tokens) if request.reuse_cache else 0
        if request.reuse_cache and self._can_shift:
            shared = self._move_cached_runs(tokens, shared)
        if shared < llama.n_tokens:
            llama._ctx.kv_cache_seq_rm(-1, shared, -1)
            llama.n_tokens = shared
        position = shared
        while position < len(tokens) - 1:
            end = min(position + PROMPT_CHUNK_TOKENS, len(tokens) - 1)
            try:
                llama.eval(tokens[position:end])
            except RuntimeError:  # llama_decode aborted by our callback (or failed: re-raised)
                reason = self._interruption(request)
                if reason is None:
                    raise
                return llama.n_tokens - shared, reason
            position = end
        return len(tokens) - shared, None

    def _move_cached_runs(self, tokens: list[int], shared: int) -> int:
        """Shift the cached runs `reuse_plan` finds to where the new prompt has them; returns how many
        leading prompt tokens the cache then holds."""
        import llama_cpp

        llama = self.llama
        cached = list(llama.input_ids[: llama.n_tokens])
        runs, reused = reuse_plan(cached, tokens, shared)
        if not runs:
            return shared
        memory = llama_cpp.llama_get_memory(llama._ctx.ctx)
        for start, length, shift in runs:
            target = start + shift
            # What lies between the run's new place and its old one goes; then the run moves back.
            llama_cpp.llama_memory_seq_rm(memory, 0, target, start)
            llama_cpp.llama_memory_seq_add(memory, 0, start, start + length, shift)
            cached[target : target + length] = cached[start : start + length]
        llama_cpp.llama_memory_seq_rm(memory, 0, reused, -1)
        llama.input_ids[:reused] = cached[:reused]
        llama.n_tokens = reused
        logger.debug("reused %d cached tokens in %d shifted runs", reused - shared, len(runs))
        return reused

    def _prompt_tokens(self, request: GenerationRequest) -> list[int]:
        """The prompt's tokens, tokenized afresh from `split_at` on; too many for the context is an error."""
        split = request.split_at
        if split is not None and 0 < split < len(request.prompt):
            tokens = self.tokenize(request.prompt[:split]) + self.tokenize(request.prompt[split:])
        else:
            tokens = self.tokenize(request.prompt)
        if len(tokens) + request.max_tokens > self.llama.n_ctx():
            raise PromptTooLongError(
                f"prompt of {len(tokens)} tokens plus {request.max_tokens} new ones exceeds "
                f"the context of {self.llama.n_ctx()}"
            )
        return tokens

    @contextlib.contextmanager
    def _interruptible(self, request: GenerationRequest) -> Iterator[None]:
        """Let llama.cpp abort a decode when `request` is cancelled or out of time, and keep our record of
        the cache true after an abort."""
        self._interrupt = lambda: self._interruption(request) is not None
        _aborting.clear()
        try:
            yield
        finally:
            self._interrupt = None
            if _aborting.is_set():
                self._forget_aborted_tokens()

    def generate(self, request: GenerationRequest) -> Generation:
        tokens = self._prompt_tokens(request)
        healing = self._word_end_piece(tokens) if request.heal_word_end else b""
        if healing:
            tokens = tokens[:-1]
        with self._interruptible(request):
            return self._generate(tokens, request, healing)

    def warm(self, request: GenerationRequest) -> int:
        # All but the prompt's last token: the one a generation would evaluate for its first logits.
        tokens = self._prompt_tokens(request)
        with self._interruptible(request):
            evaluated, _ = self._evaluate_prompt(tokens, request)
        return evaluated

    def _forget_aborted_tokens(self) -> None:
        """After an aborted decode llama.cpp drops the failed batch's cells; keep our record of what the
        cache holds (llama-cpp-python's `n_tokens`) no longer than what is really there."""
        import llama_cpp

        memory = llama_cpp.llama_get_memory(self.llama._ctx.ctx)
        last = llama_cpp.llama_memory_seq_pos_max(memory, 0) if memory is not None else -1
        self.llama.n_tokens = max(0, min(self.llama.n_tokens, last + 1))

    def _generate(self, tokens: list[int], request: GenerationRequest, healing: bytes) -> Generation:
        """Write after `tokens`; with `healing`, the text taken off the prompt's end, the first token
        written must start with it, and what is returned is what follows it."""
        started = time.monotonic()
        evaluated, early_stop = self._evaluate_prompt(tokens, request)
        if early_stop is not None:
            return Generation("", early_stop, len(tokens), evaluated, 0, (time.monotonic() - started) * 1000)

        generated: list[int] = []
        text = ""
        restarts = 0
        reason: StopReason = "length"
        prompt_ms = 0.0
        first_token_at = None
        stream = self.llama.generate(tokens, temp=0.0, repeat_penalty=1.0, reset=True)
        while True:
            try:
                token = next(stream)
            except StopIteration:
                break
            except RuntimeError:  # a decode aborted by our callback (or failed: re-raised)
                interrupted = self._interruption(request)
                if interrupted is None:
                    raise
                reason = interrupted
                break
            if first_token_at is None:
                first_token_at = time.monotonic()
                prompt_ms = (first_token_at - started) * 1000
            restart = False
            if healing and not generated:
                if not self.llama.detokenize([token]).startswith(healing):
                    token, restart = self._best_token(self._tokens_starting_with(healing)), True
            elif self._ends_middle(token):
                if not request.write_something or text.strip() or restarts >= MAX_EMPTY_RESTARTS:
                    reason = "eot"
                    break
                token, restart = self._best_token(), True
                restarts += 1
                if self.llama.detokenize([token])[:1].isspace():
                    # The token brings its own space: the spaces before it were a run-up.
                    del generated[1 if healing else 0 :]
            generated.append(token)
            written = self.llama.detokenize(generated)[len(healing) :]
            text = written.decode("utf-8", errors="ignore")
            stop_at = _first_stop(text, request.stop)
            if stop_at is not None:
                text, reason = text[:stop_at], "stop"
                break
            if request.on_text is not None and request.on_text(text):
                reason = "stop"
                break
            if len(generated) >= request.max_tokens:
                break
            interrupted = self._interruption(request)
            if interrupted is not None:
                reason = interrupted
                break
            if restart:
                # The stream sampled an end we did not take: go on from the token chosen instead (the
                # prompt and what was written are cached, so only that token is evaluated).
                stream = self.llama.generate(tokens + generated, temp=0.0, repeat_penalty=1.0, reset=True)
        finished = time.monotonic()
        return Generation(
            text=text,
            stop_reason=reason,
            prompt_tokens=len(tokens),
            evaluated_tokens=evaluated,
            generated_tokens=len(generated),
            prompt_ms=prompt_ms,
            generate_ms=(finished - (first_token_at or finished)) * 1000,
        )

    def describe(self) -> dict[str, Any]:
        import llama_cpp

        return {
            "backend": "llama.cpp (embedded)",
            "gpu_offload": self.gpu_offload,
            "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
            "model": str(self.model_path),
            "template": self.template.family,
            "context": self.llama.n_ctx(),
            "load_seconds": round(self.load_seconds, 2),
        }

    def close(self) -> None:
        self.llama.close()


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    """Index in `text` where the first stop string begins, if any has been generated."""
    positions = [text.find(stop) for stop in stops if stop]
    found = [p for p in positions if p >= 0]
    return min(found) if found else None
