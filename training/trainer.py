"""Supervised fine-tuning: LoRA, QLoRA, prefix tuning, prompt tuning, P-tuning and full fine-tuning.

A hand-written loop rather than `transformers.Trainer`, so that every step reports what the
run page shows (loss, learning rate, tokens per second, time left), a cancel takes effect
within one step, and a checkpoint holds exactly what resuming needs to give the same weights
as a run that was never interrupted.

Plain Python (no Django): the Huey task turns the frozen snapshot into `TrainExample`s and
passes `Callbacks` that write to the database.

The loss is the mean over the trained (assistant) tokens of an optimiser step, all its
micro-batches together, each token's loss multiplied by its example's weight when the balance
is "class_weights". Logits are computed only at the positions that are trained on: with a
vocabulary of 50,000 or more, the output layer is a large share of the work, and most tokens
of a conversation are prompt.

Under `accelerate launch` with several processes, each process trains on its share of every
epoch's batches and the gradients are averaged (DistributedDataParallel through `Accelerator`).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.config import TrainConfig
from training.data import IGNORE, Batch, EncodedExample, batch_order, collate, encode_all, resample
from training.interface import Callbacks, NoCallbacks, Progress, TrainExample, TrainResult
from training.modeling import (
    EMBEDDED_NAME,
    apply_method,
    choose_device,
    is_adapter,
    load_base,
    save_trained,
    trainable_parameters,
    virtual_tokens,
)

if TYPE_CHECKING:
    import torch

CHECKPOINTS = "checkpoints"
KEEP_CHECKPOINTS = 2
RECENT_STEPS = 10  # tokens per second and the time left are measured over this many steps
SCHEDULER_NAMES = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}


@dataclass
class _State:
    """Where the run stands; written into every checkpoint."""

    step: int = 0
    epoch: int = 0
    group: int = 0  # optimiser steps done in `epoch`
    tokens: int = 0
    best_val_loss: float | None = None
    bad_evaluations: int = 0
    train_loss: float | None = None
    val_loss: float | None = None
    evaluations: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


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


def _rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; biases and normalisation weights are not decayed."""
    import torch

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
    if not groups:
        raise ValueError(f"The method {config.method!r} left no trainable parameter in the model.")
    options: dict[str, Any] = {"lr": config.learning_rate}
    if device.type == "cuda":
        options["fused"] = True
    return torch.optim.AdamW(groups, **options)


def _trainable_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: parameter.detach().to("cpu").contiguous()
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
    }


