"""`fim-lsp doctor`: one screen that says whether this machine can serve completions, and if not, why.

Each check prints `ok`, `warn` or `FAIL` with a line of detail; the exit code is non-zero when any check
failed, so scripts can use it.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fim_lsp import __version__

if TYPE_CHECKING:
    from fim_lsp.config import Settings
    from fim_lsp.engine.base import Engine

Check = tuple[str, str, str]  # (verdict, what, detail)

#: Tokens doctor lets the model write to time its writing speed.
SPEED_NEW_TOKENS = 24
#: Tokens of a typical one-line answer, for the estimate of a keystroke with a warm cache.
LINE_TOKENS = 12


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
        _check_weight_buffers(gpu),
    ]


def _check_weight_buffers(gpu: bool) -> Check:
    """Where the model's weights go: repacked for this CPU's kernels, or plain where this build offers a
    buffer type that crashes in some builds and it failed here (see `extra_buffers_work`). With a GPU
    the default settings offload every layer, and the CPU keeps only the token embeddings, which no
    repacking speeds up."""
    from fim_lsp.engine.llama_library import cpu_extra_buffer_types, extra_buffers_are_safe, tried_verdict

    offered = cpu_extra_buffer_types()
    if not offered:
        return ("ok", "weight buffers", "plain CPU buffers")
    offers = ", ".join(offered)
    if extra_buffers_are_safe(offered):
        return (
            "ok",
            "weight buffers",
            f"repacked for this CPU's kernels ({offers}); `auto` loads a model's Q4_0 copy where it reads"
            " prompts faster",
        )
    verdict = tried_verdict()
    if verdict is None:
        return (
            "ok",
            "weight buffers",
            f"this llama.cpp build offers {offers}; the first model load tries AMX in a child process"
            " before using it",
        )
    if not verdict:
        crashed = f"this llama.cpp build offers {offers}, and its AMX kernels crashed here"
        if gpu:
            return (
                "ok",
                "weight buffers",
                f"{crashed}; the layers run on the GPU, and the few weights left on the CPU stay in plain"
                " buffers",
            )
        return (
            "warn",
            "weight buffers",
            f"{crashed}, so the weights stay in plain CPU buffers (slower): `make setup` builds llama.cpp"
            " so that they run",
        )
    return ("ok", "weight buffers", f"AMX, tried here (offered: {offers}); `auto` loads Q4_0 copies")


def _check_model(model: str, measure: bool) -> tuple[str, list[Check]]:
    """The model the checks load (the one named, or the one `auto` chooses here), and its line. With
    `measure`, the speeds `auto` chooses by are timed first where none are kept, so that on a new
    machine this line and the choice's line name the same model."""
    from fim_lsp.config import AUTO_MODEL, Settings
    from fim_lsp.errors import FimError
    from fim_lsp.fit import choose_model
    from fim_lsp.models import resolve_model

    try:
        weights = None
        if model == AUTO_MODEL:
            choice = choose_model(Settings(), measure=measure)
            model, weights = choice.model, choice.weights
        started = time.monotonic()
        path = weights or resolve_model(model)
    except FimError as exc:
        return model, [("FAIL", "model", str(exc))]
    return model, [("ok", "model", f"{model}: {path} (verified, {time.monotonic() - started:.1f} s)")]


def _check_choice(model: str) -> list[Check]:
    """What `auto` loads here and why, from the measured speeds (timing each installed model once)."""
    from fim_lsp.config import AUTO_MODEL, Settings
    from fim_lsp.errors import FimError
    from fim_lsp.fit import choose_model, installed_models, timed_weights, weights_name

    settings = Settings(model=model)
    try:
        choice = choose_model(settings)
        speeds = []
        for manifest in installed_models():
            for weights, speed in timed_weights(manifest, settings.threads, measure=False):
                if speed is not None:
                    label = weights_name(manifest.name, weights.path)
                    speeds.append(f"{label} {speed.prompt:.0f}/{speed.writing:.0f}")
    except FimError as exc:
        return [("FAIL", "model choice", str(exc))]
    measured = f" (prompt/writing tokens a second: {', '.join(speeds)})" if speeds else ""
    what = "chosen for this machine" if model == AUTO_MODEL else "named"
    return [("ok", "model choice", f"{choice.model} {what}: {choice.reason}{measured}")]


def _check_template(model: str, setting: str) -> list[Check]:
    """Load what the `model` setting `setting` loads (`model` by name: the one `auto` chose)."""
    from fim_lsp.config import Settings
    from fim_lsp.engine.llama_cpp import LlamaCppEngine
    from fim_lsp.errors import FimError

    try:
        engine = LlamaCppEngine.from_settings(Settings(model=setting, context_size=1024, prompt_memory_mb=1))
    except FimError as exc:
        return [("FAIL", "model loads", str(exc))]
    try:
        facts = engine.describe()
        loads: Check = (
            "ok",
            "model loads",
            f"{Path(str(facts['model'])).name} in {facts['load_seconds']} s, "
            + (f"with the adapter {facts['adapter']}, " if facts.get("adapter") else "no adapter, ")
            + f"FIM template {facts['template']}, gpu offload {'on' if facts['gpu_offload'] else 'off'}",
        )
        return [loads, _check_speed(engine, model)]
    finally:
        engine.close()


