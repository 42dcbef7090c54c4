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
from fim_lsp.cache import MIB, CompletionCache, ShownCompletion, cache_key, context_window, typed_through
from fim_lsp.config import Settings
from fim_lsp.engine import CancelToken, Engine, GenerationRequest, create_engine
from fim_lsp.errors import EngineUnavailableError, FimError, PromptTooLongError
from fim_lsp.pipeline import Completion, CompletionRequest, Shape

logger = logging.getLogger(__name__)

State = Literal["idle", "loading", "ready", "error"]

#: Settings whose change means the engine must be built again.
_ENGINE_FIELDS = ("model", "adapter", "threads", "gpu_layers", "context_size", "engine")
#: How much nicer than the server's other threads the model's worker runs (Linux): when both want a core,
#: answers that need no model (typed-through, the cache), cancels and the JSON-RPC traffic come first,
#: and the model loses nothing while they are idle. llama.cpp's compute threads are started from the
#: worker and inherit its niceness.
WORKER_NICENESS = 5
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
        self._prefetches: set[asyncio.Task[None]] = set()
        self._prefetch_tokens: set[CancelToken] = set()
        #: Counts the requests made, so that a warm-up knows whether one came after the request it is for.
        self._requests_made = 0
        #: Stops the running warm-up, if any: every new request does, since it needs the worker.
        self._warming: CancelToken | None = None
        self.stats = {
            "requests": 0,
            "generated": 0,
            "cache_hits": 0,
            "typed_through": 0,
            "superseded": 0,
            "prompt_tokens": 0,
            "evaluated_tokens": 0,
            "prefetched": 0,
            "prefetch_evaluated_tokens": 0,
            "warm_ups": 0,
            "warm_up_evaluated_tokens": 0,
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
        what = (
            f"loading {self.settings.model}" if engine.kind == "embedded" else f"connecting to {engine.url}"
        )
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
        logger.info("engine ready in %.2f s: %s", time.monotonic() - started, engine.describe())
        self._set_status(Status("ready", f"ready ({engine.template.family})"))

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

    def complete_sync(self, request: CompletionRequest, cancel: CancelToken | None = None) -> Completion:
        """Run one completion on the calling thread (the worker, or a CLI that owns the engine)."""
        cancel = cancel or CancelToken()
        if cancel.cancelled:
            return Completion(None, Shape.NONE, "superseded")
        engine = self._engine
        if engine is None:
            self._reload_if_model_changed()
            return Completion(None, Shape.NONE, f"engine {self._status.state}: {self._status.message}")
        try:
            completion = pipeline.complete(request, self.settings, engine, cancel=cancel)
        except EngineUnavailableError as exc:
            # A remote server down or failing: one status per distinct fault, an empty answer per request.
            if self._status.state != "error" or self._status.message != str(exc):
                logger.warning("engine unavailable: %s", exc)
                self._set_status(Status("error", str(exc), exc))
            return Completion(None, Shape.NONE, "engine unavailable")
        except PromptTooLongError as exc:
            logger.info("no completion: %s", exc)
            return Completion(None, Shape.NONE, "prompt too long")
        except Exception as exc:
            # A bug or a failure inside the engine or the pipeline (llama.cpp failing a decode, say): this
            # request gets no answer rather than an error the editor may pop up on each keystroke; the
            # status says what happened, once per distinct failure, and the next request tries again.
            message = f"completion failed: {type(exc).__name__}: {exc}"
            if self._status.state != "error" or self._status.message != message:
                logger.exception("%s", message)
                self._set_status(Status("error", message, FimError(message)))
            return Completion(None, Shape.NONE, "engine error")
        if self._status.state == "error" and self._engine is engine:
            logger.info("engine available again")
            self._set_status(Status("ready", f"ready ({engine.template.family})"))
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

    def _answer_without_model(self, key: str, request: CompletionRequest, digest: str) -> Completion | None:
        """An answer from what was shown or computed before, or None when the model must run."""
        shown = self._shown.get(key)
        if shown is not None:
            rest = typed_through(shown, request.text, request.offset)
            if rest is not None:
                self.stats["typed_through"] += 1
                return Completion(rest, _shape_of(rest), "typed-through")
        cached = self.cache.get(digest)
        if cached is not None:
            self.stats["cache_hits"] += 1
            return Completion(cached or None, _shape_of(cached), "cached")
        return None

    def _remember(self, key: str, request: CompletionRequest, completion: Completion) -> None:
        if completion.text is None:
            self._shown.pop(key, None)
            return
        window = context_window(self.settings)
        self._shown[key] = ShownCompletion.at(request.text, request.offset, completion.text, window)

    async def complete(self, key: str, request: CompletionRequest) -> Completion:
        """Complete for document `key`; a newer request for the same key makes this one's answer empty."""
        self.stats["requests"] += 1
        made = self._stop_warming()
        digest = self._cache_key(request)
        answer = self._answer_without_model(key, request, digest) if self.settings.reuse else None
        if answer is not None:
            self._supersede(key, spare_prefetch=True)
            self._remember(key, request, answer)
            return answer
        self._stop_prefetches()  # of any document: the request would wait for the one worker otherwise
        token = self._supersede(key)
        loop = asyncio.get_running_loop()
        try:
            completion = await loop.run_in_executor(
                self._worker, self._complete_then_warm, request, token, made
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
                None, completion.shape, "superseded", completion.generation, completion.timings_ms
            )
        if completion.generation is not None:
            self.stats["generated"] += 1
            self.stats["prompt_tokens"] += completion.generation.prompt_tokens
            self.stats["evaluated_tokens"] += completion.generation.evaluated_tokens
            if _worth_caching(completion):
                self.cache.put(digest, completion.text or NOTHING_TO_SHOW)
                if completion.text is not None and self.settings.prefetch and self.settings.reuse:
                    self._prefetch(key, request, completion.text)
        self._remember(key, request, completion)
        return completion

    def _stop_prefetches(self) -> None:
        with self._lock:
            prefetches = list(self._prefetch_tokens)
        for token in prefetches:
            token.cancel()

    def _stop_warming(self) -> int:
        """Count a new request and stop the running warm-up; returns the request's number."""
        with self._lock:
            self._requests_made += 1
            made, warming = self._requests_made, self._warming
        if warming is not None:
            warming.cancel()
        return made

    def _complete_then_warm(self, request: CompletionRequest, cancel: CancelToken, made: int) -> Completion:
        """`complete_sync`, then, when typing (or the time budget) stopped the request before its prompt
        was evaluated, a warm-up queued on the worker: the user is typing on, and the next request will
        want that prompt again, all but its last line. Without it the worker would sit idle until that
        request came, and a prompt longer than the pauses between keys would never be evaluated."""
        completion = self.complete_sync(request, cancel)
        if completion.warm_up is not None and self.settings.reuse:
            with contextlib.suppress(RuntimeError):  # the worker was shut down: the server is exiting
                self._worker.submit(self._warm_up, completion.warm_up, made)
        return completion

    def _warm_up(self, request: GenerationRequest, made: int) -> None:
        """Evaluate `request` into the engine's cache, unless a request came after the one it is for; any
        request that comes meanwhile stops it."""
        token = CancelToken()
        with self._lock:
            engine = self._engine
            if made != self._requests_made or engine is None:
                return
            self._warming = token
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
                    self._warming = None
        if evaluated:  # engines that keep no cache of their own (remote ones) warm nothing
            self.stats["warm_ups"] += 1
            self.stats["warm_up_evaluated_tokens"] += evaluated

    def _prefetch(self, key: str, request: CompletionRequest, shown: str) -> None:
        """Start computing the answer for the document as it will be once `shown` is accepted, into the
        cache. It holds the document's place as its latest request, so any newer request stops it."""
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
            return
        token = CancelToken()
        with self._lock:
            if key in self._latest:
                return  # a newer request is already on its way
            self._latest[key] = token
            self._prefetch_tokens.add(token)
        task = asyncio.get_running_loop().create_task(self._run_prefetch(key, accepted, digest, token))
        self._prefetches.add(task)
        task.add_done_callback(self._prefetches.discard)

    async def _run_prefetch(
        self, key: str, request: CompletionRequest, digest: str, token: CancelToken
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

    def shutdown(self) -> None:
        """Stop every generation and release the model."""
        with self._lock:
            tokens, self._latest = list(self._latest.values()), {}
            self._generation += 1
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
    if settings.model in models:
        return cached_path(models[settings.model])
    return Path(settings.model).expanduser()


def _worth_caching(completion: Completion) -> bool:
    """Whether an answer ended as the model or the rules ended it (not cut by a cancel or the deadline),
    so that the same prompt would get it again (shown or not)."""
    return completion.reason in ("eot", "stop", "length")


def _shape_of(text: str) -> Shape:
    return Shape.BLOCK if "\n" in text.strip("\n") else Shape.LINE
