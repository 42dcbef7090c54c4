"""LoRA training of the model on the warm-up's sequences (torch, transformers, peft).

The weights are the model's own GGUF file, which transformers reads and de-quantizes: the adapter is
trained against exactly the weights llama.cpp runs, and nothing is downloaded. The loss is taken on the
answer's tokens only, and only their logits are computed (the vocabulary has 151,936 tokens: logits for
a whole 1,000-token sequence would take 600 MB in float32, and their gradient as much again).

A step takes `batch_size` sequences, padded at their end to the longest: attention is causal, so what
follows a sequence's last token changes nothing before it. On a GPU a step's cost is mostly its fixed
overhead, so several sequences a step make a pass that much sooner; on a CPU the cost is per token, and
padding only adds to it.

A run checkpoints into its work folder (the adapter's weights, the optimizer's state, the step) every
`save_every_s` seconds of training, or every `save_every` steps where that is set, each checkpoint
written whole before it replaces the previous one, so an interrupted run resumes from the last one (a
1.5B's checkpoint takes about a second to write: every 10 steps, on a GPU, that was a third of the run).
Ctrl-C finishes the running step, checkpoints and stops; a second Ctrl-C stops at once, the previous
checkpoint intact.
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
#: Steps the loss kept in a checkpoint is averaged over.
LOSS_WINDOW = 10


@dataclass(frozen=True)
class TrainConfig:
    """How to train."""

    steps: int = 120
    """Optimizer steps, of `batch_size` sequences each."""
    batch_size: int = 1
    """Sequences a step; the step's loss is the mean of their answers' mean losses."""
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
    save_every_s: float = 120.0
    """Checkpoint after this much training time since the last checkpoint."""
    save_every: int | None = None
    """Checkpoint every this many steps as well."""
    seed: int = 1


@dataclass
class TrainState:
    """Where a run is, as saved in its checkpoint."""

    step: int = 0
    sequences: int = 0
    """Sequences trained on so far, the next one's place in the run's order."""
    tokens: int = 0
    """Tokens of the sequences trained on so far."""
    answer_tokens: int = 0
    seconds: float = 0.0
    """Training time so far, over every resumed run."""
    loss: float | None = None
    """Mean loss over the last `LOSS_WINDOW` steps."""


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


def answer_loss(model: Any, batch: Sequence[TrainingSequence], device: str) -> Any:
    """The mean over `batch` of each answer's mean cross-entropy, each token predicted from those before
    it (so a long answer weighs what a short one does, as with one sequence a step); only the answers'
    logits are computed, in one product."""
    import torch

    causal_lm = model.get_base_model()
    longest = max(len(sequence.tokens) for sequence in batch)
    ids = torch.tensor(
        [[*sequence.tokens, *[0] * (longest - len(sequence.tokens))] for sequence in batch], device=device
    )
    hidden = causal_lm.model(input_ids=ids, use_cache=False).last_hidden_state
    rows: list[int] = []
    columns: list[int] = []
    weights: list[float] = []
    for row, sequence in enumerate(batch):
        answer = range(sequence.answer_start, len(sequence.tokens))
        rows += [row] * len(answer)
        columns += answer
        weights += [1 / (len(answer) * len(batch))] * len(answer)
    row_index, column_index = torch.tensor(rows, device=device), torch.tensor(columns, device=device)
    logits = causal_lm.lm_head(hidden[row_index, column_index - 1]).float()
    losses = torch.nn.functional.cross_entropy(logits, ids[row_index, column_index], reduction="none")
    return (losses * torch.tensor(weights, device=device)).sum()


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
        saved = json.loads((folder / _STATE).read_text("utf-8"))
        state = TrainState(**saved)
    except (OSError, ValueError, TypeError):
        return None
    if "sequences" not in saved:  # a checkpoint without the count took one sequence a step
        state.sequences = state.step
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


def batch_at(count: int, taken: int, size: int, seed: int) -> list[int]:
    """The indices of the `size` sequences that follow the first `taken` of the run's order, pass after
    pass (a batch may span the end of one pass and the start of the next)."""
    orders: dict[int, list[int]] = {}
    indices = []
    for position in range(taken, taken + size):
        epoch, index = divmod(position, count)
        if epoch not in orders:
            orders[epoch] = order_of(count, epoch, seed)
        indices.append(orders[epoch][index])
    return indices


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
    if config.batch_size < 1:
        raise ValueError(f"a step takes at least one sequence (batch size {config.batch_size})")
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
    saved_at = state.seconds
    with _catching_interrupt() as interrupt:
        while state.step < config.steps:
            if interrupt.requested or (stop is not None and stop()):
                stopped_by = "interrupt"
                break
            if config.time_budget_s is not None and state.seconds >= config.time_budget_s:
                stopped_by = "time budget"
                break
            started = time.monotonic()
            batch = [
                sequences[index]
                for index in batch_at(len(sequences), state.sequences, config.batch_size, config.seed)
            ]
            torch.manual_seed(config.seed * 1_000_003 + state.step)  # dropout, the same on a resumed run
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, state.step, state.seconds)
            loss = answer_loss(model, batch, device)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            elapsed = time.monotonic() - started
            step_loss = float(loss.item())  # on a GPU, each read waits for the step to finish
            state.step += 1
            state.sequences += len(batch)
            state.tokens += sum(len(sequence.tokens) for sequence in batch)
            state.answer_tokens += sum(len(sequence.tokens) - sequence.answer_start for sequence in batch)
            state.seconds += elapsed
            recent = [*recent[-(LOSS_WINDOW - 1) :], step_loss]
            state.loss = sum(recent) / len(recent)
            if report is not None:
                report(
                    Progress(
                        state.step,
                        config.steps,
                        step_loss,
                        state.tokens,
                        state.seconds,
                        elapsed,
                        peak_memory_mb(device),
                    )
                )
            if (
                state.step == config.steps
                or state.seconds - saved_at >= config.save_every_s
                or (config.save_every and state.step % config.save_every == 0)
            ):
                save_checkpoint(work_dir, model, optimizer, state)
                saved_at = state.seconds
    saved = load_checkpoint(work_dir)
    if saved is None or saved[0].step != state.step:
        save_checkpoint(work_dir, model, optimizer, state)
    return TrainResult(state, stopped_by, peak_memory_mb(device), device, lora_weights(model))
