"""`fim-lsp warmup FOLDER...`: cut tasks, train a LoRA adapter, write it for llama.cpp."""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, get_args

from fim_lsp.config import FimOrder

#: Sequences cut per training step asked for (a few more than one, as some holes give none).
TASKS_PER_STEP = 1.3


def _say(message: str) -> None:
    print(f"fim-lsp warmup: {message}", file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


class ProgressLine:
    """One updating line on a terminal, else a line every `every` steps: step, loss, speed, ETA (from
    the median of the recent steps: sequences differ in length, and a suspended run must not skew it)."""

    def __init__(self, every: int = 1, window: int = 10) -> None:
        self.tty = sys.stderr.isatty()
        self.every = every
        self.recent: list[float] = []
        self.window = window

    def __call__(self, progress: Any) -> None:
        self.recent = [*self.recent[-(self.window - 1) :], progress.step_seconds]
        per_step = sorted(self.recent)[len(self.recent) // 2]
        line = (
            f"step {progress.step}/{progress.steps}  loss {progress.loss:.3f}  "
            f"{progress.tokens:,} tokens  {progress.step_seconds:.1f} s/step  "
            f"ETA {_duration(per_step * (progress.steps - progress.step))}  "
            f"peak {progress.peak_memory_mb / 1024:.1f} GiB"
        )
        if self.tty:
            sys.stderr.write("\r" + line.ljust(100) + ("\n" if progress.step == progress.steps else ""))
            sys.stderr.flush()
        elif progress.step % self.every == 0 or progress.step == progress.steps:
            _say(line)


def default_output(model: str, folders: list[Path]) -> Path:
    from fim_lsp.warmup.adapters import adapters_dir

    stem = Path(model).stem if model.endswith(".gguf") else model
    names = "-".join(sorted(folder.name for folder in folders))[:60]
    return adapters_dir() / f"{stem}-{names}.gguf"


def suggested_settings(model: str, adapter: Path) -> dict[str, str]:
    """The settings that serve `adapter`, trained on `model` (a catalogue name or a GGUF path)."""
    from fim_lsp.models import known_models

    # `auto` holds to a known model's files when an adapter trained on it is set, so naming the
    # model would only keep the server off its faster Q4_0 copy; a file given by path must be named.
    if model in known_models():
        return {"adapter": str(adapter)}
    return {"model": model, "adapter": str(adapter)}


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _fingerprint(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def _load_sequences(path: Path) -> list[Any]:
    from fim_lsp.warmup.data import TrainingSequence

    with path.open(encoding="utf-8") as handle:
        return [TrainingSequence.from_json(json.loads(line)) for line in handle if line.strip()]


def _save_sequences(path: Path, sequences: list[Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for sequence in sequences:
            handle.write(json.dumps(sequence.to_json()) + "\n")
    temporary.replace(path)


def warmup_command(args: argparse.Namespace) -> int:
    try:
        return _warmup(args)
    except KeyboardInterrupt:
        # Training handles Ctrl-C itself (it checkpoints); this is one while cutting tasks or loading.
        _say("interrupted")
        return 130


def _warmup(args: argparse.Namespace) -> int:
    import attrs

    from fim_lsp.config import NO_ADAPTER, Settings
    from fim_lsp.errors import FimError
    from fim_lsp.models import resolve_model
    from fim_lsp.warmup import data
    from fim_lsp.warmup.adapters import model_sha256

    folders = [Path(folder).resolve() for folder in args.folders]
    for folder in folders:
        if not folder.is_dir():
            _say(f"{folder} is not a folder")
            return 2
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        _say(
            f"training needs the warm-up's dependencies ({exc.name} is missing): "
            "pip install 'fim-lsp[warmup]'"
        )
        return 2
    settings = Settings()
    if args.model:
        model = args.model
    else:
        from fim_lsp.fit import choose_model

        model = choose_model(settings).model  # what the server loads here, `auto` resolved
    settings = attrs.evolve(
        settings,
        model=model,
        adapter=NO_ADAPTER,  # the warm-up trains the model itself, not an adapter over it
        fim_order=args.order,
        context_budget=args.context_budget or settings.budget_cap,
        threads=args.threads,
        gpu_layers=0,
    )
    try:
        model_path = resolve_model(model)
    except FimError as exc:
        _say(str(exc))
        return 1
    base_sha256 = model_sha256(model_path)
    output = Path(args.output).expanduser().resolve() if args.output else default_output(model, folders)
    work_dir = Path(args.work_dir).resolve() if args.work_dir else output.with_name(output.name + ".work")
    mix = data.Mix(args.kshot_share, args.shots, args.without_snippets_share, args.max_tokens)
    wanted = args.steps * args.batch_size * TASKS_PER_STEP
    per_kind = args.per_kind or max(10, math.ceil(wanted / (4 * len(folders))))

    chosen = data.sources(folders, args.held_out, args.seed)
    for source in chosen:
        shown = ", ".join(sorted(source.held_out)) or "none"
        _say(f"held out of {source.name} (never trained on, {len(source.held_out)} files): {shown}")
    recipe = {
        "base_sha256": base_sha256,
        "folders": [str(folder) for folder in folders],
        "held_out": {source.name: sorted(source.held_out) for source in chosen},
        "per_kind": args.per_kind,
        "mix": asdict(mix),
        "order": args.order,
        "context_budget": settings.context_budget,
        "seed": args.seed,
    }
    data_file, recipe_file = work_dir / "sequences.jsonl", work_dir / "recipe.json"
    if args.resume and recipe_file.is_file():
        saved = json.loads(recipe_file.read_text("utf-8"))
        if saved.get("fingerprint") != _fingerprint(recipe):
            _say(
                f"{work_dir} holds a run with other data or another model; run without --resume to start over"
            )
            return 2
    elif work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)

    if args.eval_tasks:
        _write_eval_tasks(Path(args.eval_tasks), chosen, args.eval_per_kind, args.seed)
    from fim_lsp.engine.llama_cpp import LlamaCppEngine

    engine = None
    if args.resume and data_file.is_file():
        sequences = _load_sequences(data_file)
        _say(f"{len(sequences)} sequences from {data_file}")
    else:
        started = time.monotonic()
        tasks = data.training_tasks(chosen, per_kind, args.seed)
        if not tasks:
            _say("no tasks could be cut from these folders")
            return 1
        _say(f"{len(tasks)} tasks cut ({data.kind_counts(tasks)}) in {time.monotonic() - started:.0f} s")
        try:
            engine = LlamaCppEngine.from_settings(settings)
        except FimError as exc:
            _say(str(exc))
            return 1
        try:
            order = engine.template.resolve_order(settings.fim_order)
            sequences, counts = data.build_sequences(tasks, settings, engine, mix, args.seed)
        finally:
            engine.close()
        _say(f"{counts}; prompts in {order.upper()} order, as the server sends them")
        if not sequences:
            _say("no training sequences")
            return 1
        _save_sequences(data_file, sequences)
        recipe_file.write_text(
            json.dumps({"fingerprint": _fingerprint(recipe), "fim_order": order, **recipe}, indent=1) + "\n",
            "utf-8",
        )
    recipe_saved = json.loads(recipe_file.read_text("utf-8"))
    return _train_and_export(args, sequences, model, model_path, base_sha256, output, work_dir, recipe_saved)


def _train_and_export(
    args: argparse.Namespace,
    sequences: list[Any],
    model: str,
    model_path: Path,
    base_sha256: str,
    output: Path,
    work_dir: Path,
    recipe: dict[str, Any],
) -> int:
    from fim_lsp.warmup.adapters import AdapterRecord
    from fim_lsp.warmup.export import base_architecture, write_adapter
    from fim_lsp.warmup.train import TrainConfig, train

    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        time_budget_s=args.max_minutes * 60 if args.max_minutes else None,
        rank=args.rank,
        alpha=args.alpha or 2 * args.rank,
        learning_rate=args.learning_rate,
        dtype=args.dtype,
        device=args.device,
        threads=args.threads,
        gradient_checkpointing=not args.no_gradient_checkpointing,
        save_every_s=args.save_minutes * 60,
        save_every=args.save_every,
        seed=args.seed,
    )
    tokens = sum(len(s.tokens) for s in sequences)
    _say(
        f"training {model} ({model_path.name}): {config.steps} steps of {config.batch_size} "
        f"over {len(sequences)} sequences "
        f"({tokens:,} tokens), rank {config.rank}, {config.dtype}"
    )
    result = train(
        sequences, model_path, config, work_dir, resume=args.resume, report=ProgressLine(args.report_every)
    )
    state = result.state
    architecture, blocks = base_architecture(model_path)
    record = AdapterRecord(
        base_sha256=base_sha256,
        base_name=model,
        rank=config.rank,
        alpha=config.alpha,
        fim_order=recipe.get("fim_order", ""),
        context_budget=int(recipe.get("context_budget", 0)),
        steps=state.step,
        tokens=state.tokens,
        sources=",".join(Path(folder).name for folder in recipe.get("folders", [])),
    )
    write_adapter(output, result.lora, architecture, blocks, record, args.adapter_type)
    _say(
        f"{state.step} steps ({result.stopped_by}), {state.tokens:,} tokens "
        f"({state.answer_tokens:,} answer tokens), {_duration(state.seconds)} of training on "
        f"{result.device}, peak memory {result.peak_memory_mb / 1024:.1f} GiB"
    )
    _say(f"adapter: {output}")
    _say(f"use it: settings {json.dumps(suggested_settings(model, output))}")
    if result.stopped_by != "steps":
        _say(f"stopped by {result.stopped_by}; the same command with --resume goes on from step {state.step}")
        return 130 if result.stopped_by == "interrupt" else 0
    return 0


def _write_eval_tasks(path: Path, chosen: list[Any], per_kind: int, seed: int) -> None:
    from fim_lsp.warmup.data import evaluation_tasks

    tasks = [task for source in chosen for task in evaluation_tasks(source, per_kind, seed)]
    with path.open("w", encoding="utf-8") as handle:
        for task in tasks:
            handle.write(json.dumps(task.to_json(), ensure_ascii=False) + "\n")
    _say(f"{len(tasks)} evaluation tasks from the held-out files: {path}")


def register_cli(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "warmup",
        help="train a LoRA adapter of the model on FIM tasks cut from your code (needs fim-lsp[warmup])",
        description="Cut FIM tasks of every kind out of the given folders, rendered as the server prompts "
        "them, train a LoRA adapter of the model on them, and write it for llama.cpp (the `adapter` "
        "setting). "
        "A share of each folder's files is held out and never trained on.",
    )
    parser.add_argument(
        "folders", nargs="+", metavar="FOLDER", help="code to train on (any folder of source files)"
    )
    parser.add_argument("--model", help="model name or GGUF path (default: the model the server loads)")
    parser.add_argument("--steps", type=_at_least_one, default=120, help="training steps (120)")
    parser.add_argument(
        "--batch-size",
        type=_at_least_one,
        default=1,
        metavar="N",
        help="sequences a step (1; more are for a GPU: on a CPU one a step is fastest)",
    )
    parser.add_argument(
        "--output", metavar="ADAPTER.gguf", help="where the adapter goes (default: fim-lsp's cache)"
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        metavar="M",
        help="stop after M minutes of training (the learning rate decays by then)",
    )
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank (16)")
    parser.add_argument("--alpha", type=int, help="LoRA alpha (default: twice the rank)")
    parser.add_argument("--learning-rate", type=float, default=2e-4, help="peak learning rate (2e-4)")
    parser.add_argument("--kshot-share", type=float, default=0.25, help="share of k-shot sequences (0.25)")
    parser.add_argument("--shots", type=int, default=3, help="demonstrations in a k-shot sequence (3)")
    parser.add_argument(
        "--without-snippets-share",
        type=float,
        default=0.2,
        help="share of plain sequences prompted without workspace snippets (0.2)",
    )
    parser.add_argument(
        "--held-out", type=float, default=0.1, help="share of each folder's files held out (0.1)"
    )
    parser.add_argument(
        "--per-kind", type=int, help="tasks of each kind cut per folder (default: from --steps)"
    )
    parser.add_argument("--max-tokens", type=int, default=2048, help="longest training sequence (2048)")
    parser.add_argument(
        "--context-budget", type=int, help="the prompts' context budget (default: the server's)"
    )
    parser.add_argument(
        "--order",
        choices=get_args(FimOrder),
        default="auto",
        help="FIM order of the prompts (default: the server's)",
    )
    parser.add_argument("--threads", type=int, help="CPU threads (default: one per core)")
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to train (auto)"
    )
    parser.add_argument(
        "--dtype", choices=["bfloat16", "float32"], default="bfloat16", help="weights' type (bfloat16)"
    )
    parser.add_argument(
        "--adapter-type",
        choices=["float32", "float16"],
        default="float32",
        help="how the adapter's weights are stored (float32; float16 is half the size)",
    )
    parser.add_argument(
        "--no-gradient-checkpointing", action="store_true", help="keep activations (faster, more memory)"
    )
    parser.add_argument(
        "--save-minutes",
        type=float,
        default=2.0,
        metavar="M",
        help="checkpoint every M minutes of training (2)",
    )
    parser.add_argument("--save-every", type=int, metavar="N", help="checkpoint every N steps as well")
    parser.add_argument(
        "--report-every", type=int, default=1, help="without a terminal, a progress line every N steps"
    )
    parser.add_argument(
        "--resume", action="store_true", help="go on from the last checkpoint of the same run"
    )
    parser.add_argument("--work-dir", help="checkpoints and data (default: beside the output, .work)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice (1)")
    parser.add_argument(
        "--eval-tasks", metavar="FILE", help="also write tasks cut from the held-out files here"
    )
    parser.add_argument(
        "--eval-per-kind", type=int, default=40, help="evaluation tasks of each kind per folder (40)"
    )
    parser.set_defaults(handler=warmup_command)