def _check_speed(engine: Engine, model: str) -> Check:
    """How fast this machine evaluates a prompt and writes with the model, and what that means for the
    default settings: a prompt the cache does not hold costs the whole context budget."""
    from importlib import resources

    from fim_lsp.config import Settings
    from fim_lsp.engine.base import GenerationRequest
    from fim_lsp.fit import SPEED_PROMPT_CHARS
    from fim_lsp.models import fast_model
    from fim_lsp.prompt import FimPrompt

    code = resources.files("fim_lsp").joinpath("data/replay/jobs.py").read_text("utf-8")
    prompt = FimPrompt(code[:SPEED_PROMPT_CHARS], "", "psm")
    generation = engine.generate(
        GenerationRequest(prompt=prompt, max_tokens=SPEED_NEW_TOKENS, reuse_cache=False)
    )
    return speed_estimate(
        generation.evaluated_tokens,
        generation.prompt_ms,
        generation.generated_tokens,
        generation.generate_ms,
        Settings(),
        fast_model().name,
        model,
    )


def speed_estimate(
    evaluated: int,
    prompt_ms: float,
    generated: int,
    generate_ms: float,
    settings: Settings,
    fast: str,
    model: str,
) -> Check:
    """The speed line of doctor's report from one timed generation: rates, the prompt a request the
    cache does not hold gets here (the settings' budget, or what fits the time budget at this speed) and
    what it takes, and a warning when that prompt is too short to answer well, or too slow to answer in
    time (the first request at a new place then answers nothing)."""
    from fim_lsp.fit import MIN_USEFUL_BUDGET
    from fim_lsp.pipeline import affordable_budget

    prompt_rate = evaluated / (prompt_ms / 1000) if prompt_ms > 0 else 0.0
    # The first token comes with the prompt's time; the rest are the writing speed.
    write_rate = (generated - 1) / (generate_ms / 1000) if generated > 1 and generate_ms > 0 else 0.0
    if prompt_rate <= 0 or write_rate <= 0:
        return ("warn", "speed", f"could not be timed ({evaluated} prompt tokens, {generated} written)")
    fitted = settings.context_budget is None
    budget = (
        min(settings.budget_cap, affordable_budget(prompt_rate, settings)) if fitted else settings.budget_cap
    )
    share = settings.workspace_context_share if settings.workspace_context else 0.0
    cold_tokens = round(budget * (1 + share))
    cold_s = cold_tokens / prompt_rate
    line_s = LINE_TOKENS / write_rate
    how = "cut to fit the time budget at this speed" if fitted else "the contextBudget setting's"
    detail = (
        f"prompt {prompt_rate:.0f} tokens/s, writing {write_rate:.0f} tokens/s: a prompt the cache "
        f"does not hold ({budget:,} tokens of file, {how}; {cold_tokens:,} with workspace snippets) "
        f"takes ~{cold_s:.1f} s, a one-line answer ~{line_s:.1f} s more"
    )
    too_slow = cold_s * 1000 > settings.time_budget_ms
    if not too_slow and budget >= MIN_USEFUL_BUDGET:
        return ("ok", "speed", detail)
    advice = f"the fast model ({fast}), or" if model != fast else "a GPU or a remote engine, or"
    if too_slow:
        problem = (
            f"that is over the {settings.time_budget_ms / 1000:.0f} s time budget, so a request whose "
            "prompt is not cached (a file just opened, the cursor moved up) answers nothing: "
            f"{advice} a smaller contextBudget suits this machine"
        )
    else:
        problem = f"prompts this short say little about the file: {advice} a longer timeBudgetMs suits it"
    return ("warn", "speed", f"{detail}; {problem}")


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
    checks.extend(_check_llama())
    # Timing the models needs llama.cpp; without it the choice falls back to the best installed model.
    loaded, model_checks = _check_model(model, measure=all(verdict != "FAIL" for verdict, _, _ in checks))
    checks.extend(model_checks)
    checks.extend(_check_grammars())
    if all(verdict != "FAIL" for verdict, what, _ in checks if what in ("model", "llama-cpp-python")):
        checks.extend(_check_choice(model))
        # By name, so that the speed's advice knows whether the fast model is the one loaded.
        checks.extend(_check_template(loaded, model))
    from fim_lsp.warmup.adapters import doctor_checks

    checks.extend(doctor_checks())
    return checks


def doctor_command(args: argparse.Namespace) -> int:
    from fim_lsp.config import AUTO_MODEL, EngineSettings

    engine = EngineSettings(
        kind=args.engine,
        url=args.url,
        model=args.engine_model,
        api_key_env=args.api_key_env,
        template=args.template,
    )
    model = args.model or (AUTO_MODEL if args.engine == "embedded" else "")
    checks = run_checks(model, engine)
    width = max(len(what) for _, what, _ in checks)
    for verdict, what, detail in checks:
        print(f"{verdict:>4}  {what:<{width}}  {detail}")
    failed = sum(verdict == "FAIL" for verdict, _, _ in checks)
    print("\nall good" if not failed else f"\n{failed} problem(s); see above", file=sys.stdout)
    return 1 if failed else 0


def register_cli(commands: Any) -> None:
    parser = commands.add_parser("doctor", help="check the set-up: model, llama.cpp build, grammars")
    parser.add_argument(
        "--model",
        help="model name or GGUF path to check (default: `auto`, the model chosen for this machine)",
    )
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
