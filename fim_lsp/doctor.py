"""`fim-lsp doctor`: one screen that says whether this machine can serve completions, and if not, why.

Each check prints `ok`, `warn` or `FAIL` with a line of detail; the exit code is non-zero when any check
failed, so scripts can use it.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

from fim_lsp import __version__

Check = tuple[str, str, str]  # (verdict, what, detail)


def _check_llama() -> list[Check]:
    try:
        import llama_cpp
    except ImportError as exc:
        return [("FAIL", "llama-cpp-python", f"not importable ({exc}); run `make setup`")]
    gpu = bool(llama_cpp.llama_supports_gpu_offload())
    features = llama_cpp.llama_print_system_info().decode(errors="replace")
    wanted = [f for f in ("AVX2", "AVX512", "NEON", "CUDA", "METAL") if f"{f} = 1" in features]
    backend = "GPU offload (CUDA)" if gpu else "CPU only"
    return [
        ("ok", "llama-cpp-python", f"{llama_cpp.__version__}, backend: {backend}"),
        ("ok", "llama.cpp features", ", ".join(wanted) or features.strip()[:100]),
    ]


def _check_model(model: str) -> list[Check]:
    from fim_lsp.errors import FimError
    from fim_lsp.models import resolve_model

    try:
        started = time.monotonic()
        path = resolve_model(model)
    except FimError as exc:
        return [("FAIL", "model", str(exc))]
    return [("ok", "model", f"{model}: {path} (verified, {time.monotonic() - started:.1f} s)")]


def _check_template(model: str) -> list[Check]:
    from fim_lsp.config import Settings
    from fim_lsp.engine.llama_cpp import LlamaCppEngine
    from fim_lsp.errors import FimError

    try:
        engine = LlamaCppEngine.from_settings(Settings(model=model, context_size=512))
    except FimError as exc:
        return [("FAIL", "model loads", str(exc))]
    facts = engine.describe()
    engine.close()
    return [
        (
            "ok",
            "model loads",
            f"{facts['load_seconds']} s, FIM template {facts['template']}, "
            f"gpu offload {'on' if facts['gpu_offload'] else 'off'}",
        )
    ]


def _check_grammars() -> list[Check]:
    from fim_lsp import syntax

    loaded, failed = [], []
    for language in sorted(syntax.LANGUAGES):
        try:
            syntax.new_parser(language).parse(b"\n")
            loaded.append(language)
        except Exception as exc:  # any failure to load is what doctor reports
            failed.append(f"{language} ({exc})")
    if failed:
        return [("FAIL", "tree-sitter grammars", "cannot load: " + ", ".join(failed))]
    return [("ok", "tree-sitter grammars", f"{len(loaded)} offline: {', '.join(loaded)}")]


def run_checks(model: str, engine: Any = None) -> list[Check]:
    checks: list[Check] = [("ok", "fim-lsp", f"{__version__} on Python {platform.python_version()}")]
    if engine is not None and engine.kind != "embedded":
        from fim_lsp.config import Settings
        from fim_lsp.engine.remote import check_remote

        # A remote engine loads no local model: check its server, and the grammars we still need.
        return [*checks, *check_remote(Settings(engine=engine)), *_check_grammars()]
    steps: list[Callable[[], list[Check]]] = [_check_llama, lambda: _check_model(model), _check_grammars]
    for step in steps:
        checks.extend(step())
    if all(verdict != "FAIL" for verdict, what, _ in checks if what in ("model", "llama-cpp-python")):
        checks.extend(_check_template(model))
    return checks


def doctor_command(args: argparse.Namespace) -> int:
    from fim_lsp.config import EngineSettings
    from fim_lsp.models import default_model

    engine = EngineSettings(
        kind=args.engine,
        url=args.url,
        model=args.engine_model,
        api_key_env=args.api_key_env,
        template=args.template,
    )
    model = args.model or (default_model().name if args.engine == "embedded" else "")
    checks = run_checks(model, engine)
    width = max(len(what) for _, what, _ in checks)
    for verdict, what, detail in checks:
        print(f"{verdict:>4}  {what:<{width}}  {detail}")
    failed = sum(verdict == "FAIL" for verdict, _, _ in checks)
    print("\nall good" if not failed else f"\n{failed} problem(s); see above", file=sys.stdout)
    return 1 if failed else 0


def register_cli(commands: Any) -> None:
    parser = commands.add_parser("doctor", help="check the set-up: model, llama.cpp build, grammars")
    parser.add_argument("--model", help="model name or GGUF path to check (default: the default model)")
    parser.add_argument(
        "--engine",
        choices=["embedded", "llama-server", "openai", "ollama"],
        default="embedded",
        help="where the model runs (default: embedded)",
    )
    parser.add_argument("--url", help="a remote engine's URL, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--engine-model", help="the model name the remote server knows")
    parser.add_argument("--api-key-env", help="environment variable holding the remote server's API key")
    parser.add_argument("--template", help="FIM template family of a remote model (default: from its name)")
    parser.set_defaults(handler=doctor_command)
