"""The SFT trainer on a tiny random Llama (two steps per run), and one run on the embedded SmolLM2."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.training.conftest import chat
from training.engine import checkpoints
from training.engine import trainer as trainer_module
from training.engine.config import TrainConfig
from training.engine.interface import Progress, TrainExample
from training.engine.modeling import apply_method, linear_module_names, load_base, load_trained, read_run
from training.engine.trainer import train

pytestmark = pytest.mark.usefixtures("one_thread")

LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.logs: list[Progress] = []
        self.messages: list[str] = []
        self.checkpoints: list[tuple[Path, int]] = []
        self.stop_after = stop_after

    def on_log(self, progress: Progress) -> None:
        self.logs.append(progress)

    def on_checkpoint(self, path: Path, step: int) -> None:
        assert (path / "state.json").is_file()  # complete when announced
        self.checkpoints.append((path, step))

    def on_message(self, line: str) -> None:
        self.messages.append(line)

    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.logs) >= self.stop_after


def make_config(model_dir: Path, **overrides) -> TrainConfig:
    values = {
        "base_model": str(model_dir),
        "max_steps": 2,
        "batch_size": 2,
        "learning_rate": 1e-2,
        "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
        "lora_dropout": 0.0,
        "max_seq_length": 128,
        "num_virtual_tokens": 4,
        "seed": 0,
    }
    values.update(overrides)
    return TrainConfig(**values)


def examples(count: int, start: int = 0, **extra) -> list[TrainExample]:
    return [TrainExample(messages=chat(i), **extra) for i in range(start, start + count)]


def initial_trainable(config: TrainConfig) -> dict[str, torch.Tensor]:
    """The trainable weights as the trainer initialises them (same seed, same order of calls)."""
    _, model, _ = load_base(config.base_model, method=config.method)
    trainer_module._seed(config.seed)
    return checkpoints.trainable_tensors(apply_method(model, config))


def saved_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    name = "adapter_model.safetensors" if (output_dir / "adapter_config.json").is_file() else "model.safetensors"
    return load_file(str(output_dir / name))


@pytest.mark.parametrize("method", ["lora", "prefix", "prompt", "ptuning", "full"])
def test_each_method_trains_saves_and_generates(tiny_model_dir, tmp_path, method):
    config = make_config(tiny_model_dir, method=method)
    recorder = Recorder()
    result = train(config, examples(6), examples(2, start=10), tmp_path, callbacks=recorder)

    assert result.status == "done"
    assert (result.steps, result.total_steps) == (2, 2)
    assert [p.step for p in recorder.logs] == [1, 2]
    assert all(math.isfinite(p.train_loss) for p in recorder.logs)
    assert all(p.tokens_per_second > 0 and p.learning_rate == pytest.approx(1e-2) for p in recorder.logs)
    assert recorder.logs[0].tokens_seen < recorder.logs[1].tokens_seen == result.tokens
    assert recorder.logs[-1].eta_seconds == 0
    # The end of the run evaluates once (and checkpoints, as save_every is 0).
    assert recorder.logs[0].val_loss is None and math.isfinite(recorder.logs[1].val_loss)
    assert result.final_val_loss == result.best_val_loss == recorder.logs[1].val_loss
    assert result.device == "cpu float32"
    assert result.checkpoint == tmp_path / "checkpoints" / "step-2"

    before = initial_trainable(config)
    after = load_file(str(result.checkpoint / "trainable.safetensors"))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[name], after[name]) for name in before)

    run = read_run(tmp_path)
    assert run["method"] == method and run["base_model"] == str(tiny_model_dir)
    assert run["config"]["num_virtual_tokens"] == 4
    assert (tmp_path / "tokenizer.json").is_file()
    assert (tmp_path / ("model.safetensors" if method == "full" else "adapter_model.safetensors")).is_file()

    tokenizer, model = load_trained(tmp_path)
    inputs = tokenizer.apply_chat_template(
        [chat(1)[0]], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert output.shape[1] == inputs["input_ids"].shape[1] + 3


def test_linear_module_names(tiny_model_dir):
    _, model, _ = load_base(str(tiny_model_dir), method="lora")
    assert linear_module_names(model) == LINEAR


def test_unknown_target_module_is_named_with_the_available_ones(tiny_model_dir, tmp_path):
    config = make_config(tiny_model_dir, target_modules=["q_proj", "qkv_proj"])
    with pytest.raises(ValueError, match="qkv_proj") as raised:
        train(config, examples(2), [], tmp_path)
    assert ", ".join(LINEAR) in str(raised.value)
    assert "q_proj," not in str(raised.value).split(";")[0]  # only the missing one is named as missing


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_qlora_without_cuda_says_so(tiny_model_dir, tmp_path):
    with pytest.raises(RuntimeError, match="QLoRA needs a CUDA GPU"):
        train(make_config(tiny_model_dir, method="qlora"), examples(2), [], tmp_path)


def test_refuses_dpo_and_runs_without_anything_to_learn(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="preference pairs"):
        train(make_config(tiny_model_dir, method="dpo"), examples(2), [], tmp_path)
    no_answers = [TrainExample(messages=chat(1)[:1])]
    with pytest.raises(ValueError, match="No training example"):
        train(make_config(tiny_model_dir), no_answers, [], tmp_path)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_cancel_then_resume_gives_the_weights_of_an_uninterrupted_run(tiny_model_dir, tmp_path, method):
    # 6 examples in batches of 2, 2 micro-batches per step: 2 steps per epoch, so 4 steps
    # cross an epoch, and the resumed run must rebuild the second epoch's order.
    config = make_config(tiny_model_dir, method=method, max_steps=4, gradient_accumulation=2, learning_rate=1e-3)
    train_set, validation = examples(6), examples(2, start=20)

    whole = train(config, train_set, validation, tmp_path / "whole")
    assert whole.status == "done"

    recorder = Recorder(stop_after=1)
    cancelled = train(config, train_set, validation, tmp_path / "parts", callbacks=recorder)
    assert cancelled.status == "cancelled"
    assert cancelled.steps == 1 and len(recorder.logs) == 1
    assert cancelled.checkpoint == tmp_path / "parts" / "checkpoints" / "step-1"
    assert recorder.checkpoints == [(cancelled.checkpoint, 1)]
    assert not (tmp_path / "parts" / "shikomi_run.json").exists()  # a cancelled run saves no model

    resumed_log = Recorder()
    resumed = train(
        config, train_set, validation, tmp_path / "parts", callbacks=resumed_log, resume_from=cancelled.checkpoint
    )
    assert resumed.status == "done" and resumed.steps == 4
    assert [p.step for p in resumed_log.logs] == [2, 3, 4]
    assert resumed.final_train_loss == pytest.approx(whole.final_train_loss, rel=1e-5)
    assert resumed.final_val_loss == pytest.approx(whole.final_val_loss, rel=1e-5)
    assert resumed.tokens == whole.tokens
    expected, actual = saved_weights(tmp_path / "whole"), saved_weights(tmp_path / "parts")
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-5, atol=1e-6)


def test_checkpoints_every_n_steps_keep_the_last_two(tiny_model_dir, tmp_path):
    recorder = Recorder()
    result = train(
        make_config(tiny_model_dir, max_steps=4, save_every=1), examples(4), [], tmp_path, callbacks=recorder
    )
    assert [step for _, step in recorder.checkpoints] == [1, 2, 3, 4]
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["step-3", "step-4"]
    assert result.checkpoint == tmp_path / "checkpoints" / "step-4"
    assert result.best_val_loss is None and all(p.val_loss is None for p in recorder.logs)


def test_early_stopping(tiny_model_dir, tmp_path):
    # No evaluation can improve on the best by 10: the second one runs out the patience of 1.
    config = make_config(
        tiny_model_dir, max_steps=6, eval_every=1, early_stopping_patience=1, early_stopping_threshold=10
    )
    recorder = Recorder()
    result = train(config, examples(6), examples(2, start=30), tmp_path, callbacks=recorder)
    assert result.status == "early_stopped"
    assert result.steps == 2 and result.total_steps == 6
    assert all(p.val_loss is not None for p in recorder.logs)
    assert result.best_val_loss == min(p.val_loss for p in recorder.logs)
    assert result.checkpoint == tmp_path / "checkpoints" / "step-2"
    assert (tmp_path / "shikomi_run.json").is_file()  # the model is saved as it stands
    assert any("Early stopping" in line for line in recorder.messages)


def test_evaluation_interval(tiny_model_dir, tmp_path):
    recorder = Recorder()
    train(
        make_config(tiny_model_dir, max_steps=5, eval_every=2),
        examples(6),
        examples(2, 40),
        tmp_path / "a",
        callbacks=recorder,
    )
    assert [p.step for p in recorder.logs if p.val_loss is not None] == [2, 4, 5]  # and at the end

    # eval_every 0: once per epoch. 8 examples in batches of 2 are 4 steps an epoch.
    recorder = Recorder()
    result = train(
        make_config(tiny_model_dir, max_steps=0, epochs=2, eval_every=0),
        examples(8),
        examples(2, 40),
        tmp_path / "b",
        callbacks=recorder,
    )
    assert result.total_steps == 8
    assert [p.step for p in recorder.logs if p.val_loss is not None] == [4, 8]
    assert [p.epoch for p in recorder.logs] == pytest.approx([0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2])
    assert result.extra["evaluations"] == 2


def test_class_weights_multiply_the_loss(tiny_model_dir, tmp_path):
    def first_loss(balance: str, weight: float, folder: str) -> float:
        recorder = Recorder()
        config = make_config(tiny_model_dir, max_steps=1, balance=balance)
        train(config, examples(4, weight=weight, label="a"), [], tmp_path / folder, callbacks=recorder)
        return recorder.logs[0].train_loss

    plain = first_loss("class_weights", 1.0, "one")
    assert first_loss("class_weights", 3.0, "three") == pytest.approx(3 * plain, rel=1e-5)
    assert first_loss("none", 3.0, "ignored") == pytest.approx(plain, rel=1e-6)  # weights only with class_weights


def test_gradient_accumulation_matches_a_larger_batch(tiny_model_dir, tmp_path):
    # One step over the same two examples: one batch of 2, or two micro-batches of 1.
    train_set = examples(2, start=3)
    train(make_config(tiny_model_dir, max_steps=1, batch_size=2), train_set, [], tmp_path / "batch")
    train(
        make_config(tiny_model_dir, max_steps=1, batch_size=1, gradient_accumulation=2),
        train_set,
        [],
        tmp_path / "accumulated",
    )
    expected, actual = saved_weights(tmp_path / "batch"), saved_weights(tmp_path / "accumulated")
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-4, atol=1e-6)


def test_embedded_smollm2_lora_two_steps(tmp_path):
    """The real base model (about 16 s to load): LoRA for two steps."""
    config = TrainConfig(
        method="lora",
        base_model="",
        max_steps=2,
        batch_size=2,
        learning_rate=1e-3,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        max_seq_length=256,
    )
    recorder = Recorder()
    result = train(config, examples(4), [], tmp_path, callbacks=recorder)
    assert result.status == "done"
    assert all(math.isfinite(p.train_loss) for p in recorder.logs)
    assert recorder.logs[0].train_loss < 8  # a trained model, not a random one (ln 49152 is 10.8)
    lora_b = {name: tensor for name, tensor in saved_weights(tmp_path).items() if "lora_B" in name}
    assert lora_b and any(tensor.abs().sum() > 0 for tensor in lora_b.values())  # B starts at zero
    print(f"\nSmolLM2-135M LoRA on {result.device}: {recorder.logs[-1].tokens_per_second:.0f} tokens/s")
