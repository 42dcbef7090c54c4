"""The `openai` engine: `/v1/completions` of any OpenAI-compatible server (vLLM, llama-cpp-python's
server, LM Studio, ...), streamed as server-sent events.

Such a server only continues text, so the FIM prompt is rendered by us with the template the settings
name (or the model's name gives away). The template's end-of-text spellings go to the server as `stop`
strings (some servers print special tokens as text) and are looked for here as well.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from fim_lsp.config import EngineSettings
from fim_lsp.engine.base import GenerationRequest, StopReason
from fim_lsp.engine.remote import (
    Check,
    Chunk,
    RemoteEngine,
    reachable_check,
    sse_event,
    template_of,
)
from fim_lsp.errors import FimError
from fim_lsp.prompt import FimPrompt

logger = logging.getLogger(__name__)

_FINISH: dict[str, StopReason] = {"stop": "eot", "length": "length"}


class OpenAIEngine(RemoteEngine):
    """Completions from an OpenAI-compatible `/v1/completions` endpoint, prompt rendered by us."""

    kind = "openai"
    server_name = "OpenAI-compatible server"

    def __init__(self, engine: EngineSettings) -> None:
        super().__init__(engine, template_of(engine))

    @staticmethod
    def base_url(url: str) -> str:
        """The settings' URL, with `/v1` added when it names only the server (`http://host:8000`)."""
        url = url.rstrip("/")
        return url + "/v1" if urlsplit(url).path in ("", "/") else url

    @property
    def root(self) -> str:
        """The server's root, where vLLM and llama-cpp-python keep their tokenizer endpoints."""
        base = self.transport.base_url
        return base[: -len("/v1")] if base.endswith("/v1") else base

    def eot_strings(self) -> tuple[str, ...]:
        return self.template.stop

    def request(self, request: GenerationRequest) -> tuple[str, dict[str, Any], int]:
        prompt = self.template.render(request.prompt)
        body: dict[str, Any] = {
            "prompt": prompt,
            "max_tokens": request.max_tokens,
            "temperature": 0,
            "stream": True,
            # Token counts at the end of the stream, where the server offers them (vLLM, OpenAI).
            "stream_options": {"include_usage": True},
        }
        if self.template.stop:
            body["stop"] = list(self.template.stop)
        if self.model:
            body["model"] = self.model
        plain = len(prompt) - sum(len(m) * prompt.count(m) for m in self.template.markers)
        return "/completions", body, plain

    def parse_line(self, line: str) -> Chunk | None:
        event = sse_event(line)
        if not isinstance(event, dict):
            return event
        choices, usage = event.get("choices"), event.get("usage")
        if not choices and not usage:
            raise ValueError("neither choices nor usage")
        chunk = Chunk()
        if choices:
            choice = choices[0]
            text = choice.get("text") or ""
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            chunk.text = text
            finish = choice.get("finish_reason")
            if finish is not None and not isinstance(finish, str):
                raise TypeError("finish_reason is not a string")
            if finish is not None:
                chunk.finish = _FINISH.get(finish, "length")
        if usage:
            chunk.prompt_tokens = usage.get("prompt_tokens") or None
            chunk.generated_tokens = usage.get("completion_tokens") or None
            details = usage.get("prompt_tokens_details") or {}
            chunk.cached_tokens = details.get("cached_tokens")
        return chunk

    # -- doctor -----------------------------------------------------------------------------------------

    def checks(self) -> list[Check]:
        reachable, listing = reachable_check(self, "/models")
        checks = [reachable]
        if listing is None:
            return checks
        checks.append(self._model_check(listing))
        checks.append(self._fim_check())
        return checks

    def _model_check(self, listing: Any) -> Check:
        data = listing.get("data") if isinstance(listing, dict) else None
        ids = [str(m["id"]) for m in data or [] if isinstance(m, dict) and m.get("id")]
        offered = ", ".join(ids) or "none"
        if not self.model:
            return ("warn", "model", f"engine.model is not set; the server offers: {offered}")
        if self.model in ids:
            return ("ok", "model", f"{self.model} (template {self.template.family})")
        # llama-cpp-python serves its one model under any name; vLLM answers 404 for a wrong one.
        return ("warn", "model", f"{self.model} is not among the models the server lists: {offered}")

    def _fim_check(self) -> Check:
        """Are the template's FIM markers single tokens of the server's model? Asked of its tokenizer
        endpoint (llama-cpp-python, vLLM, llama-server); otherwise a tiny FIM request shows it answers."""
        counts = self._marker_token_counts()
        family = self.template.family
        if counts is None:
            return self._fim_probe()
        several = [marker for marker, count in counts.items() if count != 1]
        if several:
            return (
                "FAIL",
                "fill-in-the-middle",
                f"{', '.join(several)} is not one token for the server's model: it is not a {family} "
                "model; set engine.template to its family, or serve a FIM-trained code model",
            )
        return ("ok", "fill-in-the-middle", f"the {family} FIM tokens are in the model's vocabulary")

    def _marker_token_counts(self) -> dict[str, int] | None:
        probes = [
            (f"{self.root}/extras/tokenize", lambda text: {"input": text}),  # llama-cpp-python
            (f"{self.root}/tokenize", lambda text: {"content": text}),  # llama-server
            (  # vLLM
                f"{self.root}/tokenize",
                lambda text: {"model": self.model, "prompt": text, "add_special_tokens": False},
            ),
        ]
        for url, make_body in probes:
            counts = {}
            for marker in self.template.markers:
                try:
                    status, answer = self.post(url, make_body(marker), timeout=10.0)
                except FimError:
                    break
                tokens = answer.get("tokens") if isinstance(answer, dict) else None
                if status != 200 or not isinstance(tokens, list):
                    break
                counts[marker] = len(tokens)
            else:
                return counts
        return None

    def _fim_probe(self) -> Check:
        prompt = self.template.render(
            FimPrompt("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n", self.template.order)
        )
        body = {"prompt": prompt, "max_tokens": 8, "temperature": 0, "stop": list(self.template.stop)}
        if self.model:
            body["model"] = self.model
        try:
            status, answer = self.post("/completions", body, timeout=min(self.settings.timeout, 60.0))
        except FimError as exc:
            return ("FAIL", "fill-in-the-middle", str(exc))
        if status != 200:
            error = self.transport.status_error(status, json.dumps(answer), "/completions")
            return ("FAIL", "fill-in-the-middle", str(error))
        try:
            text = answer["choices"][0]["text"]
        except (KeyError, IndexError, TypeError):
            return ("FAIL", "fill-in-the-middle", f"the answer has no completion text: {str(answer)[:80]}")
        return (
            "warn",
            "fill-in-the-middle",
            f"the server cannot show its vocabulary; a {self.template.family} FIM prompt for "
            f"`return ` in `add(a, b)` got {text!r} (code means the template fits)",
        )
