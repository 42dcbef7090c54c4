"""A contract fake of Ollama: `/api/version`, `/api/tags`, `/api/show` and `/api/generate` with a suffix.

The contract, from Ollama's API documentation: `/api/generate` takes `model`, `prompt`, `suffix`, `raw`,
`stream` and `options` (`num_predict`, `temperature`, ...); a streamed answer is one JSON object per
line, `{"model", "created_at", "response", "done": false}`, then one with `"done": true`, `done_reason`
and the counts (`prompt_eval_count`, `eval_count`, durations in nanoseconds). An unknown model gets 404
`{"error": "model \"x\" not found, try pulling it first"}`; a suffix for a model whose template cannot
take one gets 400 `{"error": "... does not support insert"}`. `/api/show` lists `capabilities`, where
`insert` means fill-in-the-middle.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.http import Exchange, FakeHttpServer

FIM_MODEL = "qwen2.5-coder:1.5b"
CHAT_MODEL = "llama3.2:1b"
CREATED = "2026-01-01T00:00:00.000000Z"


class OllamaFake(FakeHttpServer):
    """Ollama with one FIM-capable model and one chat model; the FIM model writes `middle`."""

    def __init__(self, *, middle: str = "return a + b", capabilities: bool = True) -> None:
        super().__init__()
        self.middle = middle
        self.capabilities = capabilities
        """Whether /api/show lists capabilities (Ollama before 0.6 did not)."""
        self.models = {FIM_MODEL: ["completion", "insert"], CHAT_MODEL: ["completion", "tools"]}
        self.route("GET", "/api/version")(lambda ex: ex.send_json(200, {"version": "0.9.0"}))
        self.route("GET", "/api/tags")(self._tags)
        self.route("POST", "/api/show")(self._show)
        self.route("POST", "/api/generate")(self._generate)

    def _tags(self, exchange: Exchange) -> None:
        models = [{"name": name, "model": name, "size": 986_000_000} for name in self.models]
        exchange.send_json(200, {"models": models})

    def _show(self, exchange: Exchange) -> None:
        name = (exchange.body or {}).get("model")
        if name not in self.models:
            exchange.send_json(404, {"error": f"model '{name}' not found"})
            return
        shown: dict[str, Any] = {"details": {"family": "qwen2", "quantization_level": "Q4_K_M"}}
        if self.capabilities:
            shown["capabilities"] = self.models[name]
        exchange.send_json(200, shown)

    def _generate(self, exchange: Exchange) -> None:
        body = exchange.body
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            exchange.send_json(400, {"error": "model is required"})
            return
        name = body["model"]
        if name not in self.models:
            exchange.send_json(404, {"error": f'model "{name}" not found, try pulling it first'})
            return
        for field, kind in (
            ("prompt", str),
            ("suffix", str),
            ("raw", bool),
            ("stream", bool),
            ("options", dict),
        ):
            if field in body and not isinstance(body[field], kind):
                exchange.send_json(400, {"error": f"invalid {field}"})
                return
        if body.get("suffix") and "insert" not in self.models[name]:
            exchange.send_json(400, {"error": f"registry.ollama.ai/library/{name} does not support insert"})
            return
        options = body.get("options") or {}
        limit = options.get("num_predict", -1)
        words = re.findall(r"\S+\s*|\s+", self.middle)
        pieces = words if limit < 0 else words[:limit]
        prompt_tokens = (len(body.get("prompt", "")) + len(body.get("suffix", ""))) // 4 + 3
        final = {
            "model": name,
            "created_at": CREATED,
            "response": "",
            "done": True,
            "done_reason": "length" if len(pieces) < len(words) else "stop",
            "context": [1, 2, 3],
            "total_duration": 5_000_000,
            "load_duration": 1_000_000,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": 3_000_000,
            "eval_count": len(pieces),
            "eval_duration": 1_000_000,
        }
        if body.get("stream") is False:
            exchange.send_json(200, {**final, "response": "".join(pieces)})
            return
        exchange.start_stream("application/x-ndjson")
        for piece in pieces:
            line = {"model": name, "created_at": CREATED, "response": piece, "done": False}
            exchange.write(json.dumps(line).encode() + b"\n")
        exchange.write(json.dumps(final).encode() + b"\n")
        exchange.end()
