"""LoRA training of the model on the warm-up's sequences (torch, transformers, peft).

The weights are the model's own GGUF file, which transformers reads and de-quantizes: the adapter is
trained against exactly the weights llama.cpp runs, and nothing is downloaded. The loss is taken on the
answer's tokens only, and only their logits are computed (the vocabulary has 151,936 tokens: logits for
a whole 1,000-token sequence would take 600 MB in float32, and their gradient as much again).

A run checkpoints every `save_every` steps into its work folder (the adapter's weights, the optimizer's
state, the step), each checkpoint written whole before it replaces the previous one, so an interrupted
run resumes from the last one. Ctrl-C finishes the running step, checkpoints and stops; a second Ctrl-C
stops at once, the previous checkpoint intact.
"""

from __future__ import annotations

import json
import logging
import math
import resource
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fim_lsp.warmup.data import TrainingSequence

logger = logging.getLogger(__name__)

#: The linear layers of a Qwen2 block the adapter is trained on: all of them.
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CHECKPOINT = "checkpoint"
_STATE = "state.json"
_WEIGHTS = "adapter.pt"
_OPTIMIZER = "optimizer.pt"


@dataclass(frozen=True)
class TrainConfig:
    """How to train."""

    steps: int = 120
    """Optimizer steps (one sequence each)."""
    time_budget_s: float | None = None
    """Stop once this much training time has passed (over resumed runs too), whatever the step; the
    learning rate's decay then follows the clock where it runs out before the steps."""
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    learning_rate: float = 2e-4
    warmup_steps: int = 10
    """Steps over which the learning rate rises from zero; it then falls along a cosine to a tenth."""
    dtype: str = "bfloat16"
    """`bfloat16` (half the memory, and faster on CPUs with bf16 instructions) or `float32`."""
    device: str = "auto"
    """`auto` (a CUDA GPU when torch sees one, else the CPU), `cpu` or `cuda`."""
    threads: int | None = None
    """CPU threads for torch (default: torch's own choice, one per core)."""
    gradient_checkpointing: bool = True
    """Recompute each block's activations in the backward pass instead of keeping them."""
    save_every: int = 10
    seed: int = 1


@dataclass
class TrainState:
    """Where a run is, as saved in its checkpoint."""

    step: int = 0
    tokens: int = 0
    """Tokens of the sequences trained on so far."""
    answer_tokens: int = 0
    seconds: float = 0.0
    """Training time so far, over every resumed run."""
    loss: float | None = None
    """Mean loss over the last `save_every` steps."""


@dataclass(frozen=True)
class Progress:
    """A step done, for the progress line."""

    step: int
    steps: int
    loss: float
    tokens: int
    seconds: float
    step_seconds: float
    peak_memory_mb: float


@dataclass
class TrainResult:
    state: TrainState
    stopped_by: str
    """`steps`, `time budget` or `interrupt`."""
    peak_memory_mb: float
    device: str
    lora: dict[str, Any]
    """{module name: (A, B)} as float32 numpy arrays, for the export."""


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def peak_memory_mb(device: str) -> float:
    """Peak resident memory of this process (CPU), or peak memory allocated on the GPU."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_base(model_path: Path, dtype: str, device: str) -> Any:
    """The model of a GGUF file, de-quantized (see `weights`); never touches the network."""
    from fim_lsp.warmup.weights import load_model

    return load_model(model_path, dtype, device)


def with_lora(base: Any, config: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    if config.gradient_checkpointing:
        options = {"use_reentrant": False}
        if hasattr(base, "activation_checkpointing_enable"):  # transformers 5's name for it
            base.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
        else:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(TARGET_MODULES),
        bias="none",
    )
    return get_peft_model(base, lora)


def answer_loss(model: Any, tokens: Sequence[int], answer_start: int, device: str) -> Any:
    """Mean cross-entropy of the answer's tokens, each predicted from those before it; only the
    answer's logits are computed."""
    import torch

    causal_lm = model.get_base_model()
    ids = torch.tensor([list(tokens)], device=device)
    hidden = causal_lm.model(input_ids=ids, use_cache=False).last_hidden_state
    logits = causal_lm.lm_head(hidden[:, answer_start - 1 : len(tokens) - 1]).float()
    return torch.nn.functional.cross_entropy(logits[0], ids[0, answer_start:])


