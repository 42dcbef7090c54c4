"""The completion service: owns the engine's life and the one worker thread the model runs on.

The server hands it requests; it makes the latest request per document win (an older generation is
told to stop, and its answer is empty), loads the model in the background, and reloads it when the
settings that shape it change. No LSP here, so the CLI and the benchmarks can use it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from fim_lsp import pipeline
from fim_lsp.cache import (
    MIB,
    CompletionCache,
    ShownCompletion,
    cache_key,
    context_window,
    typed_since,
    typed_through_candidates,
)
from fim_lsp.completion import REPEATABLE, Completion, CompletionRequest, Reason, Shape
from fim_lsp.config import AUTO_MODEL, Settings
from fim_lsp.engine import CancelToken, Engine, GenerationRequest, create_engine
from fim_lsp.errors import EngineUnavailableError, FimError, PromptTooLongError

logger = logging.getLogger(__name__)

State = Literal["idle", "loading", "ready", "error"]

#: Settings whose change means the engine must be built again.
_ENGINE_FIELDS = ("model", "adapter", "threads", "gpu_layers", "context_size", "prompt_memory_mb", "engine")
#: How much nicer than the server's other threads the model's worker runs (Linux): when both want a core,
#: answers that need no model (typed-through, the cache), cancels and the JSON-RPC traffic come first,
#: and the model loses nothing while they are idle. llama.cpp's compute threads are started from the
#: worker and inherit its niceness.
WORKER_NICENESS = 5
#: Seconds after a keystroke during which a request on its line counts as made while typing.
TYPING_S = 5.0
#: Places whose alternatives are remembered (the most recent ones), for the user cycling back to them.
REMEMBERED_ALTERNATIVES = 32
#: Each kind of cache warming's statistic of the prompt tokens it evaluated.
_EVALUATED_BY = {
    "warm_ups": "warm_up_evaluated_tokens",
    "prepared": "prepared_evaluated_tokens",
    "streamed": "streamed_evaluated_tokens",
}
#: What the cache holds for a place where the model ran and nothing was worth showing: asking there
#: again (a re-trigger, undo, the cursor moving back) would run the model to the same end.
NOTHING_TO_SHOW = ""


@dataclass(frozen=True)
class Status:
    """The service's state as users see it (status bar, `doctor`)."""

    state: State
    message: str
    error: FimError | None = None


