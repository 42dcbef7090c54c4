"""fim-lsp's settings: one typed tree with a default and a docstring for every field.

Settings arrive from the client as camelCase JSON (`initializationOptions`, then the `fimLsp` section of
`workspace/didChangeConfiguration`). `parse_settings` validates field by field: a bad value is reported
and its default used, so one typo never stops completion.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal, get_args

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from fim_lsp.exclusions import DEFAULT_EXCLUDE, check_patterns

EngineKind = Literal["embedded", "llama-server", "openai", "ollama"]
FimOrder = Literal["auto", "psm", "psm-line", "spm"]
LogLevel = Literal["trace", "debug", "info", "warning", "error"]

#: Tokens of prefix and suffix a prompt takes when the context budget is left to the machine's speed:
#: more than this added little on the benchmarks, and costs every prompt the cache does not hold.
MAX_CONTEXT_BUDGET = 1536
AUTO_MODEL = "auto"
#: The `adapter` setting for the adapter shipped with the model loaded, and for no adapter.
AUTO_ADAPTER = "auto"
NO_ADAPTER = "none"


def _positive(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


def _not_negative(_instance: object, attribute: attrs.Attribute, value: Any) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, not {value!r}")


def _share(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must lie between 0 and 1, not {value!r}")


def _globs(_instance: object, _attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    check_patterns(value)


@attrs.define(frozen=True)
class EngineSettings:
    """Where the model runs."""

    kind: EngineKind = "embedded"
    """`embedded` runs llama.cpp in this process; the others call an existing inference server."""

    url: str | None = None
    """Base URL of a remote inference server, e.g. `http://127.0.0.1:8080/v1` for `openai`."""

    model: str | None = None
    """Model name the remote server knows the model by."""

    template: str | None = None
    """FIM template family (e.g. `qwen2.5-coder`) when a remote server cannot tell us its vocabulary."""

    api_key_env: str | None = None
    """Name of an environment variable that holds the API key; the key itself is never a setting."""

    timeout: float = attrs.field(default=30.0, validator=_positive)
    """Seconds before a remote request is abandoned."""

    verify_tls: bool = True
    """Verify the remote server's TLS certificate."""


@attrs.define(frozen=True)
class Settings:
    """Everything a user can set, with the defaults used when they set nothing."""

    model: str = AUTO_MODEL
    """A known model's name (see `fim-lsp models`), the path of any GGUF file, or `auto`: the best
    installed model whose prompts this machine evaluates in time (measured once per model, llama.cpp
    build and CPU; `fim-lsp doctor` says what was chosen and why)."""

    adapter: str | None = AUTO_ADAPTER
    """The LoRA adapter the embedded engine applies over the model: `auto`, the one fim-lsp ships for
    the model loaded (the 1.5B's warm-up; none for a model that ships none); `none` (or null), no
    adapter; or the path of one made by `fim-lsp warmup` (or its name in fim-lsp's cache of adapters),
    which must have been trained on that very model file (or on the file of which `auto` loads a Q4_0
    copy), and with `model` `auto` that model is the one loaded. Remote engines run their own model and
    ignore it."""

    threads: int | None = attrs.field(default=None, validator=_positive)
    """CPU threads for the embedded engine; unset means one per core."""

    gpu_layers: int = -1
    """Layers offloaded to the GPU when llama.cpp was built with one: -1 all, 0 none."""

    context_size: int = attrs.field(default=4096, validator=_positive)
    """The model's context window in tokens (llama.cpp's n_ctx)."""

    context_budget: int | None = attrs.field(default=None, validator=_positive)
    """Tokens of prefix and suffix put in a prompt (workspace snippets come on top). Unset: as many as
    this machine evaluates within the time budget, measured as it works, up to 1536."""

    suffix_share: float = attrs.field(default=0.25, validator=_share)
    """Share of the context budget given to the text after the cursor."""

    max_new_tokens: int = attrs.field(default=64, validator=_positive)
    """Most tokens a completion may write (a block); a single line gets half of it. Between lines a
    block is asked for only where the machine writes this many before the time budget runs out."""

    time_budget_ms: int = attrs.field(default=15000, validator=_positive)
    """Wall time a request may take; when it runs out the server answers with what is whole so far."""

    prompt_memory_mb: int = attrs.field(default=256, validator=_positive)
    """Megabytes of llama.cpp's KV cache, where the embedded engine keeps evaluated prompts (up to
    four: the places and files the user worked in last) so that coming back to one evaluates only what
    changed. At least one prompt's context is kept whatever this says."""

    cache_memory_mb: int = attrs.field(default=4, validator=_not_negative)
    """Megabytes the completion cache's keys and answers may take; the least recently used go first
    when they would take more, and 0 keeps no answers. What is remembered of each open document for
    typed-through answers is bounded too (the context window around its cursor); the documents
    themselves and their syntax trees are not caches and are not counted."""

    reuse: bool = True
    """Reuse work between requests: the model's KV cache, the completion cache and typed-through
    answers. Off only to measure what reuse saves (the latency benchmark's naive baseline)."""

    prefetch: bool = True
    """After an answer is shown, compute the completion that follows its acceptance while the user reads
    it, so that accepting it is answered from the cache. It runs on the model's one worker, below the
    protocol's priority, and any newer request that needs the model stops it (on by default since the
    latency replay measured it: see docs/design/typing-latency.md)."""

    alternatives: int = attrs.field(default=3, validator=_positive)
    """Suggestions offered when the user asks for them or for the next one (1: only the first). The
    others are middles the model writes from its next likeliest first tokens, after the first middle,
    which they never delay."""

    fim_order: FimOrder = "auto"
    """`psm` (prefix, suffix, middle), `psm-line` (PSM with the cursor's line at the start of the middle,
    which keeps the model's cache warm while typing), `spm`, or `auto` (the family's measured best)."""

    enabled_languages: tuple[str, ...] = ("*",)
    """Language ids to complete in; `*` means all that tree-sitter knows."""

    exclude: tuple[str, ...] = attrs.field(default=DEFAULT_EXCLUDE, validator=_globs)
    """Glob patterns (`.gitignore` syntax, any case) of files whose text is never read, whatever
    `.gitignore` says: an excluded document gets no completion and no engine sees its text, and no
    excluded file is indexed or quoted in a prompt's workspace snippets. A list given here replaces the
    default one (keys, `.env` files, credentials: see `fim_lsp.exclusions.DEFAULT_EXCLUDE`); `[]`
    excludes nothing."""

    log_level: LogLevel = "info"
    """Least severe log record written to the log and sent to the client."""

    workspace_context: bool = False
    """Put snippets from the user's workspace (definitions, similar code) in the prompt. Off by default:
    the shipped Instruct models do not use them (cross-file lines scored lower with them than without,
    even with the one right definition given), and they make every prompt the cache does not hold
    longer; a model warmed up on the workspace (`adapter`) may."""

    workspace_context_share: float = attrs.field(default=0.3, validator=_share)
    """Workspace snippets' tokens at most, as a share of the context budget, put in front of the file's
    own context (which keeps the whole budget)."""

    engine: EngineSettings = attrs.field(factory=EngineSettings)
    """Where the model runs."""

    @property
    def adapter_file(self) -> str | None:
        """The `adapter` setting where it names an adapter of the user's (neither `auto` nor none)."""
        return None if self.adapter in (None, "", AUTO_ADAPTER, NO_ADAPTER) else self.adapter

    @property
    def budget_cap(self) -> int:
        """The most tokens of prefix and suffix a prompt takes: the setting, or its default bound."""
        return self.context_budget or MAX_CONTEXT_BUDGET

    def enables(self, language_id: str) -> bool:
        """Whether completion is on for documents of this LSP language id."""
        return "*" in self.enabled_languages or language_id in self.enabled_languages


