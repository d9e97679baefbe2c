"""Supervised fine-tuning: LoRA, QLoRA, prefix tuning, prompt tuning, P-tuning and full fine-tuning.

A hand-written loop rather than `transformers.Trainer`, so that every step reports what the run
page shows (loss, learning rate, tokens per second, time left), a cancel takes effect within one
step, and a checkpoint holds exactly what resuming needs to give the same weights as a run that
was never interrupted. Plain Python (no Django): the Huey task turns the frozen snapshot into
`TrainExample`s and passes `Callbacks` that write to the database.

The loss is the mean over the trained (assistant) tokens of an optimiser step, all its micro-
batches together, each token's loss multiplied by its example's weight when the balance is
"class_weights". Logits are computed only at the positions that are trained on: with a vocabulary
of 50,000 or more, the output layer is a large share of the work, and most tokens are prompt.

With several processes (training/engine/distributed.py), each optimiser step's micro-batches are
shared between them, the loss is normalised by the trained tokens of all of them, and the
gradients are averaged (DistributedDataParallel through `Accelerator`): the same step as one
process with that much gradient accumulation.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm.loading import EMBEDDED_NAME
from training.engine import distributed
from training.engine.chat import rendering_record
from training.engine.checkpoints import RunState, best_back, check_checkpoint, resume_state, write_checkpoint
from training.engine.config import TrainConfig
from training.engine.data import IGNORE, Batch, EncodedExample, batch_order, collate, encode_all, resample
from training.engine.gpu import check_packing, describe_precision, fsdp_plugin, make_optimizer, reset_peak_memory
from training.engine.interface import Callbacks, Progress, TrainExample, TrainResult
from training.engine.modeling import (
    apply_method,
    choose_device,
    is_adapter,
    load_base,
    save_trained,
    trainable_parameters,
    virtual_tokens,
)
from training.engine.tracking import Tracker

if TYPE_CHECKING:
    import torch

CHECKPOINTS = "checkpoints"
RECENT_STEPS = 10  # tokens per second and the time left are measured over this many steps
SCHEDULER_NAMES = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}


@dataclass
class _Loop:
    """What the step function needs besides the model."""

    device: torch.device
    autocast: torch.dtype | None
    offset: int  # virtual tokens put before the input (prompt tuning, P-tuning)
    pad_id: int
    accelerator: Any = None
    slice_logits: bool | None = None  # None: not tried yet
    scaler: Any = None
    timings: deque = field(default_factory=lambda: deque(maxlen=RECENT_STEPS))


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW (or an 8-bit one: training/engine/gpu.py); biases and normalisation weights are not decayed."""
    decay: list[torch.nn.Parameter] = []
    plain: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (plain if parameter.ndim < 2 or "norm" in name.lower() else decay).append(parameter)
    groups = [
        {"params": params, "weight_decay": decay_rate}
        for params, decay_rate in ((decay, config.weight_decay), (plain, 0.0))
        if params
    ]
    return make_optimizer(groups, config, device)


def _autocast(loop: _Loop) -> contextlib.AbstractContextManager:
    import torch

    if loop.accelerator is not None:
        return loop.accelerator.autocast()
    # bf16 on a CPU only when the run asked for it (precision "bf16"); "auto" there is float32.
    if loop.autocast is not None and loop.device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=loop.device.type, dtype=loop.autocast)
    return contextlib.nullcontext()


