"""What a training run is configured with: every field validated with bounds and a short help
text, presets for the common cases, and one error per field the person can correct.

Plain Python (no Django models): the trainer, the Huey task, the form and the API all read it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from text.i18n import gettext as _
from text.i18n import gettext_lazy

METHODS: dict[str, Any] = {
    "lora": gettext_lazy("LoRA"),
    "qlora": gettext_lazy("QLoRA (4-bit, CUDA only)"),
    "prefix": gettext_lazy("Prefix tuning"),
    "prompt": gettext_lazy("Prompt tuning"),
    "ptuning": gettext_lazy("P-tuning"),
    "full": gettext_lazy("Full fine-tuning"),
    "dpo": gettext_lazy("DPO on preference pairs (LoRA adapter)"),
}
PEFT_METHODS = ("lora", "qlora", "prefix", "prompt", "ptuning", "dpo")
SCHEDULERS = ("constant", "linear", "cosine")
BALANCE = ("none", "oversample", "undersample", "class_weights")
# What becomes of the reasoning of assistant turns (training/engine/chat.py).
REASONING: dict[str, Any] = {
    "train": gettext_lazy("Train on it"),
    "mask": gettext_lazy("Show it, no loss"),
    "drop_earlier": gettext_lazy("Remove it from earlier turns"),
}
DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


@dataclass(frozen=True)
class Bound:
    low: float
    high: float
    help: Any


# Bounds and help per numeric field; the form, the API schema and `config_clean` read these.
BOUNDS: dict[str, Bound] = {
    "lora_rank": Bound(1, 256, gettext_lazy("Rank of the LoRA matrices: capacity of the adapter (8-64 usual).")),
    "lora_alpha": Bound(1, 1024, gettext_lazy("LoRA scaling; the update is scaled by alpha / rank (often 2 x rank).")),
    "lora_dropout": Bound(0, 0.5, gettext_lazy("Dropout on the LoRA input during training.")),
    "num_virtual_tokens": Bound(
        1, 512, gettext_lazy("Prefix, prompt and P-tuning: how many trainable virtual tokens.")
    ),
    "learning_rate": Bound(1e-7, 1e-2, gettext_lazy("Peak learning rate (LoRA ~2e-4, full fine-tuning ~2e-5).")),
    "warmup_ratio": Bound(0, 0.5, gettext_lazy("Share of the steps spent warming the learning rate up from 0.")),
    "batch_size": Bound(1, 512, gettext_lazy("Examples per forward pass.")),
    "gradient_accumulation": Bound(
        1, 256, gettext_lazy("Forward passes per optimiser step; the effective batch is batch size x this.")
    ),
    "epochs": Bound(0.01, 100, gettext_lazy("Passes over the training split (ignored when maximum steps is set).")),
    "max_steps": Bound(0, 1_000_000, gettext_lazy("Optimiser steps to stop after; 0 means use epochs.")),
    "max_seq_length": Bound(16, 131_072, gettext_lazy("Tokens per example; longer examples are cut at the end.")),
    "weight_decay": Bound(0, 1, gettext_lazy("AdamW weight decay.")),
    "max_grad_norm": Bound(0, 100, gettext_lazy("Gradient clipping by global norm; 0 turns it off.")),
    "eval_every": Bound(
        0, 1_000_000, gettext_lazy("Evaluate on the validation split every N steps; 0: once per epoch.")
    ),
    "early_stopping_patience": Bound(
        0, 1000, gettext_lazy("Stop after this many evaluations without improvement; 0 turns it off.")
    ),
    "early_stopping_threshold": Bound(
        0, 10, gettext_lazy("How much the validation loss must fall to count as an improvement.")
    ),
    "save_every": Bound(0, 1_000_000, gettext_lazy("Checkpoint every N steps; 0: at each evaluation.")),
    "seed": Bound(0, 2**31 - 1, gettext_lazy("Random seed: data order, initialisation, dropout.")),
    "dpo_beta": Bound(0.001, 10, gettext_lazy("DPO: how far the tuned model may move from the base (0.1 usual).")),
}


@dataclass
class TrainConfig:
    method: str = "lora"
    base_model: str = ""  # "" = the embedded SmolLM2-135M-Instruct; else a folder or a cached HF id
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    num_virtual_tokens: int = 16
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    batch_size: int = 8
    gradient_accumulation: int = 1
    epochs: float = 1.0
    max_steps: int = 0
    max_seq_length: int = 1024
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eval_every: int = 0
    early_stopping_patience: int = 0
    early_stopping_threshold: float = 0.0
    save_every: int = 0
    seed: int = 42
    balance: str = "none"
    dpo_beta: float = 0.1
    reasoning: str = "train"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, tuple[Any, dict[str, Any]]] = {
    "quick_cpu_demo": (
        gettext_lazy("Quick CPU demo: LoRA rank 8, 20 steps, short sequences (a few minutes on a laptop)"),
        {
            "method": "lora",
            "lora_rank": 8,
            "lora_alpha": 16,
            "max_steps": 20,
            "batch_size": 4,
            "max_seq_length": 512,
            "learning_rate": 3e-4,
            "eval_every": 10,
            "lr_scheduler": "constant",
            "warmup_ratio": 0.0,
        },
    ),
    "lora_standard": (
        gettext_lazy("LoRA standard: rank 16, 3 epochs, cosine schedule"),
        {
            "method": "lora",
            "lora_rank": 16,
            "lora_alpha": 32,
            "epochs": 3,
            "max_steps": 0,
            "batch_size": 8,
            "max_seq_length": 2048,
            "learning_rate": 2e-4,
            "lr_scheduler": "cosine",
            "warmup_ratio": 0.03,
            "eval_every": 50,
            "early_stopping_patience": 3,
        },
    ),
    "qlora_gpu": (
        gettext_lazy("QLoRA on GPU: 4-bit base, rank 16, all linear layers"),
        {
            "method": "qlora",
            "lora_rank": 16,
            "lora_alpha": 32,
            "epochs": 3,
            "max_steps": 0,
            "batch_size": 16,
            "max_seq_length": 2048,
            "learning_rate": 2e-4,
            "lr_scheduler": "cosine",
            "warmup_ratio": 0.03,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            "eval_every": 50,
            "early_stopping_patience": 3,
        },
    ),
}


class ConfigInvalid(ValueError):
    """Every field that cannot work, with what to do: {field: message}."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def bitsandbytes_available() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def config_clean(data: dict[str, Any], *, preset: str | None = None) -> TrainConfig:
    """A TrainConfig from form or API data (preset values first, then `data` over them);
    ConfigInvalid with one message per bad field. Unknown fields are refused too."""
    known = {f.name: f for f in fields(TrainConfig)}
    merged: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if preset:
        if preset not in PRESETS:
            errors["preset"] = _("Unknown preset %(name)r; choose one of %(names)s.") % {
                "name": preset,
                "names": ", ".join(PRESETS),
            }
        else:
            merged.update(PRESETS[preset][1])
    for name, value in data.items():
        if name not in known:
            errors[name] = _("Unknown setting; the settings are %(names)s.") % {"names": ", ".join(known)}
        else:
            merged[name] = value
    values: dict[str, Any] = {}
    defaults = TrainConfig()
    for name in known:
        default = getattr(defaults, name)
        value = merged.get(name, default)
        if name in BOUNDS:
            number_type = int if isinstance(default, int) and not isinstance(default, bool) else float
            try:
                if isinstance(value, bool) or value is None or value == "":
                    raise ValueError
                number = number_type(value)
                if number_type is int and float(value) != number:
                    raise ValueError
            except (TypeError, ValueError):
                errors[name] = _("Enter a whole number.") if number_type is int else _("Enter a number.")
                continue
            bound = BOUNDS[name]
            if not bound.low <= number <= bound.high:
                errors[name] = _("Must be between %(low)s and %(high)s.") % {
                    "low": f"{bound.low:g}",
                    "high": f"{bound.high:g}",
                }
                continue
            values[name] = number
        elif name == "target_modules":
            if isinstance(value, str):
                value = [part.strip() for part in value.replace("\n", ",").split(",")]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                errors[name] = _("Give a list of module names.")
                continue
            value = [v.strip() for v in value if v.strip()]
            if not value:
                errors[name] = _("Choose at least one module, such as q_proj and v_proj.")
                continue
            values[name] = value
        else:
            values[name] = "" if value is None else str(value).strip()
    checks = {"method": METHODS, "lr_scheduler": SCHEDULERS, "balance": BALANCE, "reasoning": REASONING}
    for name, allowed in checks.items():
        if name in values and values[name] not in allowed:
            errors[name] = _("Choose one of %(values)s.") % {"values": ", ".join(allowed)}
    if values.get("method") == "qlora" and "method" not in errors:
        if not cuda_available():
            errors["method"] = _(
                "QLoRA needs a CUDA GPU and this machine has none; choose LoRA, which trains the same adapter "
                "without 4-bit quantisation."
            )
        elif not bitsandbytes_available():
            errors["method"] = _("QLoRA needs the bitsandbytes package, which is not installed; choose LoRA.")
    if errors:
        raise ConfigInvalid(errors)
    return TrainConfig(**values)
