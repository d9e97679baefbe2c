"""What the trainers (plain Python, no Django) and the Huey task that runs them exchange.

The task turns the frozen snapshot into `TrainExample`s (or `PreferenceExample`s for DPO),
calls `train()` / `train_dpo()` with a `Callbacks` object, and writes what the callbacks report
to the database. The trainers never import Django models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass
class TrainExample:
    # The canonical conversation (docs/data-model.md): loss only on assistant turns (their
    # content, tool calls and reasoning as the run's reasoning setting says), never on a turn
    # whose `weight` is 0.
    messages: list[dict[str, Any]]
    weight: float = 1.0  # class weight when the balance is "class_weights"
    label: str | None = None  # for resampling by label
    tools: list[dict[str, Any]] | None = None  # the functions the conversation may call (OpenAI shape)


@dataclass
class PreferenceExample:
    # The canonical conversation up to the answer, and two assistant messages answering it
    # (content, reasoning, tool_calls: docs/data-model.md); the loss sees only those two turns.
    prompt: list[dict[str, Any]]
    chosen: dict[str, Any]
    rejected: dict[str, Any]
    tools: list[dict[str, Any]] | None = None  # the functions the conversation may call (OpenAI shape)

    def __post_init__(self) -> None:
        # Pairs frozen before answers were messages held their texts.
        if isinstance(self.chosen, str):
            self.chosen = {"role": "assistant", "content": self.chosen}
        if isinstance(self.rejected, str):
            self.rejected = {"role": "assistant", "content": self.rejected}


@dataclass
class Progress:
    step: int  # optimiser steps done
    total_steps: int
    epoch: float
    train_loss: float | None  # mean over the step's micro-batches (tokens-weighted)
    learning_rate: float
    tokens_per_second: float  # trained (non-padding) tokens per second, over the recent steps
    eta_seconds: float | None
    tokens_seen: int = 0
    val_loss: float | None = None  # set on the steps with an evaluation


@dataclass
class TrainResult:
    status: str  # "done" | "early_stopped" | "cancelled"
    steps: int
    total_steps: int
    final_train_loss: float | None
    final_val_loss: float | None
    best_val_loss: float | None
    device: str  # "cpu", "cuda:0 (NVIDIA H100 ...)", with the dtype: "cpu float32"
    output_dir: Path  # the saved adapter (or full weights), tokenizer and config
    checkpoint: Path | None  # the last checkpoint written (for resume)
    tokens: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


class Callbacks(Protocol):
    def on_log(self, progress: Progress) -> None:
        """After every optimiser step (and with val_loss after each evaluation)."""

    def on_checkpoint(self, path: Path, step: int) -> None:
        """After a checkpoint is completely written (write to a temporary folder, then rename)."""

    def on_message(self, line: str) -> None:
        """A line for the run's log (model loading, device, warnings)."""

    def should_stop(self) -> bool:
        """Checked before every optimiser step; True stops the run within one step."""


class NoCallbacks:
    def on_log(self, progress: Progress) -> None:
        pass

    def on_checkpoint(self, path: Path, step: int) -> None:
        pass

    def on_message(self, line: str) -> None:
        pass

    def should_stop(self) -> bool:
        return False