def _losses(model: torch.nn.Module, batch: Batch, loop: _Loop) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token losses of the trained positions, and each one's example weight (both flat)."""
    import torch
    import torch.nn.functional as F

    device = loop.device
    input_ids = batch.input_ids.to(device, non_blocking=True)
    # Packed without padding: the positions restart at each example, and there is no mask.
    position_ids = getattr(batch, "position_ids", None)
    inputs = {"input_ids": input_ids, "use_cache": False}
    if position_ids is not None:
        inputs["position_ids"] = position_ids.to(device, non_blocking=True)
    else:
        inputs["attention_mask"] = batch.attention_mask.to(device, non_blocking=True)
    labels = batch.labels.to(device, non_blocking=True)
    # Position p predicts token p + 1.
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE
    targets = labels[:, 1:][keep[:, :-1]]
    weights = batch.weights.to(device)
    weights = (weights if weights.ndim == 2 else weights[:, None].expand_as(labels))[keep]
    mask = keep
    if loop.offset:
        mask = torch.cat([torch.zeros((keep.shape[0], loop.offset), dtype=torch.bool, device=device), keep], dim=1)
    logits = None
    with _autocast(loop):
        if loop.slice_logits is not False:
            try:
                output = model(**inputs, logits_to_keep=mask)
                logits = output.logits
                loop.slice_logits = logits.ndim == 2 and logits.shape[0] == targets.shape[0]
            except Exception:
                # A model that cannot keep the logits of a boolean mask of positions: compute
                # them all and pick the trained positions after.
                if loop.slice_logits:
                    raise
                loop.slice_logits = False
            if not loop.slice_logits:
                logits = None
        if logits is None:
            output = model(**inputs)
            logits = output.logits[:, loop.offset :, :][keep]
    losses = F.cross_entropy(logits.float(), targets, reduction="none")
    return losses, weights


def _evaluate(model: torch.nn.Module, encoded: list[EncodedExample], config: TrainConfig, loop: _Loop) -> float:
    """Mean loss per trained token over the validation examples (unweighted)."""
    import torch

    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=loop.device)
    count = torch.zeros((), dtype=torch.float64, device=loop.device)
    order = batch_order([item.length for item in encoded], config.batch_size, seed=0, epoch=0, shuffle=False)
    if loop.accelerator is not None:
        order = order[loop.accelerator.process_index :: loop.accelerator.num_processes]
    with torch.inference_mode():
        for indices in order:
            batch = collate([encoded[i] for i in indices], pad_id=loop.pad_id, packed=config.packing)
            losses, _ = _losses(model, batch, loop)
            total += losses.double().sum()
            count += losses.numel()
    if loop.accelerator is not None:
        total = loop.accelerator.reduce(total, reduction="sum")
        count = loop.accelerator.reduce(count, reduction="sum")
    model.train()
    return float(total / count) if count.item() else float("nan")


def _epoch_batches(lengths: list[int], config: TrainConfig, epoch: int, accelerator: Any) -> list[list[list[int]]]:
    """The epoch's optimiser steps, each the micro-batches of example indices that every process
    trains together (distributed.epoch_steps)."""
    order = batch_order(lengths, config.batch_size, seed=config.seed, epoch=epoch)
    return distributed.epoch_steps(order, config.gradient_accumulation, accelerator)


@dataclass
class _Run:
    """The prepared model, optimiser and data that the optimiser steps work on."""

    config: TrainConfig
    callbacks: Callbacks
    model: torch.nn.Module  # wrapped by the accelerator under several processes
    unwrapped: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    parameters: list[torch.nn.Parameter]
    loop: _Loop
    encoded: list[EncodedExample]
    held_out: list[EncodedExample]
    total_steps: int
    checkpoint_root: Path
    last_checkpoint: Path | None = None
    spare_batch: Any = None  # a batch to pass through with no loss, for a process with none in a step


def _prepare_model(config: TrainConfig, accelerator: Any, callbacks: Callbacks) -> tuple[Any, Any, str, Any]:
    """The tokenizer, the base model with the method applied (in training mode), a description of
    the device and the device choice."""
    _seed(config.seed)
    callbacks.on_message(f"Loading the base model {config.base_model or EMBEDDED_NAME} for {config.method}.")
    device_name = str(accelerator.device) if accelerator is not None else None
    tokenizer, model, description = load_base(
        config.base_model, method=config.method, device=device_name, config=config
    )
    choice = choose_device(device_name, method=config.method, precision=config.precision)
    # Seeded again so that the method's new weights do not depend on what loading consumed.
    _seed(config.seed)
    model = apply_method(model, config)
    if config.packing:
        check_packing(model)
    model.train()
    callbacks.on_message(f"Precision: {describe_precision(config, choice.autocast, choice.dtype)}.")
    reset_peak_memory(choice.device)
    return tokenizer, model, description, choice


