"""What the GPU settings of a run change in the trainer: the optimiser, the precision it reports,
Liger kernels, packing's attention check, FSDP, and the peak memory a step used.

Plain Python (no Django). `config_clean` (training/engine/config.py) refuses a setting this
machine cannot honour before a run is queued; these functions refuse it again where it takes
effect, for a configuration that was checked on another machine. docs/gpu.md says what each
setting needs and why.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from training.engine.config import TrainConfig

if TYPE_CHECKING:
    import torch

EIGHT_BIT = {"adamw_8bit": "AdamW8bit", "paged_adamw_8bit": "PagedAdamW8bit"}


class GPUSettingError(RuntimeError):
    """A GPU setting this machine cannot honour; the message says why and what to choose."""


def make_optimizer(groups: list[dict[str, Any]], config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """The run's optimiser over the parameter `groups`: torch's AdamW (fused on CUDA), or
    bitsandbytes' 8-bit AdamW, paged or not, which keeps the two moments in 8 bits (a quarter of
    AdamW's optimiser memory) and needs CUDA."""
    import torch

    if not groups:
        raise ValueError(f"The method {config.method!r} left no trainable parameter in the model.")
    choice = getattr(config, "optimizer", "adamw")
    if choice in EIGHT_BIT:
        if device.type != "cuda":
            raise GPUSettingError(f"The optimiser {choice} runs on CUDA GPUs only; choose adamw on this machine.")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise GPUSettingError(f"The optimiser {choice} needs the bitsandbytes package; install it or choose adamw.")
        import bitsandbytes

        return getattr(bitsandbytes.optim, EIGHT_BIT[choice])(groups, lr=config.learning_rate)
    if choice != "adamw":
        raise ValueError(f"Unknown optimiser {choice!r}; choose adamw, adamw_8bit or paged_adamw_8bit.")
    options: dict[str, Any] = {"lr": config.learning_rate}
    if device.type == "cuda":
        options["fused"] = True
    return torch.optim.AdamW(groups, **options)


def reset_peak_memory(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device | None = None) -> int:
    """Bytes: the most CUDA memory torch allocated on `device` since the last reset, or, on a
    CPU, the process's peak resident memory."""
    import torch

    if device is not None and device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    import resource

    # Linux reports kibibytes.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def describe_precision(config: TrainConfig, autocast: torch.dtype | None, weights: torch.dtype) -> str:
    """In words, what a run computes in: "bf16 autocast, frozen base in bf16", "fp32"..."""
    import torch

    names = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}
    stored = names.get(weights, str(weights).removeprefix("torch."))
    if autocast is None:
        return stored if config.method != "full" else f"{stored} weights"
    compute = names.get(autocast, str(autocast))
    kept = "weights in" if config.method == "full" else "frozen base in"
    scaled = ", loss scaling" if autocast == torch.float16 else ""
    return f"{compute} autocast{scaled}, {kept} {stored}"


def apply_liger(model: Any) -> Any:
    """Liger's Triton kernels (RMSNorm, RoPE, SwiGLU) swapped into `model` in place, as
    transformers' Trainer does with `use_liger_kernel`. The fused cross-entropy is left out:
    the trainer computes the loss itself, from the logits of the trained positions only."""
    import torch

    if not torch.cuda.is_available():
        raise GPUSettingError("Liger kernels are Triton kernels for CUDA GPUs; turn them off on this machine.")
    if importlib.util.find_spec("liger_kernel") is None:
        raise GPUSettingError("Liger kernels need the liger-kernel package, which is not installed; turn them off.")
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    _apply_liger_kernel_to_instance(model=base, cross_entropy=False, fused_linear_cross_entropy=False)
    return model


def check_packing(model: Any) -> None:
    """Refuse a forward pass over packed rows unless the model's attention is flash_attention_2,
    which keeps the examples of a row apart by their position ids; with another attention they
    would attend to each other."""
    config = getattr(model, "config", None)
    implementation = getattr(config, "_attn_implementation", None) or getattr(config, "attn_implementation", None)
    if implementation != "flash_attention_2":
        raise GPUSettingError(
            f"Packed rows need flash_attention_2 (the model runs {implementation or 'its default attention'}): "
            "with another attention the examples packed in one row would attend to each other. Choose "
            "flash_attention_2 as the attention, or turn packing off."
        )


def fsdp_plugin(config: TrainConfig) -> Any:
    """The `FullyShardedDataParallelPlugin` of a run with `fsdp="full_shard"`, else None: weights,
    gradients and optimiser state are split across the processes, each decoder layer wrapped
    apart, and the full state gathered on the main process for saving."""
    if getattr(config, "fsdp", "off") != "full_shard":
        return None
    import torch

    if torch.cuda.device_count() < 2:
        raise GPUSettingError("FSDP splits the model across several CUDA GPUs and this machine has fewer than two.")
    from accelerate import FullyShardedDataParallelPlugin

    return FullyShardedDataParallelPlugin(
        sharding_strategy="FULL_SHARD",
        auto_wrap_policy="transformer_based_wrap",
        state_dict_type="FULL_STATE_DICT",
        activation_checkpointing=False,  # the model's own gradient checkpointing does it (modeling.py)
        cpu_ram_efficient_loading=True,
        sync_module_states=True,
        use_orig_params=True,
    )