class CompletionService:
    """Runs completions on one worker thread against an engine it loads and owns."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine_factory: Callable[[Settings], Engine] = create_engine,
        on_status: Callable[[Status], None] | None = None,
    ) -> None:
        self.settings = settings
        self._engine_factory = engine_factory
        self._on_status = on_status
        self._engine: Engine | None = None
        self._status = Status("idle", "not started")
        self._worker = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="fim-engine", initializer=_lower_worker_priority
        )
        self._latest: dict[str, CancelToken] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumps on every (re)load, so a stale load never installs its engine
        #: The model file a load failed on, and its state then: a changed file is loaded again.
        self._failed_model: tuple[Path, FileState] | None = None
        self.cache = CompletionCache(settings.cache_memory_mb * MIB)
        self._shown: dict[str, ShownCompletion] = {}
        #: The last request answered with several candidates, and its document: when the editor shows
        #: another of them, the prefetch follows it (one request, for one document).
        self._cycled: tuple[str, CompletionRequest] | None = None
        #: Where each document was last typed at (its line's start offset) and when, so that a request
        #: there is answered as one made while typing (see `pipeline.plan`).
        self._typing: dict[str, tuple[int, float]] = {}
        #: The other middles computed for a place (by cache key) when the user asked for alternatives.
        self._alternatives: dict[str, tuple[str, ...]] = {}
        self._prefetches: set[asyncio.Task[None]] = set()
        self._prefetch_tokens: set[CancelToken] = set()
        #: Counts the requests made, so that a warm-up knows whether one came after the request it is for.
        self._requests_made = 0
        #: Stops the running warm-up, if any: every new request does, since it needs the worker.
        self._warming: CancelToken | None = None
        #: The place (document, line start) whose prompt cut short for typing the running warm-up
        #: evaluates, if it does: a keystroke or request there lets it finish (`_warming_at_another_place`).
        self._warming_place: tuple[str, int] | None = None
        #: Counts the prompts prepared after keystrokes, so that only the newest one is evaluated.
        self._prepared = 0
        self.stats = {
            "requests": 0,
            "generated": 0,
            "cache_hits": 0,
            "typed_through": 0,
            "superseded": 0,
            "prompt_tokens": 0,
            "evaluated_tokens": 0,
            "generated_tokens": 0,
            "prefetched": 0,
            "prefetch_evaluated_tokens": 0,
            "warm_ups": 0,
            "warm_up_evaluated_tokens": 0,
            "prepared": 0,
            "prepared_evaluated_tokens": 0,
            "streamed": 0,
            "streamed_evaluated_tokens": 0,
        }

    @property
    def status(self) -> Status:
        return self._status

    @property
    def engine(self) -> Engine | None:
        return self._engine

    def _set_status(self, status: Status) -> None:
        self._status = status
        if self._on_status is not None:
            try:
                self._on_status(status)
            except Exception:  # a broken listener must not break the service
                logger.exception("status listener failed")

    # -- engine life ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the engine in the background; the status says when it is ready."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        engine = self.settings.engine
        if engine.kind != "embedded":
            what = f"connecting to {engine.url}"
        elif self.settings.model == AUTO_MODEL:
            what = "loading the model that fits this machine"
        else:
            what = f"loading {self.settings.model}"
        self._set_status(Status("loading", what))
        # Loading runs on the worker, so no completion can run against a half-replaced engine.
        self._worker.submit(self._load, generation, self.settings)

    def _load(self, generation: int, settings: Settings) -> None:
        if generation != self._generation:
            return
        old, self._engine = self._engine, None
        if old is not None:
            old.close()
        started = time.monotonic()
        try:
            engine = self._engine_factory(settings)
        except FimError as exc:
            logger.error("cannot load the model: %s", exc)
            path = _model_file(settings)
            self._failed_model = None if path is None else (path, _file_state(path))
            self._set_status(Status("error", str(exc), exc))
            return
        except Exception as exc:
            logger.exception("unexpected failure loading the model")
            self._set_status(Status("error", f"cannot load the model: {exc}", FimError(str(exc))))
            return
        self._engine, self._failed_model = engine, None
        facts = engine.describe()
        logger.info("engine ready in %.2f s: %s", time.monotonic() - started, facts)
        self._set_status(Status("ready", _ready_message(engine, facts)))

    def update_settings(self, settings: Settings) -> None:
        """Use new settings; reload the engine when one that shapes it changed."""
        old, self.settings = self.settings, settings
        self.cache.resize(settings.cache_memory_mb * MIB)
        if self._status.state == "idle":
            return  # not started yet: the first load will use these settings
        if any(getattr(old, name) != getattr(settings, name) for name in _ENGINE_FIELDS):
            logger.info("engine settings changed; reloading")
            self.start()

    def wait_ready(self, timeout: float | None = None) -> Status:
        """Block until the current load has finished (for the CLI and tests)."""
        self._worker.submit(lambda: None).result(timeout)
        return self._status

    # -- completions ------------------------------------------------------------------------------------

    def _supersede(self, key: str, *, spare_prefetch: bool = False) -> CancelToken:
        """A token for the newest request for `key`; the previous one is stopped. With `spare_prefetch`
        (an answer that needs no model) a running prefetch is not: typing the suggestion's characters
        still leads to the document it computes the answer for."""
        token = CancelToken()
        with self._lock:
            previous = self._latest.get(key)
            if spare_prefetch and previous in self._prefetch_tokens:
                return token
            self._latest[key] = token
        if previous is not None:
            previous.cancel()
        return token

    def cancel(self, key: str) -> None:
        """Stop the running completion for `key` (a document), if any."""
        with self._lock:
            token = self._latest.pop(key, None)
        if token is not None:
            token.cancel()

    def complete_sync(
        self, request: CompletionRequest, cancel: CancelToken | None = None, alternatives: int = 0
    ) -> Completion:
        """Run one completion (and up to `alternatives` other middles) on the calling thread (the worker,
        or a CLI that owns the engine)."""
        cancel = cancel or CancelToken()
        if cancel.cancelled:
            return Completion(None, Shape.NONE, Reason.SUPERSEDED)
        engine = self._engine
        if engine is None:
            self._reload_if_model_changed()
            detail = f"{self._status.state}: {self._status.message}"
            return Completion(None, Shape.NONE, Reason.ENGINE_NOT_READY, detail=detail)
        try:
            completion = pipeline.complete(
                request, self.settings, engine, cancel=cancel, alternatives=alternatives
            )
        except EngineUnavailableError as exc:
            # A remote server down or failing: one status per distinct fault, an empty answer per request.
            if self._status.state != "error" or self._status.message != str(exc):
                logger.warning("engine unavailable: %s", exc)
                self._set_status(Status("error", str(exc), exc))
            return Completion(None, Shape.NONE, Reason.ENGINE_UNAVAILABLE)
        except PromptTooLongError as exc:
            logger.info("no completion: %s", exc)
            return Completion(None, Shape.NONE, Reason.PROMPT_TOO_LONG)
        except Exception as exc:
            # A bug or a failure inside the engine or the pipeline (llama.cpp failing a decode, say): this
            # request gets no answer rather than an error the editor may pop up on each keystroke; the
            # status says what happened, once per distinct failure, and the next request tries again.
            message = f"completion failed: {type(exc).__name__}: {exc}"
            if self._status.state != "error" or self._status.message != message:
                logger.exception("%s", message)
                self._set_status(Status("error", message, FimError(message)))
            return Completion(None, Shape.NONE, Reason.ENGINE_ERROR)
        if self._status.state == "error" and self._engine is engine:
            logger.info("engine available again")
            self._set_status(Status("ready", _ready_message(engine, engine.describe())))
        return completion

    def _reload_if_model_changed(self) -> None:
        """After a load failed on its model file, load again once the file has changed (it is back, or
        whole again): a stat() per request while there is no engine, and no reload until then."""
        failed = self._failed_model
        if failed is not None and _file_state(failed[0]) != failed[1]:
            self._failed_model = None
            logger.info("the model file %s changed; loading it again", failed[0])
            self.start()

    def _cache_key(self, request: CompletionRequest) -> str:
        workspace_state = request.workspace.state if request.workspace is not None else ""
        return cache_key(request.text, request.offset, request.language_id, self.settings, workspace_state)

    def _answer_without_model(
        self, key: str, request: CompletionRequest, digest: str, *, with_alternatives: bool = False
    ) -> Completion | None:
        """An answer from what was shown or computed before, or None when the model must run (also when
        alternatives are asked for and none were computed for this place). Typing through the ghost
        text on screen is answered with the rest of the candidate the editor shows first, then those of
        the others that begin as typed; asked again where an answer is on screen, the candidate the
        editor shows stays first."""
        shown = self._shown.get(key)
        if shown is not None:
            rests = typed_through_candidates(shown, request.text, request.offset)
            if rests and (len(rests) > 1 or not with_alternatives):
                self.stats["typed_through"] += 1
                return Completion(rests[0], _shape_of(rests[0]), Reason.TYPED_THROUGH, alternatives=rests[1:])
        others = self._alternatives.get(digest)
        if with_alternatives and others is None:
            return None
        cached = self.cache.get(digest)
        if cached is None:
            return None
        self.stats["cache_hits"] += 1
        candidates = (cached, *(others or ())) if cached else ()
        if (
            shown is not None
            and candidates
            and set(candidates) == set(shown.candidates)
            and typed_since(shown, request.text, request.offset) == ""
        ):
            # A re-trigger, or an editor fetching more to cycle through, where this answer is on screen.
            candidates = shown.candidates
        if not candidates:
            return Completion(None, _shape_of(cached), Reason.CACHED)
        return Completion(candidates[0], _shape_of(candidates[0]), Reason.CACHED, alternatives=candidates[1:])

    def _remember(self, key: str, request: CompletionRequest, completion: Completion) -> None:
        if completion.text is None:
            self._shown.pop(key, None)
            return
        window = context_window(self.settings)
        self._shown[key] = ShownCompletion.at(
            request.text, request.offset, completion.text, window, completion.alternatives
        )
        if completion.alternatives:
            self._cycled = (key, request)
        elif self._cycled is not None and self._cycled[0] == key:
            self._cycled = None

    def show(self, key: str, text: str) -> bool:
        """The editor shows candidate `text` of the last answer for document `key`: typed-through
        answers follow it from now on, and so does the prefetch of what accepting it leads to. False
        when `text` is not a candidate of that answer (an answer since replaced it)."""
        shown = self._shown.get(key)
        chosen = shown.showing(text) if shown is not None else None
        if shown is None or chosen is None:
            return False
        if chosen.text == shown.text:
            return True
        self._shown[key] = chosen
        cycled = self._cycled
        if cycled is not None and cycled[0] == key and self.settings.prefetch and self.settings.reuse:
            self._prefetch(key, cycled[1], chosen.text)
        return True

    async def complete(
        self, key: str, request: CompletionRequest, *, alternatives: bool = False
    ) -> Completion:
        """Complete for document `key`; a newer request for the same key makes this one's answer empty.
        With `alternatives` (the user asked for suggestions, or to see the next one), other middles come
        with the first, up to the `alternatives` setting's count."""
        self.stats["requests"] += 1
        line = _line_start(request)
        made = self._stop_warming((key, line))
        typed = self._typing.get(key)
        if typed is not None and typed[0] == line and time.monotonic() - typed[1] < TYPING_S:
            request = replace(request, typing=True)
        digest = self._cache_key(request)
        others = max(0, self.settings.alternatives - 1) if alternatives else 0
        answer = None
        if self.settings.reuse:
            answer = self._answer_without_model(key, request, digest, with_alternatives=others > 0)
        if answer is not None:
            self._supersede(key, spare_prefetch=True)
            self._remember(key, request, answer)
            return answer
        self._stop_prefetches()  # of any document: the request would wait for the one worker otherwise
        token = self._supersede(key)
        loop = asyncio.get_running_loop()
        try:
            completion = await loop.run_in_executor(
                self._worker, self._complete_then_warm, request, token, made, others
            )
        except asyncio.CancelledError:
            token.cancel()  # $/cancelRequest: the generation stops at its next token
            raise
        finally:
            with self._lock:
                if self._latest.get(key) is token:
                    del self._latest[key]
        if token.cancelled:
            # Superseded while running: a late answer would be stale ghost text.
            self.stats["superseded"] += 1
            return Completion(
                None, completion.shape, Reason.SUPERSEDED, completion.generation, completion.timings_ms
            )
        if completion.generation is not None:
            self.stats["generated"] += 1
            self.stats["prompt_tokens"] += completion.generation.prompt_tokens
            self.stats["evaluated_tokens"] += completion.generation.evaluated_tokens
            self.stats["generated_tokens"] += completion.generation.generated_tokens
            if completion.plan is not None and completion.plan.shortened:
                self._prepare_whole(request, made)
            elif completion.reason is Reason.PARTIAL and completion.text is not None:
                if self.settings.prefetch and self.settings.reuse:
                    # The rest of the line, for when the part on screen is accepted or typed: asked as a
                    # request away from typing, so that it is written whole.
                    self._prefetch(key, replace(request, typing=False), completion.text)
            elif _worth_caching(completion):
                self.cache.put(digest, completion.text or NOTHING_TO_SHOW)
                if others:
                    self._alternatives[digest] = completion.alternatives
                    while len(self._alternatives) > REMEMBERED_ALTERNATIVES:
                        del self._alternatives[next(iter(self._alternatives))]
                stream = self._streamer(completion, made)
                prefetching = completion.text is not None and self.settings.prefetch and self.settings.reuse
                # The prefetch goes first (accepting is the likeliest next step); the stream after it.
                if not (prefetching and self._prefetch(key, request, completion.text or "", then=stream)):
                    stream()
        self._remember(key, request, completion)
        return completion

    def _prepare_whole(self, request: CompletionRequest, made: int) -> None:
        """After an answer from a prompt cut short for typing, evaluate the whole prompt on the worker,
        so that the next keystroke's request finds it (unless a newer request comes first)."""

        def evaluate() -> None:
            engine = self._engine
            if engine is None or made != self._requests_made:
                return
            for warm, _shortened in pipeline.prepare(replace(request, typing=False), self.settings, engine):
                self._warm_up(warm, made, counter="prepared")

        with contextlib.suppress(RuntimeError):  # the worker was shut down: the server is exiting
            self._worker.submit(evaluate)

    def _streamer(self, completion: Completion, made: int) -> Callable[[], None]:
        """What queues the evaluation of `completion`'s window in the file's own order on the worker
        (`pipeline.stream`), unless a newer request came first."""

        def stream() -> None:
            window = pipeline.stream(completion.plan) if completion.plan is not None else None
            if window is None or not self.settings.reuse:
                return
            with contextlib.suppress(RuntimeError):  # the worker was shut down: the server is exiting
                self._worker.submit(self._warm_up, window, made, "streamed")

        return stream

    def _stop_prefetches(self) -> None:
        with self._lock:
            prefetches = list(self._prefetch_tokens)
        for token in prefetches:
            token.cancel()

    def _stop_warming(self, place: tuple[str, int]) -> int:
        """Count a new request at `place` (document, line start) and stop the running warm-up, unless it
        evaluates the prompt cut short for typing there; returns the request's number."""
        with self._lock:
            self._requests_made += 1
            made, warming = self._requests_made, self._warming_at_another_place(place)
        if warming is not None:
            warming.cancel()
        return made

    def _warming_at_another_place(self, place: tuple[str, int]) -> CancelToken | None:
        """The running warm-up's token, unless it evaluates the prompt cut short for typing at `place`.
        That prompt is the start of the one the next keystroke or request there needs, and it is sized
        to take about `pipeline.TYPING_LATENCY_S`: stopped, it would lose the chunk in progress (on a slow
        machine all of it), again at every key, and the request would evaluate it from nothing."""
        if self._warming_place == place:
            return None
        return self._warming

    def _complete_then_warm(
        self, request: CompletionRequest, cancel: CancelToken, made: int, alternatives: int = 0
    ) -> Completion:
        """`complete_sync`, then, when typing (or the time budget) stopped the request before its prompt
        was evaluated, a warm-up queued on the worker: the user is typing on, and the next request will
        want that prompt again, all but its last line. Without it the worker would sit idle until that
        request came, and a prompt longer than the pauses between keys would never be evaluated."""
        completion = self.complete_sync(request, cancel, alternatives)
        if completion.warm_up is not None and self.settings.reuse:
            with contextlib.suppress(RuntimeError):  # the worker was shut down: the server is exiting
                self._worker.submit(self._warm_up, completion.warm_up, made)
        return completion

    def _warm_up(
        self,
        request: GenerationRequest,
        made: int,
        counter: str = "warm_ups",
        shortened_at: tuple[str, int] | None = None,
    ) -> None:
        """Evaluate `request` into the engine's cache, unless a request came after the one it is for; any
        request that comes meanwhile stops it, except one at `shortened_at`, the place whose prompt cut
        short for typing this is. `counter` names the statistic it counts in."""
        token = CancelToken()
        with self._lock:
            engine = self._engine
            if made != self._requests_made or engine is None:
                return
            self._warming, self._warming_place = token, shortened_at
        try:
            evaluated = engine.warm(replace(request, cancel=token))
        except FimError as exc:
            logger.info("warm-up failed: %s", exc)
            return
        except Exception:  # nobody waits for a warm-up: what went wrong is logged here or nowhere
            logger.exception("warm-up failed")
            return
        finally:
            with self._lock:
                if self._warming is token:
                    self._warming, self._warming_place = None, None
        if evaluated:  # engines that keep no cache of their own (remote ones) warm nothing
            self.stats[counter] += 1
            self.stats[_EVALUATED_BY[counter]] += evaluated

    def prepare(self, key: str, request: CompletionRequest) -> None:
        """Evaluate the prompt for `request` into the engine's cache before it is asked for: the user
        just typed there, and the editor asks after its debounce (Neovim 200 ms, VS Code about as long).
        Any request stops it, as it stops a warm-up; so does the next keystroke's, unless both are on
        the line whose prompt cut short for typing it evaluates (see `_warming_at_another_place`)."""
        place = (key, _line_start(request))
        self._typing[key] = (place[1], time.monotonic())
        if not self.settings.reuse or self._engine is None:
            return
        if not _follows_shown(self._shown.get(key), request):
            # The ghost text is gone from the screen: what accepting it would lead to will not be asked
            # for, and the keystroke's prompt would wait for that prefetch on the one worker.
            self._stop_prefetches()
        with self._lock:
            made, warming = self._requests_made, self._warming_at_another_place(place)
            self._prepared += 1
            prepared = self._prepared
        if warming is not None:
            warming.cancel()
        with contextlib.suppress(RuntimeError):  # the worker was shut down: the server is exiting
            self._worker.submit(self._prepare_now, place, request, made, prepared)

    def _prepare_now(
        self, place: tuple[str, int], request: CompletionRequest, made: int, prepared: int
    ) -> None:
        """The prompt the request after this keystroke will have: the one cut short for typing where the
        cache holds little of the whole (the cursor just moved to a new place), and then the whole one."""
        engine = self._engine
        if engine is None or made != self._requests_made or prepared != self._prepared:
            return  # a request, or a newer keystroke, came first
        try:
            warms = pipeline.prepare(replace(request, typing=True), self.settings, engine)
        except FimError as exc:
            logger.info("preparing a prompt failed: %s", exc)
            return
        for warm, shortened in warms:
            if made != self._requests_made or prepared != self._prepared:
                return
            self._warm_up(warm, made, counter="prepared", shortened_at=place if shortened else None)

    def _prefetch(
        self, key: str, request: CompletionRequest, shown: str, then: Callable[[], None] | None = None
    ) -> bool:
        """Start computing the answer for the document as it will be once `shown` is accepted, into the
        cache, and `then` after it. It holds the document's place as its latest request, so any newer
        request stops it. False when it does not start (its answer is cached, or a request is on its
        way)."""
        accepted = replace(
            request,
            text=request.text[: request.offset] + shown + request.text[request.offset :],
            offset=request.offset + len(shown),
            syntax=None,  # the tree is of the text before; the pipeline parses the prompt's window
            # The workspace snippets stay those for the cursor before: the rows above the cursor make
            # their query, and accepting rarely moves it more than a few rows.
        )
        digest = self._cache_key(accepted)
        if digest in self.cache:
            return False
        token = CancelToken()
        with self._lock:
            previous = self._latest.get(key)
            if previous is not None and previous not in self._prefetch_tokens:
                return False  # a newer request is already on its way
            self._latest[key] = token
            self._prefetch_tokens.add(token)
        if previous is not None:
            previous.cancel()  # the prefetch for a candidate no longer on screen
        task = asyncio.get_running_loop().create_task(self._run_prefetch(key, accepted, digest, token, then))
        self._prefetches.add(task)
        task.add_done_callback(self._prefetches.discard)
        return True

    async def _run_prefetch(
        self,
        key: str,
        request: CompletionRequest,
        digest: str,
        token: CancelToken,
        then: Callable[[], None] | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            completion = await loop.run_in_executor(self._worker, self.complete_sync, request, token)
        except RuntimeError:  # the worker was shut down first: the server is exiting
            return
        finally:
            with self._lock:
                self._prefetch_tokens.discard(token)
                if self._latest.get(key) is token:
                    del self._latest[key]
        if then is not None:
            then()
        if token.cancelled or completion.generation is None:
            return
        self.stats["prefetched"] += 1
        self.stats["prefetch_evaluated_tokens"] += completion.generation.evaluated_tokens
        if _worth_caching(completion):
            self.cache.put(digest, completion.text or NOTHING_TO_SHOW)

    async def prefetches_done(self) -> None:
        """Wait until no prefetch is running (for tests)."""
        while self._prefetches:
            await asyncio.gather(*self._prefetches, return_exceptions=True)

    def forget(self, key: str) -> None:
        """Drop what is remembered for a closed document."""
        self.cancel(key)
        self._shown.pop(key, None)
        self._typing.pop(key, None)
        if self._cycled is not None and self._cycled[0] == key:
            self._cycled = None

    def shutdown(self) -> None:
        """Stop every generation and release the model."""
        with self._lock:
            tokens, self._latest = list(self._latest.values()), {}
            self._generation += 1
            # Warm-ups, preparations and windows still queued on the worker see a request came after
            # them, and do nothing: the process would otherwise wait for them to finish before it exits.
            self._requests_made += 1
            if self._warming is not None:
                tokens.append(self._warming)
        for token in tokens:
            token.cancel()
        # Released on the worker, after whatever generation is running there has seen its cancel flag.
        self._worker.submit(self._release_engine)
        self._worker.shutdown(wait=False)

    def _release_engine(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()


def _lower_worker_priority() -> None:
    """Make the calling thread (the model's worker) `WORKER_NICENESS` nicer, where threads have their
    own niceness (Linux); elsewhere, or where it is refused, it keeps the process's."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + WORKER_NICENESS))
    except OSError as exc:
        logger.info("the model's worker keeps the server's priority: %s", exc)


#: A file's identity and version: inode, size, modification time (None: no such file).
FileState = tuple[int, int, int] | None


def _file_state(path: Path) -> FileState:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _model_file(settings: Settings) -> Path | None:
    """The file the embedded engine loads for these settings (where a known model's file goes)."""
    if settings.engine.kind != "embedded":
        return None
    from fim_lsp.models import cached_path, known_models

    try:
        models = known_models()
    except (FimError, OSError):
        return None
    name = settings.model
    if name == AUTO_MODEL:
        from fim_lsp.fit import choose_model

        name = choose_model(settings, measure=False).model
    if name in models:
        return cached_path(models[name])
    return Path(name).expanduser()


def _follows_shown(shown: ShownCompletion | None, request: CompletionRequest) -> bool:
    """Whether the edit just made (the document and cursor of `request`) typed, or accepted, the start
    of a candidate `shown` on screen, and changed nothing else near it."""
    if shown is None:
        return False
    typed = typed_since(shown, request.text, request.offset)
    return typed is not None and any(candidate.startswith(typed) for candidate in shown.candidates)


def _line_start(request: CompletionRequest) -> int:
    return request.text.rfind("\n", 0, request.offset) + 1


def _ready_message(engine: Engine, facts: dict[str, object]) -> str:
    """The status line of a ready engine: its template, and for the embedded one the model and why."""
    model, chosen = facts.get("model"), facts.get("chosen")
    if not isinstance(model, str) or not isinstance(chosen, str):
        return f"ready ({engine.template.family})"
    adapter = facts.get("adapter")
    with_adapter = f", with the adapter {Path(adapter).name}" if isinstance(adapter, str) else ""
    return f"ready ({Path(model).name}{with_adapter}: {chosen})"


def _worth_caching(completion: Completion) -> bool:
    """Whether an answer ended as the model or the rules ended it (not cut by a cancel or the deadline),
    so that the same prompt would get it again (shown or not); not one from a prompt cut short for
    typing, which the whole prompt's answer is to replace."""
    shortened = completion.plan is not None and completion.plan.shortened
    return completion.reason in REPEATABLE and not shortened


def _shape_of(text: str) -> Shape:
    return Shape.BLOCK if "\n" in text.strip("\n") else Shape.LINE