def _count_parameters(model: torch.nn.Module, description: str, callbacks: Callbacks) -> tuple[int, int]:
    trainable, total_parameters = trainable_parameters(model)
    callbacks.on_message(
        f"Device: {description}. Trainable parameters: {trainable:,} of {total_parameters:,} "
        f"({100 * trainable / max(1, total_parameters):.3g}%)."
    )
    return trainable, total_parameters


def _encode_examples(
    config: TrainConfig,
    tokenizer: Any,
    train_examples: list[TrainExample],
    validation: list[TrainExample],
    callbacks: Callbacks,
) -> tuple[list[EncodedExample], list[EncodedExample], int, int]:
    """The balanced, encoded training and validation examples, and how many of each were skipped."""
    examples = resample(train_examples, config.balance, config.seed)
    if config.balance != "class_weights":
        examples = [replace(e, weight=1.0) for e in examples]
    encoded, skipped = encode_all(tokenizer, examples, config.max_seq_length, reasoning=config.reasoning)
    held_out, held_out_skipped = encode_all(tokenizer, validation, config.max_seq_length, reasoning=config.reasoning)
    if skipped or held_out_skipped:
        callbacks.on_message(
            f"Skipped {skipped} training and {held_out_skipped} validation examples with no assistant "
            f"token left within {config.max_seq_length} tokens."
        )
    if not encoded:
        raise ValueError(
            "No training example has an assistant answer to learn from within the sequence length; "
            "check the examples or raise the maximum sequence length."
        )
    callbacks.on_message(f"{len(encoded)} training examples, {len(held_out)} validation examples.")
    return encoded, held_out, skipped, held_out_skipped


def _rendering(tokenizer: Any, examples: list[TrainExample], callbacks: Callbacks) -> dict[str, str]:
    """How the tool calls, tool results and reasoning were rendered (training/engine/chat.py), logged."""
    record, notes = rendering_record(tokenizer, examples)
    for line in notes:
        callbacks.on_message(line)
    return record


def _count_steps(config: TrainConfig, encoded: list[EncodedExample], accelerator: Any) -> tuple[int, int]:
    """Optimiser steps per epoch and in the whole run."""
    steps_per_epoch = len(_epoch_batches([item.length for item in encoded], config, 0, accelerator))
    return steps_per_epoch, config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))


def _build_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int) -> tuple[Any, int]:
    """The learning-rate schedule and its number of warm-up steps."""
    from transformers import get_scheduler

    warmup = math.ceil(config.warmup_ratio * total_steps)
    scheduler = get_scheduler(
        SCHEDULER_NAMES[config.lr_scheduler], optimizer, num_warmup_steps=warmup, num_training_steps=total_steps
    )
    return scheduler, warmup


def _make_loop(choice: Any, model: torch.nn.Module, tokenizer: Any, accelerator: Any) -> _Loop:
    import torch

    loop = _Loop(
        device=choice.device,
        autocast=choice.autocast,
        offset=virtual_tokens(model),
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        accelerator=accelerator,
    )
    if accelerator is None and choice.autocast == torch.float16 and choice.device.type == "cuda":
        loop.scaler = torch.amp.GradScaler("cuda")
    return loop


def _checkpoint(run: _Run, state: RunState) -> None:
    """Written by the main process (one folder, whatever the number of processes); every process
    waits for it. The best evaluation's checkpoint is kept besides the latest ones."""
    if distributed.is_main(run.loop.accelerator):
        run.last_checkpoint = write_checkpoint(
            run.checkpoint_root,
            run.unwrapped,
            run.optimizer,
            run.scheduler,
            state,
            run.config,
            run.total_steps,
            processes=distributed.processes(run.loop.accelerator),
        )
        run.callbacks.on_checkpoint(run.last_checkpoint, state.step)
    distributed.wait(run.loop.accelerator)