def camel_case(name: str) -> str:
    """A setting's name as clients send it: `context_budget` -> `contextBudget`."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)

    def strict_bool(value: Any, _type: type) -> bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false, not {value!r}")

    def strict_int(value: Any, _type: type) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, not {value!r}")
        return value

    def strict_float(value: Any, _type: type) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, not {value!r}")
        return float(value)

    def strict_str(value: Any, _type: type) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, not {value!r}")
        return value

    converter.register_structure_hook(bool, strict_bool)
    converter.register_structure_hook(int, strict_int)
    converter.register_structure_hook(float, strict_float)
    converter.register_structure_hook(str, strict_str)
    for cls in (EngineSettings, Settings):
        renames: dict[str, Any] = {a.name: override(rename=camel_case(a.name)) for a in attrs.fields(cls)}
        converter.register_structure_hook(cls, make_dict_structure_fn(cls, converter, **renames))
        converter.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, converter, **renames))
    return converter


_converter = _make_converter()


def _structure_field(field: attrs.Attribute, value: Any) -> Any:
    """One field's value from JSON; Literal fields must be one of their choices."""
    choices = get_args(field.type)
    if choices and all(isinstance(choice, str) for choice in choices):
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, not {value!r}")
        return value
    assert field.type is not None  # every Settings field is annotated
    return _converter.structure(value, field.type)


def _parse_object(cls: type, raw: Any, base: Any, where: str, problems: list[str]) -> Any:
    """Build `cls` from `raw`, field by field, keeping `base`'s value wherever `raw`'s is unusable."""
    if not isinstance(raw, dict):
        problems.append(f"{where or 'settings'}: expected an object, not {raw!r}")
        return base
    by_wire_name = {camel_case(f.name): f for f in attrs.fields(cls)}
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        field = by_wire_name.get(key) or by_wire_name.get(camel_case(_snake(key)))
        path = f"{where}.{key}" if where else key
        if field is None:
            problems.append(f"{path}: unknown setting, ignored")
            continue
        try:
            if attrs.has(field.type):
                changes[field.name] = _parse_object(
                    field.type, value, getattr(base, field.name), path, problems
                )
                continue
            structured = _structure_field(field, value)
            attrs.evolve(base, **{field.name: structured})  # runs the field's validator
            changes[field.name] = structured
        except Exception as exc:
            message = str(exc) or type(exc).__name__
            problems.append(f"{path}: {message}; keeping {getattr(base, field.name)!r}")
    return attrs.evolve(base, **changes)


def parse_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Settings from a client's JSON object, and a message for each value that could not be used.

    `base` supplies the values of fields `raw` does not mention (the current settings on a change).
    """
    problems: list[str] = []
    if raw is None:
        return base or Settings(), problems
    return _parse_object(Settings, raw, base or Settings(), "", problems), problems


def settings_to_wire(settings: Settings) -> dict[str, Any]:
    """The settings as the client would send them (camelCase JSON)."""
    return _converter.unstructure(settings)


def api_key(engine: EngineSettings) -> str | None:
    """The remote server's API key, read from the environment variable the settings name."""
    return os.environ.get(engine.api_key_env) if engine.api_key_env else None
