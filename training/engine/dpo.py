"""DPO (direct preference optimisation) on preference pairs with TRL, as a LoRA adapter.

The same shape as the SFT trainer (`training/engine/trainer.py`): plain Python, no Django; the Huey task
turns the snapshot's ranked or edited drafts into `PreferenceExample`s and calls `train_dpo()`
with a `Callbacks` object.

With a PEFT model, TRL's `DPOTrainer` computes the reference log-probabilities with the adapter
switched off, so the reference model is the base model itself and no second copy is loaded.

Heavy libraries (torch, transformers, peft, trl, datasets) are imported inside the functions, so
importing this module is cheap and checking the pairs needs none of them.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from llm.loading import EMBEDDED_NAME, model_source
from training.engine.chat import prepare, render, rendering
from training.engine.config import TrainConfig
from training.engine.data import IGNORE, encode
from training.engine.interface import Callbacks, PreferenceExample, Progress, TrainExample, TrainResult
from training.engine.modeling import choose_device, linear_module_names, load_base, save_trained
from training.engine.tracking import Tracker

CHECKPOINTS_DIR = "checkpoints"
# Throughput and the time left are averaged over this many recent optimiser steps.
RATE_WINDOW = 10


# ---- Checking the input --------------------------------------------------------------------


def _answer_problem(answer: object, which: str) -> str | None:
    """What keeps a chosen or rejected answer from being learned from, or None."""
    if not isinstance(answer, dict) or answer.get("role", "assistant") != "assistant":
        return f"has a {which} answer that is not an assistant message"
    if not str(answer.get("content") or "").strip() and not answer.get("tool_calls"):
        return f"has an empty {which} answer; edit it or leave the pair out"
    return None


def _same(chosen: dict[str, Any], rejected: dict[str, Any]) -> bool:
    def bare(answer: dict[str, Any]) -> dict[str, Any]:
        return {
            k: (v.strip() if k == "content" and isinstance(v, str) else v) for k, v in answer.items() if k != "weight"
        }

    return bare(chosen) == bare(rejected)


def check_pairs(pairs: list[PreferenceExample], *, split: str = "training") -> None:
    """ValueError, naming the pair (1-based) and what to do, for a pair DPO cannot learn from."""
    for number, pair in enumerate(pairs, 1):
        where = f"The {split} pair {number}"
        if not isinstance(pair.prompt, list) or not pair.prompt:
            raise ValueError(f"{where} has no prompt: it needs at least one user message before the answers.")
        for message in pair.prompt:
            if (
                not isinstance(message, dict)
                or not isinstance(message.get("role"), str)
                or not isinstance(message.get("content"), str)
            ):
                raise ValueError(f"{where} has a prompt message without a role and a text content.")
        if pair.prompt[-1]["role"] == "assistant":
            raise ValueError(
                f"{where} has a prompt that ends with an assistant message; the prompt must stop before the answer "
                "that the chosen and rejected messages give."
            )
        for answer, which in ((pair.chosen, "chosen"), (pair.rejected, "rejected")):
            if problem := _answer_problem(answer, which):
                raise ValueError(f"{where} {problem}.")
        if _same(pair.chosen, pair.rejected):
            raise ValueError(
                f"{where} has the same text as chosen and as rejected answer, so it teaches nothing; edit one of "
                "them or leave the pair out."
            )


def _check_resume(resume_from: Path | None) -> None:
    if resume_from is None:
        return
    if not (Path(resume_from) / "trainer_state.json").is_file():
        raise ValueError(
            f"Cannot resume from {resume_from}: it is not a checkpoint folder written by a DPO run "
            "(it has no trainer_state.json). Start the run again without resuming."
        )


# ---- Bridging transformers' callbacks to ours ----------------------------------------------


def _bridge(callbacks: Callbacks) -> Any:
    """A transformers TrainerCallback that reports progress, checkpoints and cancellation to `callbacks`.

    Tokens: `state.num_input_tokens_seen` with `include_num_input_tokens_seen="non_padding"`, i.e. the
    attention-mask sum of every micro-batch: prompt + chosen and prompt + rejected, without padding.
    It is saved in the checkpoints, so it carries on across a resume. Tokens per second and the
    time left come from the last RATE_WINDOW optimiser steps, timed from `on_step_begin` to
    `on_step_end`, so evaluations and checkpoint writes do not count.
    """
    from transformers import TrainerCallback

    class Bridge(TrainerCallback):
        def __init__(self) -> None:
            self.cancelled = False
            self.last_checkpoint: Path | None = None
            self.last_saved_step: int | None = None
            self.train_loss: float | None = None
            self.train_loss_step: int | None = None
            self.last_eval_step: int | None = None
            self.learning_rate = 0.0
            self._step_started: float | None = None
            self._tokens_at_step_start = 0
            self._recent: deque[tuple[float, int]] = deque(maxlen=RATE_WINDOW)

        def on_step_begin(self, args, state, control, **kwargs):
            self._step_started = time.monotonic()
            self._tokens_at_step_start = state.num_input_tokens_seen

        def on_step_end(self, args, state, control, **kwargs):
            if self._step_started is not None:
                seconds = time.monotonic() - self._step_started
                self._recent.append((seconds, state.num_input_tokens_seen - self._tokens_at_step_start))
                self._step_started = None
            if callbacks.should_stop():
                # Save where we are, skip a scheduled evaluation, stop.
                self.cancelled = True
                control.should_save = True
                control.should_evaluate = False
                control.should_training_stop = True
            return control

        def on_epoch_end(self, args, state, control, **kwargs):
            # Training that stops mid-epoch still ends the epoch, where the flow callback may ask for
            # another evaluation or a second save of the step just saved.
            if self.cancelled:
                control.should_evaluate = False
            if self.last_checkpoint is not None and self.last_saved_step == state.global_step:
                control.should_save = False
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            train_loss = logs.get("loss")
            val_loss = logs.get("eval_loss")
            if train_loss is None and val_loss is None:
                return  # the end-of-training summary (runtime, mean loss)
            if train_loss is not None:
                self.train_loss = float(train_loss)
                self.train_loss_step = state.global_step
            elif self.train_loss_step == state.global_step:
                train_loss = self.train_loss  # an evaluation after this step: one point with both losses
            if "learning_rate" in logs:
                self.learning_rate = float(logs["learning_rate"])
            if val_loss is not None:
                self.last_eval_step = state.global_step
            callbacks.on_log(_progress(state, self._recent, train_loss, self.learning_rate, val_loss))

        def on_save(self, args, state, control, **kwargs):
            # Trainer calls this once the checkpoint folder is completely written.
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self.last_checkpoint = path
            self.last_saved_step = state.global_step
            callbacks.on_checkpoint(path, state.global_step)

    return Bridge()


def _progress(
    state: Any, recent: deque[tuple[float, int]], train_loss: float | None, learning_rate: float, val_loss: float | None
) -> Progress:
    """A log line of transformers' `TrainerState` as a `Progress`, with the throughput and time left
    of the `recent` (seconds, tokens) steps."""
    seconds = sum(s for s, _ in recent)
    tokens = sum(t for _, t in recent)
    rate = tokens / seconds if seconds > 0 else 0.0
    remaining = max(state.max_steps - state.global_step, 0)
    eta = seconds / len(recent) * remaining if recent else None
    return Progress(
        step=state.global_step,
        total_steps=state.max_steps,
        epoch=float(state.epoch or 0.0),
        train_loss=float(train_loss) if train_loss is not None else None,
        learning_rate=learning_rate,
        tokens_per_second=rate,
        eta_seconds=eta,
        tokens_seen=int(state.num_input_tokens_seen),
        val_loss=float(val_loss) if val_loss is not None else None,
    )


# ---- Training ------------------------------------------------------------------------------


def _drop_gguf_marker(model: Any) -> None:
    """A model read from a GGUF file keeps its GGUF quantizer even when every weight was unpacked into
    a plain float layer (as on this CPU path), and transformers' Trainer refuses to train any model
    marked quantized with GGUF. Dense weights lose the marker; GGUF blocks left in place are refused."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None or type(quantizer).__name__ != "GgufHfQuantizer":
        return
    if getattr(quantizer, "packed_modules", None):
        raise ValueError(
            "The base model was loaded with its weights left in GGUF blocks (the `kernels` package is installed), "
            "and DPO cannot train on those; uninstall `kernels` or choose a base model saved with transformers."
        )
    quantizer.remove_quantization_config(model)