def _accumulate_gradients(run: _Run, micro_batches: list[Batch]) -> float:
    """Backward through this process's micro-batches of a step; the step's loss over every process.

    Each token's loss (times its weight) is divided by the step's trained tokens of all the
    processes; under N processes DistributedDataParallel averages the gradients, so each
    process's loss is multiplied by N. A process with no micro-batch in an epoch's short last
    step still joins the gradient exchange, with a loss of zero."""
    import torch

    loop, accelerator = run.loop, run.loop.accelerator
    local_tokens = sum(batch.trainable_tokens for batch in micro_batches)
    step_tokens = distributed.total(local_tokens, accelerator, loop.device)
    scale = distributed.processes(accelerator) / max(step_tokens, 1.0)
    passes = micro_batches or [run.spare_batch]
    weighted_sum = torch.zeros((), dtype=torch.float64, device=loop.device)
    for position, batch in enumerate(passes):
        last = position == len(passes) - 1
        sync = contextlib.nullcontext() if accelerator is None or last else accelerator.no_sync(run.model)
        with sync:
            losses, weights = _losses(run.model, batch, loop)
            weighted = (losses * weights).sum() * (1.0 if micro_batches else 0.0)
            loss = weighted * scale
            if accelerator is not None:
                accelerator.backward(loss)
            elif loop.scaler is not None:
                loop.scaler.scale(loss).backward()
            else:
                loss.backward()
        weighted_sum += weighted.detach().double()
    return distributed.total(float(weighted_sum), accelerator, loop.device) / max(step_tokens, 1.0)


def _apply_gradients(run: _Run) -> float:
    """Clip, step the optimiser and the schedule, clear the gradients; the learning rate used."""
    import torch

    loop, accelerator, optimizer = run.loop, run.loop.accelerator, run.optimizer
    if run.config.max_grad_norm > 0:
        if accelerator is not None:
            accelerator.clip_grad_norm_(run.parameters, run.config.max_grad_norm)
        else:
            if loop.scaler is not None:
                loop.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(run.parameters, run.config.max_grad_norm)
    learning_rate = run.scheduler.get_last_lr()[0]
    if loop.scaler is not None:
        loop.scaler.step(optimizer)
        loop.scaler.update()
    else:
        optimizer.step()
    run.scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return learning_rate


def _step(run: _Run, state: RunState, group: list[list[int]]) -> float:
    """One optimiser step over `group`'s micro-batches (this process's share of them), counted in
    `state`; the learning rate used."""
    loop, accelerator = run.loop, run.loop.accelerator
    step_started = time.monotonic()
    mine = distributed.share(group, accelerator)
    packed = run.config.packing
    micro_batches = [collate([run.encoded[i] for i in indices], pad_id=loop.pad_id, packed=packed) for indices in mine]
    if not micro_batches:
        run.spare_batch = collate([run.encoded[i] for i in group[0]], pad_id=loop.pad_id, packed=packed)
    step_loss = _accumulate_gradients(run, micro_batches)
    learning_rate = _apply_gradients(run)
    state.step += 1
    state.group += 1
    tokens = int(distributed.total(sum(batch.tokens for batch in micro_batches), accelerator, loop.device))
    state.tokens += tokens
    state.train_loss = step_loss
    loop.timings.append((time.monotonic() - step_started, tokens))
    return learning_rate


def _evaluation_due(config: TrainConfig, state: RunState, epoch_end: bool, total_steps: int) -> bool:
    """Every `eval_every` steps, at each epoch's end when it is 0, and after the last step."""
    due = (config.eval_every > 0 and state.step % config.eval_every == 0) or (config.eval_every == 0 and epoch_end)
    return due or state.step >= total_steps


def _validate(run: _Run, state: RunState) -> tuple[float, bool]:
    """The validation loss, counted in `state`, and whether early stopping ends the run."""
    config = run.config
    val_loss = _evaluate(run.model, run.held_out, config, run.loop)
    state.val_loss = val_loss
    state.evaluations += 1
    improved = state.best_val_loss is None or val_loss < state.best_val_loss - config.early_stopping_threshold
    if state.best_val_loss is None or val_loss < state.best_val_loss:
        state.best_val_loss = val_loss
        state.best_step = state.step
    state.bad_evaluations = 0 if improved else state.bad_evaluations + 1
    stop = bool(config.early_stopping_patience and state.bad_evaluations >= config.early_stopping_patience)
    return val_loss, stop


