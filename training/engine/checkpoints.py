"""Checkpoints of the SFT trainer: everything resuming needs to give the same weights as a run that
was never interrupted (trainable weights, optimiser, schedule, random state and the run's state).

Plain Python (no Django); torch and safetensors are imported inside the functions.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.engine.config import TrainConfig
from training.engine.interface import Callbacks

if TYPE_CHECKING:
    import torch

KEEP_CHECKPOINTS = 2
FOLDER = "checkpoints"  # inside a run's output folder, for both trainers
# The file every complete checkpoint folder holds (SFT's, then DPO's): with object storage it is
# uploaded after the rest of its folder, so a stored checkpoint that has it is complete.
COMPLETE_MARKERS = ("state.json", "trainer_state.json")


def checkpoint_step(name: str | Path) -> int | None:
    """The step of a checkpoint folder, from its name (`step-N` for SFT, `checkpoint-N` for DPO)."""
    prefix, _dash, step = Path(name).name.rpartition("-")
    return int(step) if prefix in ("step", "checkpoint") and step.isdigit() else None


@dataclass
class RunState:
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
    best_step: int | None = None  # the step of the lowest validation loss

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


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


def trainable_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The trainable weights, on the CPU, as a checkpoint stores them."""
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


def write_checkpoint(
    root: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: RunState,
    config: TrainConfig,
    total_steps: int,
    *,
    processes: int = 1,
) -> Path:
    """Everything resuming needs, written to a temporary folder and renamed to `step-N`; only
    the last `KEEP_CHECKPOINTS` are kept, and the best evaluation's (`state.best_step`).
    `processes` is recorded: a run resumes on any number of processes, and continues alike
    when `gradient_accumulation × processes` is the same."""
    import torch
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{state.step}"
    temporary = root / f".tmp-step-{state.step}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    save_file(trainable_tensors(model), str(temporary / "trainable.safetensors"))
    torch.save(optimizer.state_dict(), temporary / "optimizer.pt")
    torch.save(scheduler.state_dict(), temporary / "scheduler.pt")
    torch.save(_rng_state(), temporary / "rng.pt")
    meta = {"state": state.as_dict(), "total_steps": total_steps, "config": config.as_dict(), "processes": processes}
    (temporary / "state.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.replace(temporary, final)
    done = sorted(
        (path for path in root.glob("step-*") if path.is_dir() and path.name[5:].isdigit()),
        key=lambda path: int(path.name[5:]),
    )
    for old in done[:-KEEP_CHECKPOINTS]:
        if old.name != f"step-{state.best_step}":
            shutil.rmtree(old, ignore_errors=True)
    return final


def check_checkpoint(path: Path) -> None:
    """FileNotFoundError unless `path` is a complete checkpoint of this trainer."""
    if not (Path(path) / "state.json").is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint of this trainer (state.json is missing).")


def load_trainable(model: torch.nn.Module, path: Path) -> None:
    """The checkpoint's trainable weights into `model`."""
    from safetensors.torch import load_file

    _load_trainable(model, load_file(str(Path(path) / "trainable.safetensors")))


def best_back(model: torch.nn.Module, root: Path, state: RunState, config: TrainConfig) -> bool:
    """With early stopping (as DPO's `load_best_model_at_end`), the best evaluation's weights go back
    into `model` before it is saved, when the last step is not the best; whether they did."""
    best = Path(root) / f"step-{state.best_step}"
    if not config.early_stopping_patience or state.best_step in (None, state.step):
        return False
    if not (best / "state.json").is_file():
        return False
    load_trainable(model, best)
    return True


def read_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    config: TrainConfig,
    *,
    processes: int = 1,
) -> tuple[RunState, list[str]]:
    """Restore the weights, optimiser, scheduler and random state; the run's state and a
    warning for each setting that differs from the checkpoint's run (the global batch included:
    `gradient_accumulation × processes`)."""
    import torch

    path = Path(path)
    check_checkpoint(path)
    meta = json.loads((path / "state.json").read_text(encoding="utf-8"))
    load_trainable(model, path)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", map_location="cpu", weights_only=True))
    _set_rng_state(torch.load(path / "rng.pt", map_location="cpu", weights_only=True))
    state = RunState(**meta["state"])
    before = meta.get("config", {})
    warnings = [
        f"The setting {name} was {before[name]!r} in the checkpoint's run and is {value!r} now; "
        "the resumed run will not match an uninterrupted one."
        for name, value in config.as_dict().items()
        if name in before and before[name] != value and name != "gradient_accumulation"
    ]
    accumulation = before.get("gradient_accumulation", config.gradient_accumulation)
    if accumulation * meta.get("processes", 1) != config.gradient_accumulation * processes:
        warnings.append(
            f"The checkpoint's run took {accumulation * meta.get('processes', 1)} micro-batches a step "
            f"(gradient accumulation × processes) and this one takes {config.gradient_accumulation * processes}; "
            "the resumed run will not match an uninterrupted one."
        )
    return state, warnings


def resume_state(
    resume_from: Path | None,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    config: TrainConfig,
    callbacks: Callbacks,
    *,
    processes: int = 1,
) -> RunState:
    """A fresh state, or the checkpoint's with its weights, optimiser, schedule and random state
    restored (its warnings told to `callbacks`)."""
    if resume_from is None:
        return RunState()
    state, warnings = read_checkpoint(Path(resume_from), model, optimizer, scheduler, config, processes=processes)
    for line in warnings:
        callbacks.on_message(line)
    callbacks.on_message(f"Resumed from {resume_from} at step {state.step}.")
    return state
