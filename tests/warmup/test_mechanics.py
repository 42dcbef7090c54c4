"""The warm-up end to end on a tiny Qwen2 model (random weights, the real vocabulary): data, training
steps, the GGUF adapter, llama.cpp applying it; a wrong base refused; an interrupted run resumed.

Nothing here is timed, and no answer is compared to a fixed string: the tiny model writes noise. What
must hold on any machine: llama.cpp computes with the exported adapter what transformers computes with
the trained LoRA, the adapter changes the model's output, and a resumed run ends where an uninterrupted
one does.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fim_lsp.config import Settings
from fim_lsp.errors import ConfigurationError
from tests.warmup.conftest import MODULES, WarmedUp, run_environment, warmup_command

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("transformers")

pytestmark = [pytest.mark.model, pytest.mark.slow]

#: ggml's type number of float16 tensors.
GGML_F16 = 1
PROMPT = "<|fim_prefix|>def area(width, height):\n    return<|fim_suffix|>\n<|fim_middle|>"


def last_logits(model: Path, adapter: Path | None, text: str = PROMPT) -> np.ndarray:
    """llama.cpp's logits after `text`, with the adapter applied (if any)."""
    import llama_cpp

    llm = llama_cpp.Llama(
        str(model), n_ctx=512, n_threads=1, lora_path=str(adapter) if adapter else None, verbose=False
    )
    try:
        llm.eval(llm.tokenize(text.encode(), add_bos=False, special=True))
        pointer = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),)).copy()
    finally:
        llm.close()


def test_the_warmup_writes_an_adapter_that_changes_what_llama_cpp_computes(warmed_up: WarmedUp) -> None:
    from fim_lsp.warmup.adapters import adapter_info, model_sha256
    from fim_lsp.warmup.gguf_file import read_header

    info = adapter_info(warmed_up.adapter)
    assert info.steps == 6 and info.rank == 16 and info.fim_order == "spm"
    tensors = read_header(warmed_up.adapter).tensors.values()
    assert tensors and {tensor.ggml_type for tensor in tensors} == {GGML_F16}, (
        "the run asked for float16 weights"
    )
    assert info.base_sha256 == model_sha256(warmed_up.model)
    assert info.sources == "geometry-project"
    base, adapted = last_logits(warmed_up.model, None), last_logits(warmed_up.model, warmed_up.adapter)
    assert np.abs(adapted - base).max() > 1e-2


def test_the_settings_it_suggests_name_a_model_given_by_path(warmed_up: WarmedUp) -> None:
    """`auto` cannot hold to a file outside the catalogue, so the suggested settings must name it."""
    line = next(line for line in warmed_up.stderr.splitlines() if "use it: settings " in line)
    suggested = json.loads(line.split("use it: settings ", 1)[1])
    assert suggested == {"model": str(warmed_up.model), "adapter": str(warmed_up.adapter)}


def test_the_embedded_engine_serves_with_the_adapter(warmed_up: WarmedUp) -> None:
    from fim_lsp.engine.base import GenerationRequest
    from fim_lsp.engine.llama_cpp import LlamaCppEngine
    from fim_lsp.prompt import FimPrompt

    settings = Settings(model=str(warmed_up.model), adapter=str(warmed_up.adapter), threads=1, gpu_layers=0)
    engine = LlamaCppEngine.from_settings(settings)
    try:
        assert engine.describe()["adapter"] == str(warmed_up.adapter)
        written = engine.generate(
            GenerationRequest(prompt=FimPrompt("def area(width, height):\n    return", "\n"), max_tokens=4)
        )
        assert written.generated_tokens >= 1 or written.reached_eot
    finally:
        engine.close()