def _report(run: _Run, state: RunState, learning_rate: float, val_loss: float | None, groups: int) -> None:
    """The step's progress, with the throughput and time left of the recent steps."""
    timings = run.loop.timings
    seconds = sum(duration for duration, _ in timings)
    per_step = seconds / len(timings)
    if distributed.is_main(run.loop.accelerator):
        run.callbacks.on_log(
            Progress(
                step=state.step,
                total_steps=run.total_steps,
                epoch=state.epoch + state.group / max(1, groups),
                train_loss=state.train_loss,
                learning_rate=learning_rate,
                tokens_per_second=sum(count for _, count in timings) / seconds if seconds > 0 else 0.0,
                eta_seconds=per_step * (run.total_steps - state.step),
                tokens_seen=state.tokens,
                val_loss=val_loss,
            )
        )


def _run_steps(run: _Run, state: RunState) -> str:
    """Optimiser steps from `state` until the last one, a cancel or early stopping; the run's status."""
    config = run.config
    lengths = [item.length for item in run.encoded]
    groups = _epoch_batches(lengths, config, state.epoch, run.loop.accelerator)
    while state.step < run.total_steps:
        if state.group >= len(groups):
            state.epoch += 1
            state.group = 0
            groups = _epoch_batches(lengths, config, state.epoch, run.loop.accelerator)
            continue
        if distributed.stop_requested(run.callbacks, run.loop.accelerator, run.loop.device):
            _checkpoint(run, state)
            return "cancelled"
        learning_rate = _step(run, state, groups[state.group])
        due = _evaluation_due(config, state, state.group >= len(groups), run.total_steps)
        val_loss, stop_early = _validate(run, state) if due and run.held_out else (None, False)
        _report(run, state, learning_rate, val_loss, len(groups))
        if stop_early:
            run.callbacks.on_message(
                f"Early stopping at step {state.step}: the validation loss did not improve by more than "
                f"{config.early_stopping_threshold:g} in {state.bad_evaluations} evaluations."
            )
            _checkpoint(run, state)
            return "early_stopped"
        # With early stopping, as in DPO, every new best is checkpointed: the saved model is the best.
        best = bool(config.early_stopping_patience) and val_loss is not None and state.best_step == state.step
        if best or (config.save_every > 0 and state.step % config.save_every == 0) or (config.save_every == 0 and due):
            _checkpoint(run, state)
    return "done"


def _save(run: _Run, tokenizer: Any, output_dir: Path, status: str, state: RunState) -> bool:
    """The trained adapter or model (the best one with early stopping), written by the main
    process unless the run was cancelled; every process waits for it. Whether it is the best."""
    best = False
    if status != "cancelled" and distributed.is_main(run.loop.accelerator):
        if best := best_back(run.unwrapped, run.checkpoint_root, state, run.config):
            run.callbacks.on_message(f"The model saved is the best evaluation's, at step {state.best_step}.")
        save_trained(run.unwrapped, tokenizer, output_dir, run.config)
        run.callbacks.on_message(f"Saved the {'adapter' if is_adapter(run.unwrapped) else 'model'} in {output_dir}.")
    distributed.wait(run.loop.accelerator)
    return best