def learning_rate(config: TrainConfig, step: int, seconds: float = 0.0) -> float:
    """Linear warm-up, then a cosine down to a tenth of the peak at the end of the run: the last step, or
    the end of the time budget where that comes first (`seconds` of training so far), so that a run
    stopped by the clock has still cooled down."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    done = min(1.0, (step - config.warmup_steps) / span)
    if config.time_budget_s:
        done = max(done, min(1.0, seconds / config.time_budget_s))
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))


def lora_weights(model: Any) -> dict[str, Any]:
    """{transformers module name: (A, B)} of the trained adapter, as float32 numpy arrays."""
    weights = {}
    for name, module in model.get_base_model().named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            a = module.lora_A["default"].weight.detach().float().cpu().numpy()
            b = module.lora_B["default"].weight.detach().float().cpu().numpy()
            weights[name] = (a, b)
    return weights


# --- checkpoints --------------------------------------------------------------------------------------


def load_checkpoint(work_dir: Path) -> tuple[TrainState, Path] | None:
    """The last checkpoint's state and folder, if the work folder has one."""
    folder = work_dir / CHECKPOINT
    try:
        state = TrainState(**json.loads((folder / _STATE).read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return state, folder


def save_checkpoint(work_dir: Path, model: Any, optimizer: Any, state: TrainState) -> None:
    """Write the checkpoint beside the old one, then swap it in: a crash leaves one whole checkpoint."""
    import torch
    from peft import get_peft_model_state_dict

    fresh = work_dir / f".{CHECKPOINT}.new"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    torch.save(get_peft_model_state_dict(model), fresh / _WEIGHTS)
    torch.save(optimizer.state_dict(), fresh / _OPTIMIZER)
    (fresh / _STATE).write_text(json.dumps(asdict(state)) + "\n", "utf-8")
    current, old = work_dir / CHECKPOINT, work_dir / f".{CHECKPOINT}.old"
    shutil.rmtree(old, ignore_errors=True)
    if current.exists():
        current.rename(old)
    fresh.rename(current)
    shutil.rmtree(old, ignore_errors=True)


def restore(folder: Path, model: Any, optimizer: Any) -> None:
    import torch
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(model, torch.load(folder / _WEIGHTS, weights_only=True))
    optimizer.load_state_dict(torch.load(folder / _OPTIMIZER, weights_only=True))


def recover_checkpoint(work_dir: Path) -> None:
    """Finish a swap a crash interrupted: the old checkpoint back, or the new one in, whichever is whole."""
    current, old, fresh = (
        work_dir / name for name in (CHECKPOINT, f".{CHECKPOINT}.old", f".{CHECKPOINT}.new")
    )
    if not current.exists():
        for candidate in (fresh, old):
            if (candidate / _STATE).is_file():
                candidate.rename(current)
                break
    for leftover in (old, fresh):
        shutil.rmtree(leftover, ignore_errors=True)


# --- the loop -----------------------------------------------------------------------------------------


class _Interrupt:
    """Ctrl-C asks the loop to stop after the running step; a second one stops at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, _signum: int, _frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("stopping after this step (Ctrl-C again to stop at once)")


@contextmanager
def _catching_interrupt() -> Iterator[_Interrupt]:
    interrupt = _Interrupt()
    try:
        previous = signal.signal(signal.SIGINT, interrupt)
    except ValueError:  # not the main thread: no signal handling, Ctrl-C is not ours to catch
        yield interrupt
        return
    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)


def order_of(count: int, epoch: int, seed: int) -> list[int]:
    """The order sequences are taken in during one pass: the first pass as built, later ones shuffled."""
    import random

    order = list(range(count))
    if epoch:
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def train(
    sequences: Sequence[TrainingSequence],
    model_path: Path,
    config: TrainConfig,
    work_dir: Path,
    *,
    resume: bool = False,
    report: Callable[[Progress], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train an adapter on `sequences`, checkpointing into `work_dir`; with `resume`, go on from its
    last checkpoint. `stop` is asked before each step (tests interrupt a run through it)."""
    import torch

    if not sequences:
        raise ValueError("no training sequences")
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model = with_lora(load_base(model_path, config.dtype, device), config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=0.0)
    state = TrainState()
    work_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        recover_checkpoint(work_dir)
        found = load_checkpoint(work_dir)
        if found is not None:
            state, folder = found
            restore(folder, model, optimizer)
            logger.info("resuming at step %d of %d", state.step, config.steps)
    model.train()
    stopped_by = "steps"
    recent: list[float] = []
    with _catching_interrupt() as interrupt:
        while state.step < config.steps:
            if interrupt.requested or (stop is not None and stop()):
                stopped_by = "interrupt"
                break
            if config.time_budget_s is not None and state.seconds >= config.time_budget_s:
                stopped_by = "time budget"
                break
            started = time.monotonic()
            epoch, index = divmod(state.step, len(sequences))
            sequence = sequences[order_of(len(sequences), epoch, config.seed)[index]]
            torch.manual_seed(config.seed * 1_000_003 + state.step)  # dropout, the same on a resumed run
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, state.step, state.seconds)
            loss = answer_loss(model, sequence.tokens, sequence.answer_start, device)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            elapsed = time.monotonic() - started
            state.step += 1
            state.tokens += len(sequence.tokens)
            state.answer_tokens += len(sequence.tokens) - sequence.answer_start
            state.seconds += elapsed
            recent = (
                [*recent[-(config.save_every - 1) :], float(loss.item())]
                if config.save_every > 1
                else [float(loss.item())]
            )
            state.loss = sum(recent) / len(recent)
            if report is not None:
                report(
                    Progress(
                        state.step,
                        config.steps,
                        float(loss.item()),
                        state.tokens,
                        state.seconds,
                        elapsed,
                        peak_memory_mb(device),
                    )
                )
            if state.step % config.save_every == 0 or state.step == config.steps:
                save_checkpoint(work_dir, model, optimizer, state)
    saved = load_checkpoint(work_dir)
    if saved is None or saved[0].step != state.step:
        save_checkpoint(work_dir, model, optimizer, state)
    return TrainResult(state, stopped_by, peak_memory_mb(device), device, lora_weights(model))
