"""The `llama-server` engine: llama.cpp's own server and its `/infill` endpoint.

`/infill` takes the prefix and the suffix as plain text and lays them out with the FIM tokens of the
model it serves (from the GGUF's metadata), so no template of ours is involved. Workspace snippets go in
`input_extra`, which the server puts before the prefix in the model's repository-level format.
`cache_prompt` lets the server reuse the KV cache of the previous request's common start.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fim_lsp.config import EngineSettings
from fim_lsp.engine.base import GenerationRequest, StopReason
from fim_lsp.engine.remote import (
    Check,
    Chunk,
    RemoteEngine,
    reachable_check,
    server_template,
    sse_event,
)
from fim_lsp.errors import FimError

logger = logging.getLogger(__name__)

# llama-server's stop_type: eos (the model's end-of-generation token), word (a stop string of the
# request), limit (n_predict or the time limit).
_STOP_TYPES: dict[str, StopReason] = {"eos": "eot", "word": "stop", "limit": "length"}


class LlamaServerEngine(RemoteEngine):
    """Completions from llama.cpp's `llama-server` through `/infill`."""

    kind = "llama-server"
    server_name = "llama-server"

    def __init__(self, engine: EngineSettings) -> None:
        # The cursor's line goes in `prompt`, after the middle token, so that typing on it only appends to
        # the server's prompt and its cached evaluation of the rest (the suffix too) stays valid.
        super().__init__(engine, server_template("llama-server", order="psm-line"))

    @staticmethod
    def base_url(url: str) -> str:
        """The server's root: `/infill` and `/props` live there, not under the OpenAI `/v1`."""
        url = url.rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url

    def request(self, request: GenerationRequest) -> tuple[str, dict[str, Any], int]:
        prompt = request.prompt
        prefix, line_head = self.template.split_line_head(prompt)
        body: dict[str, Any] = {
            "input_prefix": prefix,
            "input_suffix": prompt.suffix,
            # Each snippet ends its line, as in the embedded engine's repository-level prompt.
            "input_extra": [{"filename": f.path, "text": _whole_lines(f.text)} for f in prompt.files],
            "prompt": line_head,
            "n_predict": request.max_tokens,
            "cache_prompt": request.reuse_cache,
            "stream": True,
            "temperature": 0,
            "top_k": 1,
        }
        if request.deadline is not None:
            # The server stops on its own at the deadline too, once a line is complete.
            body["t_max_predict_ms"] = max(1, int((request.deadline - time.monotonic()) * 1000))
        if self.model:
            body["model"] = self.model
        characters = len(prompt.prefix) + len(prompt.suffix)
        characters += sum(len(f.path) + len(f.text) for f in prompt.files)
        return "/infill", body, characters

    def parse_line(self, line: str) -> Chunk | None:
        event = sse_event(line)
        if not isinstance(event, dict):
            return event
        text = event.get("content", "")
        if not isinstance(text, str):
            raise TypeError("content is not a string")
        chunk = Chunk(text=text)
        if event.get("stop"):
            chunk.end = True
            chunk.finish = _STOP_TYPES.get(event.get("stop_type", ""), "length")
            chunk.prompt_tokens = event.get("tokens_evaluated")
            chunk.generated_tokens = event.get("tokens_predicted")
            timings = event.get("timings") or {}
            if isinstance(timings.get("prompt_n"), int):
                chunk.evaluated_tokens = timings["prompt_n"]
            if isinstance(timings.get("prompt_ms"), (int, float)):
                chunk.prompt_ms = float(timings["prompt_ms"])
        elif "content" not in event:
            raise ValueError("neither content nor stop")
        return chunk

    # -- doctor -----------------------------------------------------------------------------------------

    def checks(self) -> list[Check]:
        reachable, health = reachable_check(self, "/health")
        if health is None and "HTTP 503" in reachable[2]:
            loading = f"llama-server at {self.transport.base_url} is still loading its model"
            return [("warn", "server", loading)]
        checks = [reachable]
        if health is None:
            return checks
        checks.append(self._model_check())
        checks.append(self._fim_check())
        return checks

    def _model_check(self) -> Check:
        try:
            status, props = self.get("/props", timeout=10.0)
        except FimError as exc:
            return ("warn", "model", f"/props did not answer: {exc}")
        if status != 200 or not isinstance(props, dict):
            return ("warn", "model", f"/props answered HTTP {status}")
        path = props.get("model_path") or "unknown"
        settings = props.get("default_generation_settings") or {}
        context = settings.get("n_ctx") if isinstance(settings, dict) else None
        detail = f"{path}" + (f", context {context}" if context else "")
        if props.get("build_info"):
            detail += f", build {props['build_info']}"
        return ("ok", "model", detail)

    def _fim_check(self) -> Check:
        body = {
            "input_prefix": "def add(a, b):\n    return ",
            "input_suffix": "\n",
            "n_predict": 4,
            "stream": False,
            "temperature": 0,
        }
        if self.model:
            body["model"] = self.model
        try:
            status, answer = self.post("/infill", body, timeout=min(self.settings.timeout, 60.0))
        except FimError as exc:
            return ("FAIL", "fill-in-the-middle", str(exc))
        if status != 200:
            error = self.transport.status_error(status, json.dumps(answer), "/infill")
            return ("FAIL", "fill-in-the-middle", f"/infill refused: {error}")
        content = answer.get("content") if isinstance(answer, dict) else None
        if not isinstance(content, str):
            return ("FAIL", "fill-in-the-middle", f"/infill answered without content: {str(answer)[:80]}")
        return ("ok", "fill-in-the-middle", f"/infill works (a tiny request got {content!r})")


def _whole_lines(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