def _load_trainable(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    import torch

    parameters = {name: parameter for name, parameter in model.named_parameters() if parameter.requires_grad}
    missing = sorted(set(parameters) - set(tensors))
    unexpected = sorted(set(tensors) - set(parameters))
    if missing or unexpected:
        raise ValueError(
            "The checkpoint does not fit this model and method "
            f"(missing: {', '.join(missing[:5]) or 'none'}; unexpected: {', '.join(unexpected[:5]) or 'none'})."
        )
    with torch.no_grad():
        for name, parameter in parameters.items():
            parameter.copy_(tensors[name].to(parameter.device, parameter.dtype))


def _write_checkpoint(
    root: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: _State,
    config: TrainConfig,
    total_steps: int,
) -> Path:
    """Everything resuming needs, written to a temporary folder and renamed to `step-N`; only
    the last `KEEP_CHECKPOINTS` are kept."""
    import torch
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{state.step}"
    temporary = root / f".tmp-step-{state.step}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    save_file(_trainable_tensors(model), str(temporary / "trainable.safetensors"))
    torch.save(optimizer.state_dict(), temporary / "optimizer.pt")
    torch.save(scheduler.state_dict(), temporary / "scheduler.pt")
    torch.save(_rng_state(), temporary / "rng.pt")
    meta = {"state": state.as_dict(), "total_steps": total_steps, "config": config.as_dict()}
    (temporary / "state.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.replace(temporary, final)
    done = sorted(
        (path for path in root.glob("step-*") if path.is_dir() and path.name[5:].isdigit()),
        key=lambda path: int(path.name[5:]),
    )
    for old in done[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _read_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, config: TrainConfig
) -> tuple[_State, list[str]]:
    """Restore the weights, optimiser, scheduler and random state; the run's state and a
    warning for each setting that differs from the checkpoint's run."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint of this trainer (state.json is missing).")
    meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
    _load_trainable(model, load_file(str(path / "trainable.safetensors")))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", map_location="cpu", weights_only=True))
    _set_rng_state(torch.load(path / "rng.pt", map_location="cpu", weights_only=True))
    state = _State(**meta["state"])
    before = meta.get("config", {})
    warnings = [
        f"The setting {name} was {before[name]!r} in the checkpoint's run and is {value!r} now; "
        "the resumed run will not match an uninterrupted one."
        for name, value in config.as_dict().items()
        if name in before and before[name] != value
    ]
    return state, warnings


def _autocast(loop: _Loop) -> contextlib.AbstractContextManager:
    import torch

    if loop.accelerator is not None:
        return loop.accelerator.autocast()
    if loop.autocast is not None and loop.device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=loop.autocast)
    return contextlib.nullcontext()


def _losses(model: torch.nn.Module, batch: Batch, loop: _Loop) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token losses of the trained positions, and each one's example weight (both flat)."""
    import torch
    import torch.nn.functional as F

    device = loop.device
    input_ids = batch.input_ids.to(device, non_blocking=True)
    attention_mask = batch.attention_mask.to(device, non_blocking=True)
    labels = batch.labels.to(device, non_blocking=True)
    # Position p predicts token p + 1.
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE
    targets = labels[:, 1:][keep[:, :-1]]
    weights = batch.weights.to(device)[:, None].expand_as(labels)[keep]
    mask = keep
    if loop.offset:
        mask = torch.cat([torch.zeros((keep.shape[0], loop.offset), dtype=torch.bool, device=device), keep], dim=1)
    logits = None
    with _autocast(loop):
        if loop.slice_logits is not False:
            try:
                output = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=mask, use_cache=False)
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
            output = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
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
            losses, _ = _losses(model, collate([encoded[i] for i in indices], pad_id=loop.pad_id), loop)
            total += losses.double().sum()
            count += losses.numel()
    if loop.accelerator is not None:
        total = loop.accelerator.reduce(total, reduction="sum")
        count = loop.accelerator.reduce(count, reduction="sum")
    model.train()
    return float(total / count) if count.item() else float("nan")


def _epoch_batches(lengths: list[int], config: TrainConfig, epoch: int, accelerator: Any) -> list[list[list[int]]]:
    """The epoch's optimiser steps, each a list of micro-batches of example indices; under
    several processes, this process's share of the batches."""
    order = batch_order(lengths, config.batch_size, seed=config.seed, epoch=epoch)
    if accelerator is not None and accelerator.num_processes > 1:
        processes = accelerator.num_processes
        if len(order) < processes:
            order = (order * processes)[:processes]
        usable = len(order) // processes * processes
        order = order[accelerator.process_index : usable : processes]
    step = config.gradient_accumulation
    return [order[start : start + step] for start in range(0, len(order), step)]


def _stop_requested(callbacks: Callbacks, loop: _Loop) -> bool:
    wanted = bool(callbacks.should_stop()) if _is_main(loop) else False
    if loop.accelerator is None:
        return wanted
    import torch

    flag = torch.tensor([1.0 if wanted else 0.0], device=loop.device)
    return bool(loop.accelerator.reduce(flag, reduction="sum").item() > 0)


def _is_main(loop: _Loop) -> bool:
    return loop.accelerator is None or loop.accelerator.is_main_process


def train(
    config: TrainConfig,
    train_examples: list[TrainExample],
    validation: list[TrainExample],
    output_dir: Path,
    *,
    callbacks: Callbacks | None = None,
    resume_from: Path | None = None,
) -> TrainResult:
    """Fine-tune `config.base_model` on `train_examples` and save the result in `output_dir`.

    Status "done", "early_stopped" (validation loss stopped improving; the model is saved as
    it is at that point) or "cancelled" (`callbacks.should_stop()`; a checkpoint is written,
    nothing is saved in `output_dir` itself). `resume_from` is a checkpoint folder of an earlier
    run with the same settings and examples: the run continues as if never interrupted.
    """
    import torch
    from transformers import get_scheduler

    callbacks = callbacks or NoCallbacks()
    started = time.monotonic()
    output_dir = Path(output_dir)
    if config.method == "dpo":
        raise ValueError("DPO trains on preference pairs; use the DPO trainer for it.")

    accelerator = None
    if _distributed():
        from accelerate import Accelerator

        half = choose_device(None, method=config.method).autocast
        precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(half, "no")
        # No `gradient_accumulation_steps`: `Accelerator.backward` would divide the loss by it,
        # and the loss here is already the mean over the whole step's tokens; the micro-batches
        # before the last skip the gradient synchronisation through `no_sync` below.
        accelerator = Accelerator(mixed_precision=precision)

    _seed(config.seed)
    callbacks.on_message(f"Loading the base model {config.base_model or EMBEDDED_NAME} for {config.method}.")
    device_name = str(accelerator.device) if accelerator is not None else None
    tokenizer, model, description = load_base(config.base_model, method=config.method, device=device_name)
    choice = choose_device(device_name, method=config.method)
    _seed(config.seed)
    model = apply_method(model, config)
    model.train()
    trainable, total_parameters = trainable_parameters(model)
    callbacks.on_message(
        f"Device: {description}. Trainable parameters: {trainable:,} of {total_parameters:,} "
        f"({100 * trainable / max(1, total_parameters):.3g}%)."
    )

    examples = resample(train_examples, config.balance, config.seed)
    if config.balance != "class_weights":
        examples = [TrainExample(messages=e.messages, weight=1.0, label=e.label) for e in examples]
    encoded, skipped = encode_all(tokenizer, examples, config.max_seq_length)
    held_out, held_out_skipped = encode_all(tokenizer, validation, config.max_seq_length)
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
    lengths = [item.length for item in encoded]
    steps_per_epoch = len(_epoch_batches(lengths, config, 0, accelerator))
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))

    optimizer = _optimizer(model, config, choice.device)
    warmup = math.ceil(config.warmup_ratio * total_steps)
    scheduler = get_scheduler(
        SCHEDULER_NAMES[config.lr_scheduler], optimizer, num_warmup_steps=warmup, num_training_steps=total_steps
    )
    loop = _Loop(
        device=choice.device,
        autocast=choice.autocast,
        offset=virtual_tokens(model),
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        accelerator=accelerator,
    )
    if accelerator is None and choice.autocast == torch.float16 and choice.device.type == "cuda":
        loop.scaler = torch.amp.GradScaler("cuda")

    state = _State()
    if resume_from is not None:
        state, warnings = _read_checkpoint(Path(resume_from), model, optimizer, scheduler, config)
        for line in warnings:
            callbacks.on_message(line)
        callbacks.on_message(f"Resumed from {resume_from} at step {state.step}.")
    if accelerator is not None:
        model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model) if accelerator is not None else model
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]

    checkpoint_root = output_dir / CHECKPOINTS
    last_checkpoint: Path | None = Path(resume_from) if resume_from is not None else None

    def checkpoint() -> None:
        nonlocal last_checkpoint
        if _is_main(loop):
            last_checkpoint = _write_checkpoint(
                checkpoint_root, unwrapped, optimizer, scheduler, state, config, total_steps
            )
            callbacks.on_checkpoint(last_checkpoint, state.step)
        if accelerator is not None:
            accelerator.wait_for_everyone()

    status = "done"
    groups = _epoch_batches(lengths, config, state.epoch, accelerator)
    while state.step < total_steps and status == "done":
        if state.group >= len(groups):
            state.epoch += 1
            state.group = 0
            groups = _epoch_batches(lengths, config, state.epoch, accelerator)
            continue
        if _stop_requested(callbacks, loop):
            checkpoint()
            status = "cancelled"
            break
        step_started = time.monotonic()
        micro_batches = [collate([encoded[i] for i in indices], pad_id=loop.pad_id) for indices in groups[state.group]]
        trained_tokens = sum(batch.trainable_tokens for batch in micro_batches)
        step_loss = torch.zeros((), device=loop.device)
        for position, batch in enumerate(micro_batches):
            last = position == len(micro_batches) - 1
            sync = contextlib.nullcontext() if accelerator is None or last else accelerator.no_sync(model)
            with sync:
                losses, weights = _losses(model, batch, loop)
                loss = (losses * weights).sum() / trained_tokens
                if accelerator is not None:
                    accelerator.backward(loss)
                elif loop.scaler is not None:
                    loop.scaler.scale(loss).backward()
                else:
                    loss.backward()
            step_loss += loss.detach()
        if config.max_grad_norm > 0:
            if accelerator is not None:
                accelerator.clip_grad_norm_(parameters, config.max_grad_norm)
            else:
                if loop.scaler is not None:
                    loop.scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
        learning_rate = scheduler.get_last_lr()[0]
        if loop.scaler is not None:
            loop.scaler.step(optimizer)
            loop.scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.group += 1
        tokens = sum(batch.tokens for batch in micro_batches)
        if accelerator is not None:
            counted = torch.tensor([float(tokens)], device=loop.device)
            tokens = int(accelerator.reduce(counted, reduction="sum").item())
            step_loss = accelerator.reduce(step_loss, reduction="mean")
        state.tokens += tokens
        state.train_loss = float(step_loss)
        loop.timings.append((time.monotonic() - step_started, tokens))

        val_loss = None
        epoch_end = state.group >= len(groups)
        due = (config.eval_every > 0 and state.step % config.eval_every == 0) or (config.eval_every == 0 and epoch_end)
        due = due or state.step >= total_steps
        if due and held_out:
            val_loss = _evaluate(model, held_out, config, loop)
            state.val_loss = val_loss
            state.evaluations += 1
            improved = state.best_val_loss is None or val_loss < state.best_val_loss - config.early_stopping_threshold
            if state.best_val_loss is None or val_loss < state.best_val_loss:
                state.best_val_loss = val_loss
            state.bad_evaluations = 0 if improved else state.bad_evaluations + 1
            if config.early_stopping_patience and state.bad_evaluations >= config.early_stopping_patience:
                status = "early_stopped"
        seconds = sum(duration for duration, _ in loop.timings)
        per_step = seconds / len(loop.timings)
        if _is_main(loop):
            callbacks.on_log(
                Progress(
                    step=state.step,
                    total_steps=total_steps,
                    epoch=state.epoch + state.group / max(1, len(groups)),
                    train_loss=state.train_loss,
                    learning_rate=learning_rate,
                    tokens_per_second=sum(count for _, count in loop.timings) / seconds if seconds > 0 else 0.0,
                    eta_seconds=per_step * (total_steps - state.step),
                    tokens_seen=state.tokens,
                    val_loss=val_loss,
                )
            )
        if status == "early_stopped":
            callbacks.on_message(
                f"Early stopping at step {state.step}: the validation loss did not improve by more than "
                f"{config.early_stopping_threshold:g} in {state.bad_evaluations} evaluations."
            )
            checkpoint()
            break
        if (config.save_every > 0 and state.step % config.save_every == 0) or (config.save_every == 0 and due):
            checkpoint()

    if status != "cancelled" and _is_main(loop):
        save_trained(unwrapped, tokenizer, output_dir, config)
        callbacks.on_message(f"Saved the {'adapter' if is_adapter(unwrapped) else 'model'} in {output_dir}.")
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return TrainResult(
        status=status,
        steps=state.step,
        total_steps=total_steps,
        final_train_loss=state.train_loss,
        final_val_loss=state.val_loss,
        best_val_loss=state.best_val_loss,
        device=description,
        output_dir=output_dir,
        checkpoint=last_checkpoint,
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
        },
    )