def test_held_out_files_are_named_and_never_trained_on(warmed_up: WarmedUp, shipped_model: Path) -> None:
    import llama_cpp

    recipe = json.loads((warmed_up.work_dir / "recipe.json").read_text())
    held_out = next(iter(recipe["held_out"].values()))
    assert held_out, "a fifth of five files holds out at least one"
    assert all(name in warmed_up.stderr for name in held_out)
    vocabulary = llama_cpp.Llama(str(shipped_model), vocab_only=True, verbose=False)
    trained = [
        vocabulary.detokenize(json.loads(line)["tokens"], special=True).decode("utf-8", "replace")
        for line in (warmed_up.work_dir / "sequences.jsonl").read_text().splitlines()
    ]
    assert trained
    for relative in held_out:
        own_lines = {line.strip() for line in MODULES[relative].splitlines() if len(line.strip()) > 30}
        others = "".join(text for name, text in MODULES.items() if name != relative)
        telling = [line for line in own_lines if line not in others]
        assert telling
        assert not any(line in text for line in telling for text in trained), relative
    evaluation = [json.loads(line) for line in warmed_up.eval_tasks.read_text().splitlines()]
    assert evaluation and {task["path"] for task in evaluation} <= set(held_out)


def test_an_adapter_for_another_model_is_refused(warmed_up: WarmedUp, tiny_models: tuple[Path, Path]) -> None:
    from fim_lsp.engine.llama_cpp import LlamaCppEngine

    with pytest.raises(ConfigurationError) as refused:
        LlamaCppEngine.from_settings(Settings(model=str(tiny_models[1]), adapter=str(warmed_up.adapter)))
    assert "was trained on" in str(refused.value) and tiny_models[1].name in str(refused.value)