def _strategies(config: TrainConfig, has_validation: bool) -> dict[str, Any]:
    """Evaluation, checkpoint and early-stopping settings for DPOConfig.

    eval_every N: evaluate every N steps, 0: once per epoch (and at the end, see train_dpo).
    save_every N: checkpoint every N steps, 0: at each evaluation (each epoch without validation).
    Early stopping needs the best checkpoint at each evaluation, so it saves exactly when it evaluates.
    """
    options: dict[str, Any] = {}
    if has_validation:
        if config.eval_every > 0:
            options.update(eval_strategy="steps", eval_steps=config.eval_every)
        else:
            options.update(eval_strategy="epoch")
    else:
        options.update(eval_strategy="no")
    early = has_validation and config.early_stopping_patience > 0
    if early:
        options.update(
            save_strategy=options["eval_strategy"],
            load_best_model_at_end=True,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
        )
        if "eval_steps" in options:
            options["save_steps"] = options["eval_steps"]
    elif config.save_every > 0:
        options.update(save_strategy="steps", save_steps=config.save_every)
    elif has_validation and config.eval_every > 0:
        options.update(save_strategy="steps", save_steps=config.eval_every)
    else:
        options.update(save_strategy="epoch")
    return options


def _context(message: dict[str, Any], reasoning: str) -> dict[str, Any]:
    """A prompt message as context: an assistant turn of the prompt carries no loss (weight 0),
    and with "drop_earlier" loses its reasoning, as every turn before the last does in SFT."""
    if message.get("role") != "assistant":
        return message
    turn = {**message, "weight": 0}
    if reasoning == "drop_earlier":
        turn.pop("reasoning", None)
    return turn


