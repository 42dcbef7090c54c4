"""A contract fake of llama.cpp's `llama-server`: `/infill`, `/health`, `/props`, `/v1/models`, `/tokenize`.

llama.cpp's own server binary is not built on this machine, so the `/infill` client is tested against
this fake. The contract it holds a client to is llama-server's documented one (tools/server/README.md of
llama.cpp, and the server's request validation):

- `/infill` requires `input_prefix` and `input_suffix` strings; `input_extra` is a list of objects with
  a string `text` and an optional string `filename`; the `/completion` options (`n_predict`, `stream`,
  `cache_prompt`, `temperature`, `t_max_predict_ms`, ...) are accepted alongside. A bad request gets
  400 with `{"error": {"code", "message", "type": "invalid_request_error"}}`.
- A model without FIM tokens gets 501 "Infill is not supported by this model: ...".
- Streamed answers are server-sent events `data: {"content", "tokens", "stop": false, ...}` and a last
  one with `"stop": true`, `stop_type` (eos, word, limit), `tokens_evaluated`, `tokens_cached`,
  `tokens_predicted` and `timings` (`prompt_n`, `prompt_ms`, ...). No `[DONE]` follows.
- `/health` is 200 `{"status": "ok"}` or 503 while the model loads.

The "model" writes `middle`, one word per token, up to `n_predict`. The prompt the server would build
(the documented repository-level layout, with the model's FIM tokens) is kept in `prompts`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from tests.fakes.http import Exchange, FakeHttpServer, sse

MODEL_PATH = "/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
N_CTX = 4096
_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "n_predict": int,
    "stream": bool,
    "cache_prompt": bool,
    "temperature": (int, float),
    "top_k": int,
    "t_max_predict_ms": int,
    "model": str,
    "prompt": str,
    "stop": list,
}


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


class LlamaServerFake(FakeHttpServer):
    """llama-server as a FIM client sees it."""

    def __init__(self, *, middle: str = "return a + b", fim: bool = True, loading: bool = False) -> None:
        super().__init__()
        self.middle = middle
        self.fim = fim
        self.loading = loading
        self.prompts: list[str] = []
        self._cached = ""
        self.route("GET", "/health")(self._health)
        self.route("GET", "/props")(self._props)
        self.route("GET", "/v1/models")(self._models)
        self.route("POST", "/tokenize")(self._tokenize)
        self.route("POST", "/infill")(self._infill)

    def _health(self, exchange: Exchange) -> None:
        if self.loading:
            exchange.send_json(503, _error(503, "Loading model", "unavailable_error"))
        else:
            exchange.send_json(200, {"status": "ok"})

    def _props(self, exchange: Exchange) -> None:
        exchange.send_json(
            200,
            {
                "default_generation_settings": {"n_ctx": N_CTX, "params": {"n_predict": -1}},
                "total_slots": 1,
                "model_path": MODEL_PATH,
                "build_info": "b0000-fake",
            },
        )

    def _models(self, exchange: Exchange) -> None:
        exchange.send_json(200, {"object": "list", "data": [{"id": MODEL_PATH, "object": "model"}]})

    def _tokenize(self, exchange: Exchange) -> None:
        content = (exchange.body or {}).get("content")
        if not isinstance(content, str):
            exchange.send_json(400, _error(400, '"content" must be provided', "invalid_request_error"))
            return
        # Special spellings are one token each, as llama-server parses them.
        pieces = re.findall(r"<\|[a-z_]+\|>|\S+|\s+", content)
        exchange.send_json(200, {"tokens": list(range(1000, 1000 + len(pieces)))})

    def _infill(self, exchange: Exchange) -> None:
        body = exchange.body
        problem = _invalid(body)
        if problem:
            exchange.send_json(400, _error(400, problem, "invalid_request_error"))
            return
        if not self.fim:
            message = (
                "Infill is not supported by this model: prefix token is missing. suffix token is missing. "
            )
            exchange.send_json(501, _error(501, message, "not_supported_error"))
            return
        prompt = _assemble(body)
        self.prompts.append(prompt)
        total = _tokens(prompt)
        shared = 0
        if body.get("cache_prompt", True):
            while shared < min(len(prompt), len(self._cached)) and prompt[shared] == self._cached[shared]:
                shared += 1
        self._cached = prompt
        cached = _tokens(prompt[:shared])
        words = re.findall(r"\S+\s*|\s+", self.middle)
        limit = body.get("n_predict", -1)
        pieces = words if limit < 0 else words[:limit]
        stop_type = "limit" if len(pieces) < len(words) else "eos"
        final = {
            "index": 0,
            "content": "" if body.get("stream") else "".join(pieces),
            "tokens": [],
            "id_slot": 0,
            "stop": True,
            "model": MODEL_PATH,
            "tokens_predicted": len(pieces),
            "tokens_evaluated": total,
            "tokens_cached": cached,
            "stop_type": stop_type,
            "stopping_word": "",
            "truncated": False,
            "timings": {
                "prompt_n": total - cached,
                "prompt_ms": 1.5 * (total - cached),
                "predicted_n": len(pieces),
                "predicted_ms": 2.0 * len(pieces),
            },
        }
        if not body.get("stream"):
            exchange.send_json(200, final)
            return
        exchange.start_stream("text/event-stream")
        for index, piece in enumerate(pieces):
            partial = {"index": 0, "content": piece, "tokens": [2000 + index], "stop": False, "id_slot": 0}
            exchange.write(sse({**partial, "tokens_predicted": index + 1, "tokens_evaluated": total}))
        exchange.write(sse(final))
        exchange.end()


def _error(code: int, message: str, kind: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": kind}}


def _invalid(body: Any) -> str | None:
    """What llama-server would reject in an `/infill` body, if anything."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object"
    for name in ("input_prefix", "input_suffix"):
        if name not in body:
            return f'"{name}" is required'
        if not isinstance(body[name], str):
            return f'"{name}" must be a string'
    extra = body.get("input_extra", [])
    if not isinstance(extra, list):
        return '"input_extra" must be an array of {"filename": string, "text": string}'
    for chunk in extra:
        if not isinstance(chunk, dict) or not isinstance(chunk.get("text"), str):
            return 'extra_context chunk must contain a "text" field with a string value'
        if "filename" in chunk and not isinstance(chunk["filename"], str):
            return 'extra_context chunk\'s "filename" field must be a string'
    for name, kind in _OPTIONS.items():
        if name in body and (
            not isinstance(body[name], kind) or isinstance(body[name], bool) != (kind is bool)
        ):
            return f'"{name}" has the wrong type'
    return None


def _assemble(body: dict[str, Any]) -> str:
    """The prompt llama-server builds for a Qwen2.5-Coder model (documented repository-level layout)."""
    prompt = "<|repo_name|>myproject\n"
    for chunk in body.get("input_extra", []):
        prompt += f"<|file_sep|>{chunk.get('filename', 'tmp')}\n{chunk['text']}"
    prompt += "<|file_sep|>filename\n"
    prompt += f"<|fim_prefix|>{body['input_prefix']}<|fim_suffix|>{body['input_suffix']}<|fim_middle|>"
    return prompt + body.get("prompt", "")
