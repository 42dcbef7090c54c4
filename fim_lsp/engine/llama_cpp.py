"""The embedded engine: llama.cpp in this process, through llama-cpp-python's bindings.

One model and one llama.cpp context stay loaded. The context's KV cache keeps several evaluated prompts
at once, one per sequence (`fim_lsp.engine.slots`): a prompt that shares its start with any of them
evaluates only the rest. We drive the decoding ourselves, a chunk of prompt tokens or one written token
per call, so a cancelled or superseded request stops within milliseconds (llama.cpp's abort callback
is asked between graph nodes), and generation is greedy: a completion should be deterministic.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fim_lsp.config import Settings
from fim_lsp.engine.base import Alternative, Engine, Generation, GenerationRequest, StopReason
from fim_lsp.engine.limits import first_stop
from fim_lsp.engine.llama_library import (
    aborting,
    check_gguf,
    cpu_extra_buffer_types,
    extra_buffers_work,
    maps_safely,
    route_llama_logs,
)
from fim_lsp.engine.slots import PromptSlots, Slot
from fim_lsp.engine.vocabulary import Vocabulary
from fim_lsp.errors import ModelCorruptError, PromptTooLongError
from fim_lsp.prompt import FimPrompt, template_for_family

logger = logging.getLogger(__name__)

#: Prompt tokens evaluated per llama_decode call. Cancellation does not wait for a chunk to finish
#: (llama.cpp's abort callback stops a decode between graph nodes, see `_install_abort_callback`), but an
#: aborted chunk is lost while finished ones stay cached: small chunks let a prompt's evaluation make
#: progress across requests that typing keeps cancelling. 128 evaluates 8% faster than 64 on two cores
#: (1.5B: 142 and 132 tokens/s) and still loses at most a second of work to an abort.
PROMPT_CHUNK_TOKENS = 128
#: Sequences of the KV cache: each keeps one evaluated prompt (see `fim_lsp.engine.slots`).
PROMPT_SLOTS = 4
#: Most alternative middles written beside the first; each takes a sequence of its own after the slots'.
MAX_ALTERNATIVES = 4
#: Evaluations shorter than this are left out of the measured prompt speed: the speed that sizes
#: prompts is a whole cold prompt's, and a few tokens go faster (fixed costs aside, each token costs
#: more the more context is before it).
RATE_MIN_TOKENS = 512
#: Weight of a new measurement in the running prompt and writing speeds.
RATE_WEIGHT = 0.3
#: Times a middle that ended before writing anything but spaces is made to go on (`write_something`):
#: a model that still wants to end after its best other tokens has nothing to say here.
MAX_EMPTY_RESTARTS = 2


@dataclass
class RunningRate:
    """A speed in tokens a second, measured as work is done (a running average)."""

    value: float | None = None

    def observe(self, tokens: int, seconds: float) -> None:
        if seconds <= 0 or tokens <= 0:
            return
        seen = tokens / seconds
        self.value = seen if self.value is None else self.value + RATE_WEIGHT * (seen - self.value)


@dataclass
class _Writing:
    """What one candidate middle has written so far, in its llama.cpp sequence."""

    seq: int
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    restarts: int = 0
    """Ends of the model's not taken (`write_something`)."""
    log_probability: float = 0.0
    """Sum of the log-probabilities of the tokens chosen."""
    reason: StopReason | None = None
    """Why it stopped; None while it writes."""

    def add_log_probability(self, logits: Any, token: int) -> None:
        import numpy as np

        top = float(logits.max())
        self.log_probability += float(logits[token]) - top - float(np.log(np.exp(logits - top).sum()))

    def mean_log_probability(self) -> float:
        return self.log_probability / max(1, len(self.tokens))


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
        prompt_memory_mb: int = 256,
        adapter: Path | None = None,
    ) -> None:
        import llama_cpp
        from llama_cpp import _internals

        route_llama_logs()
        check_gguf(model_path)
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.threads = threads = n_threads or os.cpu_count() or 1
        self.gpu_offload = bool(llama_cpp.llama_supports_gpu_offload()) and n_gpu_layers != 0
        started = time.monotonic()
        model_params = llama_cpp.llama_model_default_params()
        model_params.n_gpu_layers = n_gpu_layers if self.gpu_offload else 0
        model_params.load_mode = (
            llama_cpp.LLAMA_LOAD_MODE_MMAP if use_mmap else llama_cpp.LLAMA_LOAD_MODE_NONE
        )
        extra_buffers = cpu_extra_buffer_types()
        model_params.use_extra_bufts = extra_buffers_work(model_path, extra_buffers)
        if not model_params.use_extra_bufts:
            logger.warning(
                "this llama.cpp build offers the %s buffer types here, and its AMX kernels crash on this"
                " CPU (llama.cpp issue 20824): the weights stay in plain CPU buffers, slower but safe",
                ", ".join(extra_buffers),
            )
        try:
            # verbose=True only stops llama-cpp-python from pointing file descriptors 1 and 2 at
            # /dev/null while it loads; llama.cpp's log lines reach our logger (route_llama_logs).
            self._model = _internals.LlamaModel(path_model=str(model_path), params=model_params, verbose=True)
        except (ValueError, RuntimeError) as exc:
            raise ModelCorruptError(f"llama.cpp could not load {model_path}: {exc}") from exc
        self.cache_cells = self._cache_cells(prompt_memory_mb)
        context_params = llama_cpp.llama_context_default_params()
        context_params.n_ctx = self.cache_cells
        context_params.n_batch = context_params.n_ubatch = 512
        context_params.n_seq_max = PROMPT_SLOTS + MAX_ALTERNATIVES
        # One buffer for every sequence, so that one takes over another's start without a copy.
        context_params.kv_unified = True
        context_params.n_threads = context_params.n_threads_batch = threads
        context_params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        context_params.no_perf = True
        try:
            self._context = _internals.LlamaContext(model=self._model, params=context_params, verbose=True)
        except ValueError as exc:
            self._model.close()
            raise ModelCorruptError(f"llama.cpp could not make a context for {model_path}: {exc}") from exc
        self._ctx = self._context.ctx
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(PROMPT_CHUNK_TOKENS, 0, PROMPT_SLOTS + MAX_ALTERNATIVES)
        self.adapter = adapter
        self._adapter = self._load_adapter(adapter) if adapter is not None else None
        self.load_seconds = time.monotonic() - started
        self._interrupt: Callable[[], bool] | None = None
        self._install_abort_callback()
        self.vocabulary = Vocabulary(self._model)
        self.template = (
            template_for_family(template_family)
            if template_family
            else self.vocabulary.fim_template(model_path.name)
        )
        self.vocabulary.stop_at(self.template)
        self.slots = PromptSlots(PROMPT_SLOTS, self.cache_cells)
        self.prompt_speed = RunningRate()
        self.write_speed = RunningRate()
        #: Why this model was loaded (the `auto` setting's choice, or the settings naming it).
        self.choice = "named by path"
        logger.info(
            "loaded %s in %.2f s (%s, template %s, %d threads, gpu offload %s, %d cache cells)",
            model_path.name,
            self.load_seconds,
            "mapped" if use_mmap else "read into memory",
            self.template.family,
            threads,
            self.gpu_offload,
            self.cache_cells,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> LlamaCppEngine:
        from fim_lsp.fit import choose_model, known_speed
        from fim_lsp.models import known_models, resolve_model

        choice = choose_model(settings)
        path = choice.weights or resolve_model(choice.model)
        from fim_lsp.warmup.adapters import adapter_for

        adapter = adapter_for(settings, path)
        engine = cls(
            path,
            n_ctx=settings.context_size,
            n_threads=settings.threads,
            n_gpu_layers=settings.gpu_layers,
            template_family=settings.engine.template,
            use_mmap=maps_safely(path),
            prompt_memory_mb=settings.prompt_memory_mb,
            adapter=adapter,
        )
        engine.choice = choice.reason
        manifest = known_models().get(choice.model)
        speed = choice.speed
        if speed is None and manifest is not None:
            speed = known_speed(manifest, settings.threads)
        if speed is not None:
            # Prompts are sized from the first request on; the engine's own measurements take over.
            engine.prompt_speed.value = speed.prompt
            engine.write_speed.value = speed.writing
        return engine

    def _cache_cells(self, memory_mb: int) -> int:
        """Cells of the KV cache: what `memory_mb` holds at this model's size per token, at least one
        prompt's context and at most one per slot."""
        per_token = self.kv_bytes_per_token()
        cells = memory_mb * 1024 * 1024 // per_token
        return int(min(max(cells, self.n_ctx), self.n_ctx * PROMPT_SLOTS))

    def kv_bytes_per_token(self) -> int:
        """Bytes a token's keys and values take in the cache (16-bit floats, every layer)."""
        import llama_cpp

        model = self._model.model
        head_size = llama_cpp.llama_model_n_embd(model) // max(1, llama_cpp.llama_model_n_head(model))
        per_layer = 2 * llama_cpp.llama_model_n_head_kv(model) * head_size * 2
        return int(llama_cpp.llama_model_n_layer(model) * per_layer)

    def _load_adapter(self, path: Path) -> Any:
        """Apply a GGUF LoRA adapter to the context (llama.cpp adds it over the quantized weights)."""
        import llama_cpp

        adapter = llama_cpp.llama_adapter_lora_init(self._model.model, str(path).encode("utf-8"))
        if not adapter:
            raise ModelCorruptError(f"llama.cpp could not load the adapter {path}")
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(1.0)
        llama_cpp.llama_set_adapters_lora(self._ctx, adapters, 1, scales)
        return adapter

    def _install_abort_callback(self) -> None:
        """Let llama.cpp ask, between graph nodes of a decode, whether the running request was cancelled
        or ran out of time, so a superseded generation stops within milliseconds, not after a chunk."""
        import llama_cpp

        @llama_cpp.ggml_abort_callback
        def should_abort(_data: ctypes.c_void_p) -> bool:
            interrupt = self._interrupt
            if interrupt is not None and interrupt():
                aborting.set()
                return True
            return False

        self._abort_callback = should_abort  # referenced for as long as llama.cpp may call it
        llama_cpp.llama_set_abort_callback(self._ctx, should_abort, None)

    def _logits(self, index: int = -1) -> Any:
        """A copy of the logits of the `index`th token of the last batch (the last one by default)."""
        import llama_cpp
        import numpy as np

        row = llama_cpp.llama_get_logits_ith(self._ctx, index)
        return np.ctypeslib.as_array(row, shape=(self.vocabulary.size,)).copy()

    # -- tokens -----------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        return self.vocabulary.tokenize(text)

    def detokenize(self, tokens: list[int]) -> bytes:
        return self.vocabulary.detokenize(tokens)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def prompt_tokens(self, prompt: FimPrompt, *, before_line: bool = False) -> list[int]:
        """The prompt's tokens, each of the template's pieces tokenized apart (see `FimTemplate.pieces`)."""
        pieces = self.template.pieces(prompt, before_line=before_line)
        return [token for piece in pieces for token in self.tokenize(piece)]

    def _checked_tokens(self, request: GenerationRequest) -> list[int]:
        tokens = self.prompt_tokens(request.prompt, before_line=request.before_line)
        if len(tokens) + request.max_tokens > self.n_ctx:
            raise PromptTooLongError(
                f"prompt of {len(tokens)} tokens plus {request.max_tokens} new ones exceeds "
                f"the context of {self.n_ctx}"
            )
        return tokens

    def uncached_tokens(self, prompt: FimPrompt) -> int:
        tokens = self.prompt_tokens(prompt)
        _, shared = self.slots.best_start(tokens)
        return len(tokens) - min(shared, len(tokens) - 1)

    def prompt_rate(self) -> float | None:
        return self.prompt_speed.value

    def write_rate(self) -> float | None:
        return self.write_speed.value

    # -- the KV cache -----------------------------------------------------------------------------------

    def _place(self, tokens: list[int], room: int) -> tuple[Slot, int]:
        """The slot `tokens` are evaluated into, holding their shared start already; and its length."""
        import llama_cpp

        placement = self.slots.place(tokens, room)
        for slot in placement.dropped:
            llama_cpp.llama_memory_seq_rm(self._memory, slot.seq, -1, -1)
            self.slots.clear(slot)
        target, source = placement.target, placement.source
        # At least the prompt's last token is evaluated: its logits choose the first token written.
        shared = min(placement.shared, len(tokens) - 1)
        if source is target:
            llama_cpp.llama_memory_seq_rm(self._memory, target.seq, shared, -1)
        else:
            llama_cpp.llama_memory_seq_rm(self._memory, target.seq, -1, -1)
            if source is not None and shared:
                llama_cpp.llama_memory_seq_cp(self._memory, source.seq, target.seq, 0, shared)
        self.slots.take_over(target, source, shared)
        if shared:
            logger.debug("prompt of %d tokens: %d found in sequence %d", len(tokens), shared, target.seq)
        return target, shared

    def _decode(self, slot: Slot, tokens: list[int], logits: bool) -> None:
        """Decode `tokens` into `slot` after what it holds (logits for the last one when asked)."""
        import llama_cpp

        batch = self._batch
        start = len(slot.tokens)
        batch.n_tokens = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = start + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = slot.seq
            batch.logits[i] = logits and i == len(tokens) - 1
        result = llama_cpp.llama_decode(self._ctx, batch)
        if result != 0:
            raise _DecodeFailed(result)
        self.slots.evaluated(slot, tokens)

    def _evaluate(self, slot: Slot, tokens: list[int], request: GenerationRequest) -> StopReason | None:
        """Decode `tokens[len(slot.tokens):-1]` into `slot`, chunk by chunk; stop early when interrupted."""
        began, first = time.monotonic(), len(slot.tokens)
        while len(slot.tokens) < len(tokens) - 1:
            start = len(slot.tokens)
            chunk = tokens[start : min(start + PROMPT_CHUNK_TOKENS, len(tokens) - 1)]
            try:
                self._decode(slot, chunk, logits=False)
            except _DecodeFailed:
                reason = request.interruption()
                if reason is None:
                    raise
                return reason
        if len(slot.tokens) - first >= RATE_MIN_TOKENS:
            self.prompt_speed.observe(len(slot.tokens) - first, time.monotonic() - began)
        return None

    def _forget_aborted_tokens(self) -> None:
        """After an aborted decode llama.cpp drops the failed batch's cells; keep each slot's record no
        longer than what its sequence really holds."""
        import llama_cpp

        for slot in self.slots.slots:
            held = llama_cpp.llama_memory_seq_pos_max(self._memory, slot.seq) + 1
            if held < len(slot.tokens):
                self.slots.truncate(slot, max(0, held))
            elif held > len(slot.tokens):
                llama_cpp.llama_memory_seq_rm(self._memory, slot.seq, len(slot.tokens), -1)

    @contextlib.contextmanager
    def _interruptible(self, request: GenerationRequest) -> Iterator[None]:
        """Let llama.cpp abort a decode when `request` is cancelled or out of time, and keep our record of
        the cache true after an abort."""
        self._interrupt = lambda: request.interruption() is not None
        aborting.clear()
        try:
            yield
        except _DecodeFailed as exc:
            raise RuntimeError(f"llama_decode failed ({exc.args[0]})") from exc
        finally:
            self._interrupt = None
            if aborting.is_set():
                self._forget_aborted_tokens()

    def forget(self) -> None:
        """Empty the cache: the next prompt is evaluated whole (benchmarks timing cold prompts)."""
        import llama_cpp

        llama_cpp.llama_memory_clear(self._memory, True)
        self.slots.clear_all()

    # -- Engine -----------------------------------------------------------------------------------------

    def warm(self, request: GenerationRequest) -> int:
        # All but the prompt's last token: the one a generation would evaluate for its first logits.
        tokens = self._checked_tokens(request)
        with self._interruptible(request):
            slot, shared = self._place(tokens, room=0)
            self._evaluate(slot, tokens, request)
        return len(slot.tokens) - shared

    def generate(self, request: GenerationRequest) -> Generation:
        tokens = self._checked_tokens(request)
        healing = self.vocabulary.word_end_piece(tokens) if request.heal_word_end else b""
        if healing:
            tokens = tokens[:-1]
        started = time.monotonic()
        with self._interruptible(request):
            if not request.reuse_cache:
                self.forget()
            slot, shared = self._place(tokens, room=request.max_tokens * (1 + request.alternatives))
            early_stop = self._evaluate(slot, tokens, request)
            evaluated = len(slot.tokens) - shared
            if early_stop is not None:
                return Generation(
                    "", early_stop, len(tokens), evaluated, 0, (time.monotonic() - started) * 1000
                )
            return self._write(slot, tokens, request, healing, started, evaluated)

    def _write(
        self,
        slot: Slot,
        tokens: list[int],
        request: GenerationRequest,
        healing: bytes,
        started: float,
        evaluated: int,
    ) -> Generation:
        """Generate after the evaluated prompt, greedy, until the middle is done. Alternatives come after
        the first middle is whole, so that it is the same middle, as soon, as without them: each starts
        from one of the model's next best first tokens, in a sequence of its own that shares the prompt's
        cells, and they are written together, one batch a step."""
        main = _Writing(slot.seq)
        branches: list[_Writing] = []
        first_token_at: float | None = None
        main_done: float | None = None
        interrupted: StopReason | None = None
        try:
            self._decode(slot, tokens[-1:], logits=True)
            evaluated += 1
            first_token_at = time.monotonic()
            first_logits = self._logits()
            interrupted = self._write_together(
                [main], {id(main): first_logits}, slot, tokens, request, healing
            )
            main_done = time.monotonic()
            if interrupted is None and request.alternatives > 0:
                first = main.tokens[0] if main.tokens else None
                branches = self._branch(slot, len(tokens), request, healing, first_logits, first)
                interrupted = self._write_together(branches, {}, slot, tokens, request, healing)
        except _DecodeFailed:
            interrupted = request.interruption()
            if interrupted is None:
                raise
        finally:
            self._forget_branches(branches)
        for writing in (main, *branches):
            if writing.reason is None:
                writing.reason = interrupted or "length"
        finished = time.monotonic()
        if first_token_at is not None and len(main.tokens) > 1:
            self.write_speed.observe(len(main.tokens) - 1, finished - first_token_at)
        return Generation(
            text=main.text,
            stop_reason=main.reason or "length",
            prompt_tokens=len(tokens),
            evaluated_tokens=evaluated,
            generated_tokens=len(main.tokens),
            prompt_ms=((first_token_at or finished) - started) * 1000,
            generate_ms=(finished - (first_token_at or finished)) * 1000,
            log_probability=main.mean_log_probability(),
            alternatives=[
                Alternative(w.text, w.reason or "length", w.mean_log_probability()) for w in branches
            ],
            alternatives_ms=(finished - main_done) * 1000 if branches and main_done is not None else 0.0,
        )

    def _write_together(
        self,
        writings: list[_Writing],
        logits_of: dict[int, Any],
        slot: Slot,
        tokens: list[int],
        request: GenerationRequest,
        healing: bytes,
    ) -> StopReason | None:
        """Write each of `writings` until it stops, all in one batch a step; a writing with logits in
        `logits_of` chooses its next token from them, the others have theirs chosen (`_branch`). Returns
        why they were interrupted, if they were."""
        choices = {
            id(w): self._next_token(w, request, healing, logits_of[id(w)])
            for w in writings
            if id(w) in logits_of
        }
        choices.update({id(w): (w.tokens.pop(), False) for w in writings if id(w) not in logits_of})
        while True:
            going = [w for w in writings if self._take(w, choices[id(w)], slot, tokens, request, healing)]
            if not going:
                return None
            interrupted = request.interruption()
            if interrupted is not None:
                return interrupted
            self._decode_step(slot, going, len(tokens))
            for index, writing in enumerate(going):
                choices[id(writing)] = self._next_token(writing, request, healing, self._logits(index))

    def _take(
        self,
        writing: _Writing,
        choice: tuple[int | None, bool],
        slot: Slot,
        tokens: list[int],
        request: GenerationRequest,
        healing: bytes,
    ) -> bool:
        """Add the chosen token to what `writing` wrote; whether it goes on (its token is to be decoded)."""
        if writing.reason is not None:
            return False
        token, forced = choice
        if token is None:
            writing.reason = "eot"
            return False
        healed = 1 if healing else 0
        if forced and writing.tokens[healed:] and self.detokenize([token])[:1].isspace():
            # The forced token brings its own space: the spaces written before it were a run-up.
            self._rewind(slot, len(tokens) + healed)
            del writing.tokens[healed:]
        writing.tokens.append(token)
        writing.text = self.detokenize(writing.tokens)[len(healing) :].decode("utf-8", errors="ignore")
        stop_at = first_stop(writing.text, request.stop)
        if stop_at is not None:
            writing.text, writing.reason = writing.text[:stop_at], "stop"
        elif request.on_text is not None and request.on_text(writing.text):
            writing.reason = "stop"
        return writing.reason is None

    def _next_token(
        self, writing: _Writing, request: GenerationRequest, healing: bytes, logits: Any
    ) -> tuple[int | None, bool]:
        """The next token `writing` writes, from its last decode's `logits` (None when it stops: the
        middle ends, or the cap is reached), and whether it was written instead of the model's end
        (`write_something`, the first candidate only). The token's log-probability is added to the
        writing's.

        At the token cap the model is asked once more, for its end only: a middle whose last line took
        the cap's every token (a row of numbers, which Qwen writes a digit a token) is whole when the model
        would end it there, and is shown as such rather than cut as unfinished."""
        if len(writing.tokens) >= request.max_tokens:
            if not self.vocabulary.ends_middle(self.vocabulary.best(logits)):
                writing.reason = "length"
            return None, False
        if healing and not writing.tokens:
            token = self.vocabulary.best(logits, self.vocabulary.starting_with(healing))
            writing.add_log_probability(logits, token)
            return token, False
        token = self.vocabulary.best(logits)
        if not self.vocabulary.ends_middle(token):
            writing.add_log_probability(logits, token)
            return token, False
        first_candidate = writing.seq < PROMPT_SLOTS
        allowed = request.write_something and first_candidate
        if not allowed or writing.text.strip() or writing.restarts >= MAX_EMPTY_RESTARTS:
            return None, False
        writing.restarts += 1
        token = self.vocabulary.best(logits, no_end=True)
        writing.add_log_probability(logits, token)
        return token, True

    def _branch(
        self,
        slot: Slot,
        prompt_length: int,
        request: GenerationRequest,
        healing: bytes,
        logits: Any,
        main: int | None,
    ) -> list[_Writing]:
        """The alternatives' writings, each holding its first token: the model's next best first tokens
        after the main one's (ends of text aside; with healing, among those that start with the healed
        text), each in a sequence that takes over the prompt's cells from `slot`'s."""
        import llama_cpp
        import numpy as np

        count = min(request.alternatives, MAX_ALTERNATIVES)
        if count <= 0:
            return []
        among = self.vocabulary.starting_with(healing) if healing else None
        ranked = np.argsort(-logits[among]) if among is not None else np.argsort(-logits)
        firsts: list[int] = []
        for index in ranked[: 8 * count + 8]:
            token = int(among[index]) if among is not None else int(index)
            if token != main and not self.vocabulary.ends_middle(token):
                firsts.append(token)
            if len(firsts) == count:
                break
        branches = []
        for number, token in enumerate(firsts):
            seq = PROMPT_SLOTS + number
            llama_cpp.llama_memory_seq_rm(self._memory, seq, -1, -1)
            llama_cpp.llama_memory_seq_cp(self._memory, slot.seq, seq, 0, prompt_length)
            writing = _Writing(seq, tokens=[token])
            writing.add_log_probability(logits, token)
            branches.append(writing)
        return branches

    def _decode_step(self, slot: Slot, writings: list[_Writing], prompt_length: int) -> None:
        """Decode each writing's last token in its own sequence, all in one batch, logits for each."""
        import llama_cpp

        batch = self._batch
        batch.n_tokens = len(writings)
        for index, writing in enumerate(writings):
            batch.token[index] = writing.tokens[-1]
            batch.pos[index] = prompt_length + len(writing.tokens) - 1
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = writing.seq
            batch.logits[index] = True
        result = llama_cpp.llama_decode(self._ctx, batch)
        if result != 0:
            raise _DecodeFailed(result)
        for writing in writings:
            if writing.seq == slot.seq:
                self.slots.evaluated(slot, writing.tokens[-1:])

    def _forget_branches(self, branches: list[_Writing]) -> None:
        import llama_cpp

        for writing in branches:
            llama_cpp.llama_memory_seq_rm(self._memory, writing.seq, -1, -1)

    def _rewind(self, slot: Slot, length: int) -> None:
        """Take `slot` back to its first `length` tokens, in llama.cpp's cache and in the record."""
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(self._memory, slot.seq, length, -1)
        self.slots.truncate(slot, length)

    def cache_usage(self) -> dict[str, int]:
        per_token = self.kv_bytes_per_token()
        return {
            "prompt_cache_cells": self.cache_cells,
            "prompt_cache_cells_in_use": self.slots.cells_in_use(),
            "prompt_cache_mib": self.cache_cells * per_token // (1024 * 1024),
        }

    def describe(self) -> dict[str, Any]:
        import llama_cpp

        return {
            "backend": "llama.cpp (embedded)",
            "gpu_offload": self.gpu_offload,
            "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
            "model": str(self.model_path),
            "adapter": str(self.adapter) if self.adapter else None,
            "template": self.template.family,
            "context": self.n_ctx,
            "cache_cells": self.cache_cells,
            "load_seconds": round(self.load_seconds, 2),
            "chosen": self.choice,
            "prompt_tokens_per_second": self.prompt_speed.value and round(self.prompt_speed.value),
        }

    def close(self) -> None:
        import llama_cpp

        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._adapter is not None:
            llama_cpp.llama_adapter_lora_free(self._adapter)
            self._adapter = None
        self._context.close()
        self._model.close()


class _DecodeFailed(Exception):
    """llama_decode returned an error: aborted by our callback (a cancel or the deadline), or failed."""
