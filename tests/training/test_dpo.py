"""DPO training on preference pairs (training/engine/dpo.py) with the tiny random Llama of conftest: two steps each."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from training.engine.config import TrainConfig
from training.engine.dpo import CHECKPOINTS_DIR, train_dpo
from training.engine.interface import NoCallbacks, PreferenceExample, Progress
from training.engine.modeling import RUN_FILE, ModelLoadError, load_trained

# Said by transformers when peft or TRL reads the old name of a model property.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


class Recorder(NoCallbacks):
    def __init__(self, stop_after_checks: int | None = None) -> None:
        self.progress: list[Progress] = []
        self.checkpoints: list[tuple[Path, int]] = []
        self.messages: list[str] = []
        self.stop_after_checks = stop_after_checks
        self.checks = 0

    def on_log(self, progress: Progress) -> None:
        self.progress.append(progress)

    def on_checkpoint(self, path: Path, step: int) -> None:
        self.checkpoints.append((path, step))

    def on_message(self, line: str) -> None:
        self.messages.append(line)

    def should_stop(self) -> bool:
        self.checks += 1
        return self.stop_after_checks is not None and self.checks >= self.stop_after_checks


def pairs(count: int = 6) -> list[PreferenceExample]:
    return [
        PreferenceExample(
            prompt=[{"role": "user", "content": f"What is {i} plus {i}?"}],
            chosen=f"{i} plus {i} is {2 * i}.",
            rejected="I would rather not say.",
        )
        for i in range(count)
    ]


def config(base: Path, **changes) -> TrainConfig:
    values = {
        "method": "dpo",
        "base_model": str(base),
        "max_steps": 2,
        "batch_size": 2,
        "max_seq_length": 128,
        "learning_rate": 1e-3,
        "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
    }
    values.update(changes)
    return TrainConfig(**values)


def train_losses(recorder: Recorder) -> list[Progress]:
    return [p for p in recorder.progress if p.val_loss is None]


def test_trains_two_steps_and_saves_a_loadable_adapter(tiny_model_dir, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    recorder = Recorder()
    out = tmp_path / "run"
    result = train_dpo(config(tiny_model_dir), pairs(), [], out, callbacks=recorder)

    assert result.status == "done"
    assert (result.steps, result.total_steps) == (2, 2)
    steps = train_losses(recorder)
    assert [p.step for p in steps] == [1, 2]
    assert all(p.total_steps == 2 and math.isfinite(p.train_loss) for p in steps)
    assert all(p.tokens_per_second > 0 and p.val_loss is None for p in steps)
    assert steps[1].tokens_seen > steps[0].tokens_seen > 0
    assert steps[1].eta_seconds == 0
    assert result.final_train_loss == steps[-1].train_loss
    assert result.final_val_loss is None and result.best_val_loss is None
    assert result.device == "cpu float32"
    assert result.tokens == steps[-1].tokens_seen
    assert result.output_dir == out

    # LoRA starts with B = 0: non-zero B matrices mean the adapter was trained.
    weights = load_file(out / "adapter_model.safetensors")
    lora_b = [tensor for name, tensor in weights.items() if "lora_B" in name]
    assert lora_b and any(tensor.abs().sum() > 0 for tensor in lora_b)
    run = json.loads((out / RUN_FILE).read_text())
    assert run["method"] == "dpo" and run["kind"] == "adapter"
    assert run["base_model"] == str(tiny_model_dir)
    assert run["config"]["dpo_beta"] == 0.1

    tokenizer = AutoTokenizer.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(base, out)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 plus 2?"}], add_generation_prompt=True, return_tensors="pt"
    )
    input_ids = prompt["input_ids"] if "input_ids" in prompt else prompt
    with torch.no_grad():
        generated = model.generate(input_ids=input_ids, min_new_tokens=3, max_new_tokens=3, do_sample=False)
    assert generated.shape[1] == input_ids.shape[1] + 3
    # The app's own loader reads the folder too (base from shikomi_run.json, then the adapter).
    _, loaded = load_trained(out)
    assert isinstance(loaded, PeftModel)


def test_cancel_writes_a_checkpoint_and_resume_finishes(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    cancelling = Recorder(stop_after_checks=1)
    first = train_dpo(config(tiny_model_dir), pairs(), [], out, callbacks=cancelling)

    assert first.status == "cancelled"
    assert first.steps == 1 and first.total_steps == 2
    assert first.checkpoint == out / CHECKPOINTS_DIR / "checkpoint-1"
    assert first.checkpoint.is_dir()
    assert cancelling.checkpoints == [(first.checkpoint, 1)]
    assert [p.step for p in train_losses(cancelling)] == [1]

    resuming = Recorder()
    second = train_dpo(config(tiny_model_dir), pairs(), [], out, callbacks=resuming, resume_from=first.checkpoint)
    assert second.status == "done"
    assert second.steps == 2
    assert [p.step for p in train_losses(resuming)] == [2]
    assert second.tokens > first.tokens  # the token count carries on from the checkpoint
    assert (out / "adapter_model.safetensors").is_file()


def test_validation_pairs_give_a_validation_loss(tiny_model_dir, tmp_path):
    recorder = Recorder()
    result = train_dpo(
        config(tiny_model_dir, eval_every=1, early_stopping_patience=5),
        pairs(),
        pairs(2),
        tmp_path / "run",
        callbacks=recorder,
    )

    evaluations = [p for p in recorder.progress if p.val_loss is not None]
    assert [p.step for p in evaluations] == [1, 2]
    # An evaluation's point carries its step's training loss too.
    assert all(math.isfinite(p.val_loss) and math.isfinite(p.train_loss) for p in evaluations)
    assert result.status == "done"
    assert result.best_val_loss == min(p.val_loss for p in evaluations)
    assert result.final_val_loss is not None and math.isfinite(result.final_val_loss)
    # Early stopping checkpoints at each evaluation.
    assert [step for _, step in recorder.checkpoints] == [1, 2]


def test_early_stopping_stops_and_keeps_the_best_adapter(tiny_model_dir, tmp_path):
    recorder = Recorder()
    # A threshold no loss can beat: the second evaluation counts as no improvement.
    result = train_dpo(
        config(tiny_model_dir, max_steps=4, eval_every=1, early_stopping_patience=1, early_stopping_threshold=10),
        pairs(),
        pairs(2),
        tmp_path / "run",
        callbacks=recorder,
    )

    assert result.status == "early_stopped"
    assert (result.steps, result.total_steps) == (2, 4)
    assert result.final_val_loss == result.best_val_loss


def test_no_pairs_is_refused():
    with pytest.raises(ValueError, match="DPO needs preference pairs"):
        train_dpo(TrainConfig(method="dpo"), [], [], Path("/nonexistent"))


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (PreferenceExample(prompt=[{"role": "user", "content": "Hi"}], chosen="  ", rejected="No."), "empty chosen"),
        (PreferenceExample(prompt=[{"role": "user", "content": "Hi"}], chosen="Hello!", rejected=""), "empty rejected"),
        (PreferenceExample(prompt=[{"role": "user", "content": "Hi"}], chosen="Same", rejected="Same"), "same text"),
        (PreferenceExample(prompt=[], chosen="Hello!", rejected="No."), "no prompt"),
        (
            PreferenceExample(prompt=[{"role": "assistant", "content": "Hi"}], chosen="Hello!", rejected="No."),
            "ends with an assistant message",
        ),
    ],
)
def test_a_pair_that_teaches_nothing_is_refused(pair, message):
    with pytest.raises(ValueError, match=message):
        train_dpo(TrainConfig(method="dpo"), [*pairs(2), pair], [], Path("/nonexistent"))
    with pytest.raises(ValueError, match=f"validation pair 1 .*{message}"):
        train_dpo(TrainConfig(method="dpo"), pairs(2), [pair], Path("/nonexistent"))


def test_resume_from_a_folder_that_is_no_checkpoint_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a checkpoint folder"):
        train_dpo(TrainConfig(method="dpo"), pairs(), [], tmp_path / "run", resume_from=tmp_path)


def test_unknown_target_modules_are_refused(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="target modules c_attn are not in this model; its linear layers are q_proj"):
        train_dpo(config(tiny_model_dir, target_modules=["q_proj", "c_attn"]), pairs(), [], tmp_path / "run")


def test_a_missing_base_model_folder_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        train_dpo(config(tmp_path / "nowhere"), pairs(), [], tmp_path / "run")


# --- answers with tool calls: rendered as SFT renders them, loss on the answers only -----------

TOOL_PROMPT = [
    {"role": "system", "content": "You help with the weather."},
    {"role": "user", "content": "Weather in Kyoto?"},
    {
        "role": "assistant",
        "content": "",
        "reasoning": "Earlier thinking.",
        "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Kyoto"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_0", "content": '{"temp_c": 21}'},
    {"role": "assistant", "content": "It is 21 degrees in Kyoto."},
    {"role": "user", "content": "And Osaka?"},
]
TOOL_CHOSEN = {
    "role": "assistant",
    "content": "",
    "reasoning": "Same tool.",
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Osaka"}'}}
    ],
}
TOOL_REJECTED = {"role": "assistant", "content": "Osaka is probably sunny."}


def tool_pair() -> PreferenceExample:
    from tests.training.test_toolcall_masking import TOOLS

    return PreferenceExample(prompt=TOOL_PROMPT, chosen=TOOL_CHOSEN, rejected=TOOL_REJECTED, tools=TOOLS)


@pytest.fixture(scope="module")
def smollm(tiny_model_dir):
    from training.engine.modeling import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


@pytest.mark.parametrize("template", ["fallback", "qwen_like"])
def test_a_tool_call_answer_renders_with_the_tools_and_only_the_answers_carry_loss(smollm, template):
    import copy

    from tests.training.test_toolcall_masking import QWEN_LIKE
    from training.engine.chat import FALLBACK_TOOLS_HEADER
    from training.engine.dpo import encode_pair

    tokenizer = copy.deepcopy(smollm)
    if template == "qwen_like":
        tokenizer.chat_template = QWEN_LIKE
    encoded = encode_pair(tokenizer, tool_pair(), "drop_earlier")
    prompt = tokenizer.decode(encoded["prompt_ids"])
    chosen, rejected = tokenizer.decode(encoded["chosen_ids"]), tokenizer.decode(encoded["rejected_ids"])
    print(f"\n--- {template} ---\n{prompt}«{chosen}»\n{prompt}«{rejected}»")
    # The tools reach the template (or its documented fallback), in the prompt, which has no loss.
    listing = "# Tools\n<tools>\n" if template == "qwen_like" else FALLBACK_TOOLS_HEADER
    assert prompt.startswith("<|im_start|>system\nYou help with the weather.\n\n" + listing)
    assert '"name": "get_weather"' in prompt.split("<|im_end|>", 1)[0]
    assert prompt.endswith("<|im_start|>user\nAnd Osaka?<|im_end|>\n<|im_start|>assistant\n")
    assert "It is 21 degrees in Kyoto." in prompt and "Earlier thinking." not in prompt  # drop_earlier
    # Each answer is its whole turn: reasoning, call, and the marker that closes it; nothing of the prompt.
    separator = "\n" if template == "qwen_like" else ""
    call = f'<tool_call>{separator}{{"name": "get_weather", "arguments": {{"city": "Osaka"}}}}{separator}</tool_call>'
    assert chosen == f"<think>\nSame tool.\n</think>\n\n{call}<|im_end|>"
    assert rejected == "Osaka is probably sunny.<|im_end|>"


def test_dpo_trains_on_tool_call_pairs(tiny_model_dir, tmp_path):
    recorder = Recorder()
    result = train_dpo(
        config(tiny_model_dir, max_seq_length=512), [tool_pair()] * 4, [], tmp_path / "run", callbacks=recorder
    )
    assert result.status == "done" and all(math.isfinite(p.train_loss) for p in train_losses(recorder))
    assert any("DPO on 4 pairs" in line for line in recorder.messages)


def test_an_answer_without_text_or_calls_is_refused():
    empty = PreferenceExample(
        prompt=[{"role": "user", "content": "Hi"}],
        chosen={"role": "assistant", "content": ""},
        rejected={"role": "assistant", "content": "No."},
    )
    with pytest.raises(ValueError, match="empty chosen answer"):
        train_dpo(TrainConfig(method="dpo"), [empty], [], Path("/nonexistent"))
    calls_only = dataclasses.replace(tool_pair(), rejected={"role": "assistant", "content": "", "tool_calls": []})
    with pytest.raises(ValueError, match="empty rejected answer"):
        train_dpo(TrainConfig(method="dpo"), [calls_only], [], Path("/nonexistent"))