def train(
    config: TrainConfig,
    train_examples: list[TrainExample],
    validation: list[TrainExample],
    output_dir: Path,
    *,
    callbacks: Callbacks | None = None,
    resume_from: Path | None = None,
    run_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> TrainResult:
    """Fine-tune `config.base_model` on `train_examples` and save the result in `output_dir`.

    Status "done", "early_stopped" (validation loss stopped improving) or "cancelled"
    (`callbacks.should_stop()`; a checkpoint is written, nothing is saved in `output_dir` itself).
    With early stopping on, the model saved is the best evaluation's, as in DPO. `resume_from` is
    a checkpoint of an earlier run with the same settings and examples, on any number of
    processes: the run continues as if never interrupted. SHIKOMI_PROCESSES above 1 trains on
    that many processes (training/engine/distributed.py).
    Tracked in TensorBoard and MLflow as `run_name` with `tags` (training/engine/tracking.py).
    """
    if config.method == "dpo":
        raise ValueError("DPO trains on preference pairs; use the DPO trainer for it.")
    resumed = resume_from is not None
    if resumed:
        check_checkpoint(Path(resume_from))
    processes = distributed.processes_wanted()
    with Tracker(config, output_dir, run_name=run_name, tags=tags, callbacks=callbacks, resumed=resumed) as tracker:
        arguments = {
            "config": config,
            "examples": train_examples,
            "validation": validation,
            "output_dir": Path(output_dir),
            "resume_from": resume_from,
        }
        if processes > 1:
            result = distributed.launch(processes, arguments, tracker.callbacks)
        else:
            result = _train(callbacks=tracker.callbacks, **arguments)
        return tracker.finish(result)


def _train(
    config: TrainConfig,
    examples: list[TrainExample],
    validation: list[TrainExample],
    output_dir: Path,
    callbacks: Callbacks,
    resume_from: Path | None,
) -> TrainResult:
    """The run itself, reporting to `callbacks`."""
    started = time.monotonic()
    precision = distributed.precision(choose_device(None, method=config.method, precision=config.precision).autocast)
    accelerator = distributed.make_accelerator(precision, fsdp_plugin(config))
    tokenizer, model, description, choice = _prepare_model(config, accelerator, callbacks)
    trainable, total_parameters = _count_parameters(model, description, callbacks)
    encoded, held_out, skipped, held_out_skipped = _encode_examples(config, tokenizer, examples, validation, callbacks)
    rendered = _rendering(tokenizer, [*examples, *validation], callbacks)
    steps_per_epoch, total_steps = _count_steps(config, encoded, accelerator)

    optimizer = _optimizer(model, config, choice.device)
    scheduler, warmup = _build_scheduler(config, optimizer, total_steps)
    loop = _make_loop(choice, model, tokenizer, accelerator)
    processes = distributed.processes(accelerator)
    state = resume_state(resume_from, model, optimizer, scheduler, config, callbacks, processes=processes)
    if accelerator is not None:
        model, optimizer = accelerator.prepare(model, optimizer)
    run = _Run(
        config=config,
        callbacks=callbacks,
        model=model,
        unwrapped=accelerator.unwrap_model(model) if accelerator is not None else model,
        optimizer=optimizer,
        scheduler=scheduler,
        parameters=[parameter for parameter in model.parameters() if parameter.requires_grad],
        loop=loop,
        encoded=encoded,
        held_out=held_out,
        total_steps=total_steps,
        checkpoint_root=output_dir / CHECKPOINTS,
        last_checkpoint=Path(resume_from) if resume_from is not None else None,
    )
    status = _run_steps(run, state)

    best_saved = _save(run, tokenizer, output_dir, status, state)
    used = distributed.resources(loop.device, precision, accelerator)
    return TrainResult(
        status=status,
        steps=state.step,
        total_steps=total_steps,
        final_train_loss=state.train_loss,
        final_val_loss=state.best_val_loss if best_saved else state.val_loss,
        best_val_loss=state.best_val_loss,
        device=description,
        output_dir=output_dir,
        checkpoint=run.last_checkpoint,
        tokens=state.tokens,
        seconds=time.monotonic() - started,
        extra={
            "examples": len(encoded),
            "skipped_examples": skipped,
            "validation_examples": len(held_out),
            "skipped_validation_examples": held_out_skipped,
            "trainable_parameters": trainable,
            "total_parameters": total_parameters,
            "steps_per_epoch": steps_per_epoch,
            "warmup_steps": warmup,
            "evaluations": state.evaluations,
            "best_step": state.best_step,
            "best_checkpoint": f"step-{state.best_step}" if state.best_step is not None else None,
            **used,
            **({"rendering": rendered} if rendered else {}),
        },
    )


if __name__ == "__main__":  # one process of a run on several (training/engine/distributed.py)
    distributed.rank_main(_train, sys.argv[1])