@pytest.mark.parametrize("weight_type", ["float32", "float16"])
def test_llama_cpp_applies_the_exported_adapter_as_transformers_applies_the_lora(
    tiny_models: tuple[Path, Path], tmp_path: Path, weight_type: str
) -> None:
    """The export's names, shapes and scale are right, and the weights loaded from the GGUF are the
    ones llama.cpp runs: both compute the same logits, which the adapter moves far more than that."""
    from fim_lsp.warmup.adapters import AdapterRecord, model_sha256
    from fim_lsp.warmup.export import base_architecture, write_adapter
    from fim_lsp.warmup.train import TrainConfig, lora_weights, with_lora
    from fim_lsp.warmup.weights import load_model

    model_path = tiny_models[0]
    torch.set_num_threads(1)
    torch.manual_seed(3)
    config = TrainConfig(rank=4, alpha=8, dropout=0.0, gradient_checkpointing=False, dtype="float32")
    model = with_lora(load_model(model_path), config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_" in name:
                parameter.normal_(0.0, 0.2)
    model.eval()
    adapter = tmp_path / "random.gguf"
    architecture, blocks = base_architecture(model_path)
    record = AdapterRecord(model_sha256(model_path), "tiny", 4, 8, "psm", 256, 0, 0, "none")
    write_adapter(adapter, lora_weights(model), architecture, blocks, record, weight_type)

    from fim_lsp.engine.llama_cpp import LlamaCppEngine

    engine = LlamaCppEngine.from_settings(Settings(model=str(model_path), threads=1, gpu_layers=0))
    tokens = engine.tokenize(PROMPT)
    engine.close()
    with torch.no_grad():
        expected = model(torch.tensor([tokens])).logits[0, -1].numpy()
    base, adapted = last_logits(model_path, None), last_logits(model_path, adapter)
    tolerance = 0.02
    assert np.abs(adapted - expected).max() < tolerance
    assert np.abs(adapted - base).max() > 10 * tolerance


def test_a_batch_is_trained_on_the_mean_of_its_sequences_losses(tiny_models: tuple[Path, Path]) -> None:
    """Padding a short sequence to the longest of its batch changes none of its answer's losses."""
    from fim_lsp.warmup.data import TrainingSequence
    from fim_lsp.warmup.train import TrainConfig, answer_loss, with_lora
    from fim_lsp.warmup.weights import load_model

    torch.set_num_threads(1)
    torch.manual_seed(4)
    config = TrainConfig(rank=4, alpha=8, dropout=0.0, gradient_checkpointing=False, dtype="float32")
    model = with_lora(load_model(tiny_models[0]), config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_" in name:
                parameter.normal_(0.0, 0.2)
    rng = np.random.default_rng(6)
    batch = [
        TrainingSequence(rng.integers(0, 150_000, length).tolist(), answer_start=start, kind="single-line")
        for length, start in ((40, 30), (25, 5), (33, 32))
    ]
    with torch.no_grad():
        together = float(answer_loss(model, batch, "cpu"))
        alone = [float(answer_loss(model, [sequence], "cpu")) for sequence in batch]
    assert together == pytest.approx(sum(alone) / len(alone), rel=1e-5)
    assert max(alone) - min(alone) > 1e-3


@pytest.mark.parametrize(
    ("batch_size", "checkpoints"),
    [(1, {"save_every": 1}), (2, {"save_every_s": 0.0})],
    ids=["one-a-step-saved-by-steps", "two-a-step-saved-by-time"],
)
def test_an_interrupted_run_resumes_to_where_an_uninterrupted_one_ends(
    tiny_models: tuple[Path, Path], tmp_path: Path, batch_size: int, checkpoints: dict[str, Any]
) -> None:
    from fim_lsp.warmup.data import TrainingSequence
    from fim_lsp.warmup.train import TrainConfig, load_checkpoint, train

    rng = np.random.default_rng(5)
    sequences = [
        TrainingSequence(rng.integers(0, 150_000, 40).tolist(), answer_start=30, kind="single-line")
        for _ in range(3)
    ]
    config = TrainConfig(
        steps=5,
        batch_size=batch_size,
        learning_rate=1e-2,
        warmup_steps=1,
        threads=1,
        dtype="float32",
        **checkpoints,
    )
    whole = train(sequences, tiny_models[0], config, tmp_path / "whole")
    asked = []

    def stop_after_two() -> bool:
        asked.append(True)
        return len(asked) > 2

    stopped = train(sequences, tiny_models[0], config, tmp_path / "parts", stop=stop_after_two)
    assert stopped.stopped_by == "interrupt" and stopped.state.step == 2
    found = load_checkpoint(tmp_path / "parts")
    assert found is not None and found[0].step == 2
    resumed = train(sequences, tiny_models[0], config, tmp_path / "parts", resume=True)
    assert resumed.stopped_by == "steps" and resumed.state.step == 5
    assert resumed.state.sequences == 5 * batch_size
    assert resumed.state.tokens == whole.state.tokens == 5 * batch_size * 40
    for module, (a, b) in whole.lora.items():
        np.testing.assert_allclose(resumed.lora[module][0], a, atol=1e-5)
        np.testing.assert_allclose(resumed.lora[module][1], b, atol=1e-5)


def test_ctrl_c_stops_after_a_step_with_a_usable_adapter_and_the_run_resumes(
    tiny_models: tuple[Path, Path], repository: Path, tmp_path: Path
) -> None:
    from fim_lsp.warmup.adapters import adapter_info

    adapter = tmp_path / "adapter.gguf"
    command = warmup_command(tiny_models[0], repository, adapter, "--steps", "400")
    environment = run_environment(tmp_path / "cache")
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=environment)
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "step 3/400" in line:
            process.send_signal(signal.SIGINT)
            break
    _, rest = process.communicate(timeout=300)
    lines.append(rest or "")
    said = "".join(lines)
    assert process.returncode == 130, said[-2000:]
    assert "--resume" in said
    stopped_at = adapter_info(adapter).steps
    assert 3 <= stopped_at < 400
    done = subprocess.run(
        [*command[:-2], "--steps", str(stopped_at + 2), "--resume"],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming at step {stopped_at}" in done.stderr
    assert adapter_info(adapter).steps == stopped_at + 2