def _common_prefix(a: list[int], b: list[int]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def encode_pair(tokenizer: Any, pair: PreferenceExample, reasoning: str = "train") -> dict[str, list[int]] | None:
    """The pair as token ids, rendered as SFT renders a conversation (training/engine/chat.py:
    the tools to the chat template, calls and reasoning as the template writes them, or the
    documented fallback): the prompt up to the template's generation prompt, and each answer's
    turn after it, closing marker included. DPO's loss sees the answers' tokens only, whole
    (their reasoning too, whatever the run's reasoning setting). None when an answer renders
    to nothing."""
    prompt = [_context(dict(m), reasoning) for m in pair.prompt]
    conversation = prepare([dict(m) for m in prompt], pair.tools, rendering(tokenizer))
    text = render(tokenizer, conversation.messages, conversation.tools, generation_prompt=True)
    prompt_ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    answers = []
    for answer in (pair.chosen, pair.rejected):
        turn = {key: value for key, value in answer.items() if key != "weight"}
        example = TrainExample(messages=[*prompt, {**turn, "role": "assistant"}], tools=pair.tools)
        encoded = encode(tokenizer, example, sys.maxsize)
        if encoded is None:
            return None
        last = max(i for i, label in enumerate(encoded.labels) if label != IGNORE)
        answers.append(encoded.input_ids[: last + 1])
    # The answers start where the prompt stops being a prefix of both (TRL's rule, for
    # templates that render a prompt alone a little differently).
    shared = min(_common_prefix(prompt_ids, answers[0]), _common_prefix(prompt_ids, answers[1]))
    return {"prompt_ids": prompt_ids[:shared], "chosen_ids": answers[0][shared:], "rejected_ids": answers[1][shared:]}


def _dataset(tokenizer: Any, pairs: list[PreferenceExample], reasoning: str) -> Any:
    from datasets import Dataset

    rows = [row for pair in pairs if (row := encode_pair(tokenizer, pair, reasoning)) is not None]
    if not rows:
        raise ValueError("No preference pair has an answer left to learn from once rendered with the chat template.")
    return Dataset.from_list(rows)


def _check_inputs(
    pairs: list[PreferenceExample], validation: list[PreferenceExample], resume_from: Path | None
) -> None:
    """ValueError for pairs or a checkpoint that DPO cannot use, before anything heavy is loaded."""
    if not pairs:
        raise ValueError("DPO needs preference pairs: review synthetic drafts (edit or rank them) to make some.")
    check_pairs(pairs, split="training")
    check_pairs(validation, split="validation")
    _check_resume(resume_from)


def _prepare_model(config: TrainConfig, where: str, callbacks: Callbacks) -> tuple[Any, Any, str]:
    """The tokenizer, the base model ready for a LoRA adapter, and the device's description."""
    from trl.trainer.utils import disable_dropout_in_model

    callbacks.on_message(f"Loading the base model {where if config.base_model else EMBEDDED_NAME}.")
    tokenizer, model, device = load_base(config.base_model, method="dpo", config=config)
    callbacks.on_message(f"Training on {device}.")
    if tokenizer.chat_template is None:
        raise ValueError(
            f"The base model {where} has no chat template, so the conversations of the preference pairs cannot be "
            "formatted; choose an instruction-tuned (chat) model."
        )
    _drop_gguf_marker(model)
    available = linear_module_names(model)
    missing = [name for name in config.target_modules if name not in available]
    if missing:
        raise ValueError(
            f"The target modules {', '.join(missing)} are not in this model; its linear layers are "
            f"{', '.join(available) or 'none'}."
        )
    # DPO compares the policy with the reference (the same model, adapter off): dropout in the base
    # would make the two disagree at random. TRL's disable_dropout would also zero the LoRA dropout,
    # so the base's dropout is switched off here, before the adapter is added, and TRL's is not used.
    disable_dropout_in_model(model)
    return tokenizer, model, device


def _lora(config: TrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def _dpo_args(config: TrainConfig, output_dir: Path, choice: Any, has_validation: bool) -> Any:
    """TRL's `DPOConfig` for the run's settings."""
    import torch
    from trl import DPOConfig

    return DPOConfig(
        output_dir=str(output_dir / CHECKPOINTS_DIR),
        beta=config.dpo_beta,
        max_length=config.max_seq_length,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # transformers 5: a value below 1 is a share of the steps
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps > 0 else -1,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        logging_strategy="steps",
        logging_steps=1,
        report_to="none",
        push_to_hub=False,
        disable_tqdm=True,
        # TRL defaults that do not suit this app: bf16 on (CPUs: float32), gradient checkpointing on
        # (slower; LoRA on small models does not need the memory), dropout off everywhere (above).
        bf16=choice.autocast == torch.bfloat16,
        fp16=choice.autocast == torch.float16,
        activation_checkpointing=False,  # transformers 5's name for gradient_checkpointing
        dataloader_pin_memory=choice.device.type == "cuda",
        disable_dropout=False,
        include_num_input_tokens_seen="non_padding",
        **_strategies(config, has_validation),
    )


def _make_trainer(
    config: TrainConfig,
    args: Any,
    model: Any,
    tokenizer: Any,
    pairs: list[PreferenceExample],
    validation: list[PreferenceExample],
    callbacks: list[Any],
) -> Any:
    """TRL's `DPOTrainer` with the LoRA adapter added; ValueError when no pair is left to train or
    validate on within the sequence length."""
    from transformers import PrinterCallback
    from trl import DPOTrainer

    class LocalDPOTrainer(DPOTrainer):
        def _send_telemetry(self) -> None:
            """Nothing about a local run leaves the machine."""

        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
            """The pairs come tokenised (encode_pair renders them as SFT does, tools included):
            only those whose prompt alone fills the sequence length are left out, as TRL does."""
            if args.max_length is None:
                return dataset
            return dataset.filter(lambda row: len(row["prompt_ids"]) < args.max_length)

    reasoning = config.reasoning
    trainer = LocalDPOTrainer(
        model=model,
        args=args,
        train_dataset=_dataset(tokenizer, pairs, reasoning),
        eval_dataset=_dataset(tokenizer, validation, reasoning) if validation else None,
        processing_class=tokenizer,
        peft_config=_lora(config),
        callbacks=callbacks,
    )
    # disable_tqdm puts a PrinterCallback in place that prints every log line; the bridge reports them.
    trainer.remove_callback(PrinterCallback)
    if len(trainer.train_dataset) == 0:
        raise ValueError(
            f"Every prompt is at least {config.max_seq_length} tokens long, so no answer is left to learn from; "
            "raise the maximum sequence length or shorten the prompts."
        )
    if validation and len(trainer.eval_dataset) == 0:
        raise ValueError(
            f"Every validation prompt is at least {config.max_seq_length} tokens long; raise the maximum sequence "
            "length or shorten the prompts."
        )
    return trainer


def _status(trainer: Any, bridge: Any, early: bool) -> str:
    """The run's status: "cancelled" or "early_stopped" when it ended before its last step, else "done"."""
    state = trainer.state
    finished_all = state.global_step >= state.max_steps
    if bridge.cancelled and not finished_all:
        return "cancelled"
    if early and not finished_all:
        return "early_stopped"
    return "done"


def _validation_losses(
    trainer: Any, bridge: Any, status: str, has_validation: bool, early: bool
) -> tuple[float | None, float | None]:
    """The final and the best validation loss of the run."""
    state = trainer.state
    # The validation loss of the adapter that is saved: evaluate once more unless the last step was
    # just evaluated, or the best checkpoint was loaded back (its loss is the best one).
    if (
        has_validation
        and status != "cancelled"
        and bridge.last_eval_step != state.global_step
        and not (early and state.best_model_checkpoint)
    ):
        trainer.evaluate()
    # The log history comes back with a checkpoint, so the best loss covers the steps before a resume.
    val_losses = [float(entry["eval_loss"]) for entry in state.log_history if "eval_loss" in entry]
    best_val_loss = min(val_losses) if val_losses else None
    final_val_loss = val_losses[-1] if val_losses else None
    if early and state.best_model_checkpoint and best_val_loss is not None:
        final_val_loss = best_val_loss  # the best checkpoint was loaded back
    return final_val_loss, best_val_loss


def train_dpo(
    config: TrainConfig,
    pairs: list[PreferenceExample],
    validation: list[PreferenceExample],
    output_dir: Path,
    *,
    callbacks: Callbacks | None = None,
    resume_from: Path | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> TrainResult:
    """Train a LoRA adapter with DPO on `pairs`; save adapter, tokenizer and `shikomi_run.json` in
    `output_dir` (checkpoints in `output_dir/checkpoints`). ValueError for what a person can fix.
    Tracked in TensorBoard and MLflow as `run_name` with `tags` (training/engine/tracking.py)."""
    _check_inputs(pairs, validation, resume_from)
    config = dataclasses.replace(config, method="dpo")
    resumed = resume_from is not None
    with Tracker(config, output_dir, run_name=run_name, tags=tags, callbacks=callbacks, resumed=resumed) as tracker:
        result = _train_dpo(config, pairs, validation, Path(output_dir), tracker.callbacks, resume_from)
        return tracker.finish(result)


def _train_dpo(
    config: TrainConfig,
    pairs: list[PreferenceExample],
    validation: list[PreferenceExample],
    output_dir: Path,
    callbacks: Callbacks,
    resume_from: Path | None,
) -> TrainResult:
    """The run itself, reporting to `callbacks`."""
    from transformers import EarlyStoppingCallback

    started = time.monotonic()
    choice = choose_device(None, method="dpo")
    where = model_source(config.base_model)[2]
    tokenizer, model, device = _prepare_model(config, where, callbacks)
    has_validation = bool(validation)
    early = has_validation and config.early_stopping_patience > 0
    if config.early_stopping_patience > 0 and not has_validation:
        callbacks.on_message("Early stopping is off: it needs validation pairs.")

    args = _dpo_args(config, output_dir, choice, has_validation)
    bridge = _bridge(callbacks)
    trainer_callbacks: list[Any] = [bridge]
    if early:
        trainer_callbacks.append(
            EarlyStoppingCallback(
                early_stopping_patience=config.early_stopping_patience,
                early_stopping_threshold=config.early_stopping_threshold,
            )
        )
    trainer = _make_trainer(config, args, model, tokenizer, pairs, validation, trainer_callbacks)
    callbacks.on_message(
        f"DPO on {len(trainer.train_dataset)} pairs ({len(validation)} for validation), beta {config.dpo_beta}, "
        f"LoRA rank {config.lora_rank} on {', '.join(config.target_modules)}."
    )
    if resume_from is not None:
        callbacks.on_message(f"Resuming from {resume_from}.")

    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    state = trainer.state
    status = _status(trainer, bridge, early)
    final_val_loss, best_val_loss = _validation_losses(trainer, bridge, status, has_validation, early)

    save_trained(trainer.model, tokenizer, output_dir, config)
    callbacks.on_message(f"Saved the DPO adapter to {output_dir} ({status}, step {state.global_step}).")

    train_loss = bridge.train_loss
    if train_loss is not None and not math.isfinite(train_loss):
        callbacks.on_message("The training loss is not a finite number; lower the learning rate.")
    return TrainResult(
        status=status,
        steps=state.global_step,
        total_steps=state.max_steps,
        final_train_loss=train_loss,
        final_val_loss=final_val_loss,
        best_val_loss=best_val_loss,
        device=device,
        output_dir=output_dir,
        checkpoint=bridge.last_checkpoint,
        tokens=int(state.num_input_tokens_seen),
        seconds=time.monotonic() - started,
        extra={"train_runtime": output.metrics.get("train_runtime"), "base_model_source": where},
    )
