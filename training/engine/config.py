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
# The GPU settings (docs/gpu.md says what each needs and why it is refused without it).
PRECISIONS: dict[str, Any] = {
    "auto": gettext_lazy("Automatic: bf16 on a GPU that has it, else fp16; fp32 on a CPU"),
    "bf16": gettext_lazy("bf16 (bfloat16)"),
    "fp16": gettext_lazy("fp16 with loss scaling (CUDA only)"),
    "fp32": gettext_lazy("fp32 (no mixed precision)"),
}
ATTENTIONS: dict[str, Any] = {
    "auto": gettext_lazy("Automatic: the model's default (sdpa)"),
    "sdpa": gettext_lazy("PyTorch scaled dot-product attention (sdpa)"),
    "flash_attention_2": gettext_lazy("FlashAttention 2 (CUDA, flash-attn installed)"),
    "eager": gettext_lazy("Eager (plain PyTorch, slowest)"),
}
OPTIMIZERS: dict[str, Any] = {
    "adamw": gettext_lazy("AdamW (fused on CUDA)"),
    "adamw_8bit": gettext_lazy("AdamW 8-bit (bitsandbytes, CUDA only)"),
    "paged_adamw_8bit": gettext_lazy("Paged AdamW 8-bit (bitsandbytes, CUDA only)"),
}
FSDP: dict[str, Any] = {
    "off": gettext_lazy("Off"),
    "full_shard": gettext_lazy("Full shard: weights, gradients and optimiser state split across the GPUs"),
}
BOOLEAN_FIELDS = ("gradient_checkpointing", "packing", "liger", "merge_adapter")
# Methods whose adapter can be merged into the base, and methods that can train on packed rows
# (virtual tokens go before every input, and DPO has its own trainer).
MERGEABLE_METHODS = ("lora", "qlora", "dpo")
PACKABLE_METHODS = ("lora", "qlora", "full")


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
    # GPU settings; their defaults keep the CPU path as it always was.
    precision: str = "auto"
    attention: str = "auto"
    gradient_checkpointing: bool = False
    packing: bool = False
    liger: bool = False
    optimizer: str = "adamw"
    fsdp: str = "off"
    merge_adapter: bool = False

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
            "gradient_checkpointing": True,
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
            "gradient_checkpointing": True,
        },
    ),
    "full_gpu": (
        gettext_lazy(
            "Full fine-tuning on a GPU: bf16, gradient checkpointing (turn FSDP on to shard a large model across "
            "several GPUs)"
        ),
        {
            "method": "full",
            "epochs": 2,
            "max_steps": 0,
            "batch_size": 8,
            "gradient_accumulation": 4,
            "max_seq_length": 2048,
            "learning_rate": 2e-5,
            "lr_scheduler": "cosine",
            "warmup_ratio": 0.03,
            "weight_decay": 0.01,
            "eval_every": 50,
            "early_stopping_patience": 3,
            "precision": "bf16",
            "gradient_checkpointing": True,
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


def cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def bf16_supported() -> bool:
    """Whether this machine computes in bfloat16: the GPU says so; on a CPU, a small product is tried."""
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    try:
        matrix = torch.ones((2, 2), dtype=torch.bfloat16)
        return bool((matrix @ matrix).sum().item() == 8)
    except RuntimeError:
        return False


def package_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def bitsandbytes_available() -> bool:
    return package_available("bitsandbytes")


class _Invalid(ValueError):
    """One field's value that cannot be read; the message is the field's error."""


_TRUE = ("true", "on", "1", "yes")
_FALSE = ("false", "off", "0", "no", "")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    if value is None:
        return False
    raise _Invalid(_("Choose true or false."))


def _number(name: str, value: Any, default: Any) -> float | int:
    number_type = int if isinstance(default, int) and not isinstance(default, bool) else float
    try:
        if isinstance(value, bool) or value is None or value == "":
            raise ValueError
        number = number_type(value)
        if number_type is int and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        raise _Invalid(_("Enter a whole number.") if number_type is int else _("Enter a number.")) from None
    bound = BOUNDS[name]
    if not bound.low <= number <= bound.high:
        raise _Invalid(
            _("Must be between %(low)s and %(high)s.") % {"low": f"{bound.low:g}", "high": f"{bound.high:g}"}
        )
    return number


def _modules(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part.strip() for part in value.replace("\n", ",").split(",")]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(_("Give a list of module names."))
    value = [v.strip() for v in value if v.strip()]
    if not value:
        raise _Invalid(_("Choose at least one module, such as q_proj and v_proj."))
    return value


def _field(name: str, value: Any, default: Any) -> Any:
    """One field's value as the TrainConfig holds it; _Invalid with the field's message."""
    if name in BOUNDS:
        return _number(name, value, default)
    if name == "target_modules":
        return _modules(value)
    if name in BOOLEAN_FIELDS:
        return _boolean(value)
    if name == "fsdp" and isinstance(value, bool):
        return "full_shard" if value else "off"
    return "" if value is None else str(value).strip()


CHOICES: dict[str, Any] = {
    "method": METHODS,
    "lr_scheduler": SCHEDULERS,
    "balance": BALANCE,
    "reasoning": REASONING,
    "precision": PRECISIONS,
    "attention": ATTENTIONS,
    "optimizer": OPTIMIZERS,
    "fsdp": FSDP,
}


def config_clean(data: dict[str, Any], *, preset: str | None = None) -> TrainConfig:
    """A TrainConfig from form or API data (preset values first, then `data` over them);
    ConfigInvalid with one message per bad field. Unknown fields are refused too, and so are the
    GPU settings this machine cannot honour (`gpu_errors`)."""
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
        try:
            values[name] = _field(name, merged.get(name, default), default)
        except _Invalid as error:
            errors[name] = str(error)
    for name, allowed in CHOICES.items():
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
    for name, message in gpu_errors(values).items():
        errors.setdefault(name, message)
    if errors:
        raise ConfigInvalid(errors)
    return TrainConfig(**values)


def gpu_errors(values: dict[str, Any]) -> dict[str, str]:
    """The GPU settings among `values` (already read, choices checked) that this machine cannot
    honour or that do not go with the method: {field: why, and what to choose instead}."""
    errors: dict[str, str] = {}
    method = values.get("method")
    precision = values.get("precision")
    if precision == "fp16" and not cuda_available():
        errors["precision"] = _(
            "fp16 needs a CUDA GPU: CPUs have no fast float16 kernels. Choose auto (fp32 on this machine) or bf16."
        )
    elif precision == "bf16" and not bf16_supported():
        errors["precision"] = _("This machine cannot compute in bf16; choose auto, fp16 (CUDA) or fp32.")
    attention = values.get("attention")
    if attention == "flash_attention_2":
        if not cuda_available():
            errors["attention"] = _("FlashAttention 2 runs on CUDA GPUs only; choose auto or sdpa on this machine.")
        elif not package_available("flash_attn"):
            errors["attention"] = _(
                "FlashAttention 2 needs the flash-attn package, which is not installed; choose sdpa."
            )
    if values.get("packing"):
        if method not in PACKABLE_METHODS:
            errors["packing"] = _(
                "Packing works with LoRA, QLoRA and full fine-tuning only: virtual tokens go before every example, "
                "and DPO trains on pairs."
            )
        elif attention != "flash_attention_2":
            errors["packing"] = _(
                "Packing puts the examples of a batch one after another in one row, and only flash_attention_2 "
                "keeps them apart (by their position ids); with another attention they would attend to each "
                "other. Choose flash_attention_2 as the attention (CUDA), or turn packing off."
            )
    if values.get("liger"):
        if not cuda_available():
            errors["liger"] = _("Liger kernels are Triton kernels for CUDA GPUs; turn them off on this machine.")
        elif not package_available("liger_kernel"):
            errors["liger"] = _("Liger kernels need the liger-kernel package, which is not installed; turn them off.")
    if values.get("optimizer") in ("adamw_8bit", "paged_adamw_8bit"):
        if not cuda_available():
            errors["optimizer"] = _("8-bit AdamW runs on CUDA GPUs only; choose adamw on this machine.")
        elif not bitsandbytes_available():
            errors["optimizer"] = _("8-bit AdamW needs the bitsandbytes package, which is not installed; choose adamw.")
    if values.get("fsdp") == "full_shard":
        if method != "full":
            errors["fsdp"] = _(
                "FSDP shards full fine-tuning across GPUs; an adapter is small enough for plain data parallelism. "
                "Turn FSDP off, or choose full fine-tuning."
            )
        elif cuda_device_count() < 2:
            errors["fsdp"] = _(
                "FSDP splits the model across several CUDA GPUs and this machine has %(count)s; turn it off."
            ) % {"count": cuda_device_count()}
    if values.get("merge_adapter") and method not in MERGEABLE_METHODS:
        errors["merge_adapter"] = _(
            "Only a LoRA adapter (LoRA, QLoRA, DPO) can be merged into the base; full fine-tuning saves the whole "
            "model already, and virtual tokens cannot be merged. Turn it off."
        )
    return errors
