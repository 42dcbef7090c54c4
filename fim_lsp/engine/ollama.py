"""The `ollama` engine: Ollama's `/api/generate` with `prompt` and `suffix`, streamed as JSON lines.

With `raw` false Ollama lays the prefix and suffix out with the model's own template, which knows the
FIM tokens when the model has the `insert` capability. Ollama has no field for workspace snippets, so
repository files in a prompt are left out (logged once).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fim_lsp.config import EngineSettings
from fim_lsp.engine.base import GenerationRequest, StopReason
from fim_lsp.engine.remote import (
    Check,
    Chunk,
    RemoteEngine,
    ServerSaid,
    json_object,
    reachable_check,
    server_template,
)
from fim_lsp.errors import ConfigurationError, FimError

logger = logging.getLogger(__name__)

_DONE_REASONS: dict[str, StopReason] = {"stop": "eot", "length": "length"}
_NANOSECONDS_PER_MS = 1_000_000


class OllamaEngine(RemoteEngine):
    """Completions from an Ollama server's `/api/generate` with a suffix."""

    kind = "ollama"
    server_name = "Ollama server"

    def __init__(self, engine: EngineSettings) -> None:
        if not engine.model:
            raise ConfigurationError("engine.model is required for Ollama (e.g. qwen2.5-coder:1.5b)")
        super().__init__(engine, server_template("Ollama"))
        self._warned_snippets = False

    @staticmethod
    def base_url(url: str) -> str:
        """The server's root (users paste `.../api` or the OpenAI-compatible `.../v1` as well)."""
        url = url.rstrip("/")
        for tail in ("/api", "/v1"):
            if url.endswith(tail):
                return url[: -len(tail)]
        return url

    def request(self, request: GenerationRequest) -> tuple[str, dict[str, Any], int]:
        prompt = request.prompt
        if prompt.files and not self._warned_snippets:
            self._warned_snippets = True
            logger.info("Ollama has no field for workspace snippets; they are left out of its prompts")
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt.prefix,
            "suffix": prompt.suffix,
            "raw": False,
            "stream": True,
            "options": {"num_predict": request.max_tokens, "temperature": 0},
        }
        return "/api/generate", body, len(prompt.prefix) + len(prompt.suffix)

    def parse_line(self, line: str) -> Chunk | None:
        if not line.strip():
            return None
        event = json_object(line)
        if "error" in event:
            raise ServerSaid(str(event["error"]))
        text = event.get("response", "")
        if not isinstance(text, str) or ("response" not in event and "done" not in event):
            raise ValueError("neither response nor done")
        chunk = Chunk(text=text)
        if event.get("done"):
            chunk.end = True
            chunk.finish = _DONE_REASONS.get(event.get("done_reason", "stop"), "length")
            # prompt_eval_count counts only the tokens Ollama evaluated, not those found in its cache.
            chunk.evaluated_tokens = event.get("prompt_eval_count")
            chunk.generated_tokens = event.get("eval_count")
            if isinstance(event.get("prompt_eval_duration"), int):
                chunk.prompt_ms = event["prompt_eval_duration"] / _NANOSECONDS_PER_MS
        return chunk

    # -- doctor -----------------------------------------------------------------------------------------

    def checks(self) -> list[Check]:
        reachable, version = reachable_check(self, "/api/version")
        if version is None:
            return [reachable]
        if isinstance(version, dict) and version.get("version"):
            reachable = (reachable[0], reachable[1], f"{reachable[2]}, Ollama {version['version']}")
        checks = [reachable, self._model_check()]
        if checks[-1][0] != "FAIL":
            checks.append(self._fim_check())
        return checks

    def _model_check(self) -> Check:
        try:
            _status, tags = self.get("/api/tags", timeout=10.0)
        except FimError as exc:
            return ("FAIL", "model", str(exc))
        models = tags.get("models") if isinstance(tags, dict) else None
        names = [str(m["name"]) for m in models or [] if isinstance(m, dict) and m.get("name")]
        wanted = {self.model, f"{self.model}:latest"}
        if wanted & set(names):
            return ("ok", "model", f"{self.model} is pulled")
        return (
            "FAIL",
            "model",
            f"{self.model} is not on the server (has: {', '.join(names) or 'none'}); "
            f"run `ollama pull {self.model}` there",
        )

    def _fim_check(self) -> Check:
        try:
            status, shown = self.post("/api/show", {"model": self.model}, timeout=10.0)
        except FimError as exc:
            return ("FAIL", "fill-in-the-middle", str(exc))
        capabilities = shown.get("capabilities") if isinstance(shown, dict) and status == 200 else None
        if isinstance(capabilities, list):
            if "insert" in capabilities:
                return ("ok", "fill-in-the-middle", f"{self.model} has Ollama's `insert` capability")
            return (
                "FAIL",
                "fill-in-the-middle",
                f"{self.model} cannot fill in the middle (no `insert` capability: its template has no "
                "suffix); use a FIM-trained code model such as qwen2.5-coder",
            )
        return self._fim_probe()

    def _fim_probe(self) -> Check:
        """Older Ollama lists no capabilities: a tiny request with a suffix answers the question."""
        body = {
            "model": self.model,
            "prompt": "def add(a, b):\n    return ",
            "suffix": "\n",
            "stream": False,
            "options": {"num_predict": 4, "temperature": 0},
        }
        try:
            status, answer = self.post("/api/generate", body, timeout=min(self.settings.timeout, 60.0))
        except FimError as exc:
            return ("FAIL", "fill-in-the-middle", str(exc))
        if status != 200:
            error = self.transport.status_error(status, json.dumps(answer), "/api/generate")
            return ("FAIL", "fill-in-the-middle", str(error))
        return ("ok", "fill-in-the-middle", f"a request with a suffix got {answer.get('response')!r}")
