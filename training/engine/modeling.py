"""The base model on a device for training, the trainable part per method, and saving.

Plain Python (no Django): the trainer, the DPO trainer, the Huey task and the tests use it.
Finding and loading the base model and its tokenizer is `llm.loading`'s (the embedded
SmolLM2-135M-Instruct, a local folder or a cached Hugging Face id; nothing is downloaded);
this module adds the device, the precision and the quantisation a method trains with.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm.loading import ModelLoadError, inference_placement, load_model, load_tokenizer
from training.engine.config import TrainConfig
from training.engine.gpu import GPUSettingError, apply_liger

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

RUN_FILE = "shikomi_run.json"
MERGED = "merged"  # the folder, inside a run's output, of the base with the adapter merged in
FULL_METHODS = ("full",)
# peft methods that train an adapter of low-rank matrices.
LORA_METHODS = ("lora", "qlora", "dpo")
PROMPT_METHODS = ("prefix", "prompt", "ptuning")


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    dtype: torch.dtype  # the weights' dtype (the base's, for peft methods)
    autocast: torch.dtype | None  # mixed precision for the forward pass, None on CPU
    description: str  # "cpu float32", "cuda:0 NVIDIA H100 80GB HBM3 bf16"


def choose_device(device: str | None = None, *, method: str = "lora", precision: str = "auto") -> DeviceChoice:
    """CUDA with bfloat16 when there is a GPU (float16 autocast on GPUs without bf16), else CPU float32.

    peft methods keep the frozen base in half precision (the adapter is float32); full
    fine-tuning keeps float32 weights for AdamW and runs the forward pass under autocast.
    `precision` (the run's setting) overrides the half precision: "bf16", "fp16" (CUDA only) or
    "fp32" (no autocast); "auto" is the behaviour above. GPUSettingError for one this machine
    cannot honour.
    """
    import torch

    wanted = torch.device(device) if device else None
    if (wanted is None or wanted.type == "cuda") and torch.cuda.is_available():
        target = wanted if wanted is not None and wanted.index is not None else torch.device("cuda", 0)
        if target.index is None:
            target = torch.device("cuda", torch.cuda.current_device())
        half = _cuda_half(precision)
        dtype = torch.float32 if method in FULL_METHODS or half is None else half
        name = torch.cuda.get_device_name(target)
        short = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}[half]
        return DeviceChoice(target, dtype, half, f"{target} {name} {short}")
    if precision == "fp16":
        raise GPUSettingError("fp16 needs a CUDA GPU and this machine has none; choose auto, bf16 or fp32.")
    if wanted is not None and wanted.type not in ("cpu", "cuda"):
        return DeviceChoice(wanted, torch.float32, None, f"{wanted} float32")
    if precision == "bf16":
        # The frozen base in bf16; full fine-tuning keeps float32 weights under bf16 autocast.
        dtype = torch.float32 if method in FULL_METHODS else torch.bfloat16
        return DeviceChoice(torch.device("cpu"), dtype, torch.bfloat16, "cpu bf16")
    return DeviceChoice(torch.device("cpu"), torch.float32, None, "cpu float32")


def _cuda_half(precision: str) -> torch.dtype | None:
    import torch

    bf16 = torch.cuda.is_bf16_supported()
    if precision == "bf16" and not bf16:
        raise GPUSettingError("This GPU cannot compute in bf16; choose auto, fp16 or fp32.")
    if precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    return torch.bfloat16 if bf16 else torch.float16


def _quantisation(choice: DeviceChoice) -> Any:
    import torch

    if choice.device.type != "cuda":
        raise RuntimeError(
            "QLoRA needs a CUDA GPU and this machine has none; choose LoRA, which trains the same adapter "
            "without 4-bit quantisation."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise RuntimeError("QLoRA needs the bitsandbytes package, which is not installed; install it or choose LoRA.")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=choice.autocast or torch.bfloat16,
    )


def load_base(
    base_model: str,
    *,
    method: str,
    device: str | None = None,
    config: TrainConfig | None = None,
    for_inference: bool = False,
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel, str]:
    """The tokenizer, the base model on the chosen device (frozen for peft methods), and a
    description of the device and precision such as "cpu float32".

    `config` (the run's) brings the GPU settings that take effect at loading: the precision,
    the attention implementation and Liger kernels. `for_inference` (evaluation, generation)
    spreads a base over the GPUs (device_map="auto") when there are several or it does not fit
    one; training never does, each process holding its own copy (or its FSDP shard).
    """
    precision = config.precision if config is not None else "auto"
    choice = choose_device(device, method=method, precision=precision)
    options: dict[str, Any] = {}
    if config is not None and config.attention != "auto":
        options["attn_implementation"] = config.attention
    if method == "qlora":
        options["quantization_config"] = _quantisation(choice)
        options["device_map"] = {"": choice.device.index or 0}
    elif for_inference and choice.device.type == "cuda":
        options.update(inference_placement(base_model, choice.dtype))
    tokenizer = load_tokenizer(base_model)
    model = load_model(base_model, dtype=choice.dtype, **options)
    if "device_map" not in options:
        model.to(choice.device)
    if getattr(model.config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if config is not None and config.liger:
        apply_liger(model)
    description = choice.description
    if method == "qlora":
        description += " (4-bit nf4 base)"
    if options.get("device_map") == "auto":
        description += " (spread over the GPUs)"
    return tokenizer, model, description


def _output_names(model: torch.nn.Module) -> set[int]:
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return {id(output)} if output is not None else set()


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """The distinct names of the model's linear layers (q_proj, k_proj, ..., down_proj), in order
    of appearance, without the output layer (lm_head): what LoRA can target."""
    from torch import nn

    skip = _output_names(model)
    names: list[str] = []
    for qualified, module in model.named_modules():
        if not isinstance(module, nn.Linear) or id(module) in skip or not qualified:
            continue
        if any(True for _ in module.children()):
            continue
        name = qualified.rsplit(".", 1)[-1]
        # Layers that peft adds, should this be asked of a model that already carries an adapter.
        if name in ("lm_head", "base_layer") or ".lora_" in f".{qualified}":
            continue
        if name not in names:
            names.append(name)
    return names


def apply_method(model: PreTrainedModel, config: TrainConfig) -> PreTrainedModel:
    """The model to train: a peft model with the method's adapter, or `model` itself with every
    parameter trainable for full fine-tuning. ValueError for an unknown method or LoRA target
    modules that are not in the model (naming them and listing the ones that are)."""
    method = config.method
    checkpointing = bool(getattr(config, "gradient_checkpointing", False))
    if method in FULL_METHODS:
        model.requires_grad_(True)
        if checkpointing:
            enable_checkpointing(model, adapter=False)
        return model
    from peft import (
        LoraConfig,
        PrefixTuningConfig,
        PromptEncoderConfig,
        PromptTuningConfig,
        PromptTuningInit,
        TaskType,
        get_peft_model,
    )

    if method in LORA_METHODS:
        targets: list[str] | str = list(config.target_modules)
        if targets == ["all-linear"]:
            targets = "all-linear"
        else:
            available = linear_module_names(model)
            missing = [name for name in targets if name not in available]
            if missing:
                raise ValueError(
                    f"The target modules {', '.join(missing)} are not in this model; its linear layers are "
                    f"{', '.join(available) or 'none'}."
                )
        if method == "qlora":
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(
                model,
                use_gradient_checkpointing=checkpointing,
                gradient_checkpointing_kwargs={"use_reentrant": False},
            )
        elif checkpointing:
            enable_checkpointing(model, adapter=True)
        peft_config: Any = LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=targets,
            bias="none",
        )
    elif method == "prefix":
        peft_config = PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.num_virtual_tokens)
    elif method == "prompt":
        peft_config = PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=config.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB,
        )
    elif method == "ptuning":
        peft_config = PromptEncoderConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.num_virtual_tokens)
    else:
        raise ValueError(
            f"Unknown training method {method!r}; the methods are lora, qlora, prefix, prompt, ptuning, full."
        )
    if checkpointing and method in PROMPT_METHODS:
        enable_checkpointing(model, adapter=True)
    return get_peft_model(model, peft_config)


def enable_checkpointing(model: PreTrainedModel, *, adapter: bool) -> None:
    """Gradient checkpointing: each decoder layer's activations are recomputed in the backward
    pass instead of kept (less memory, about a third more compute). Non-reentrant, which works
    with frozen weights; for an adapter the input embeddings' output requires a gradient too,
    so that the recomputed layers have something to differentiate."""
    options = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers 5's name; the old one is deprecated
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
    model.config.use_cache = False
    if adapter:
        model.enable_input_require_grads()


def virtual_tokens(model: torch.nn.Module) -> int:
    """How many positions prompt tuning and P-tuning put before the input (their logits come
    first); 0 for other models, prefix tuning included (its prefix lives in the attention cache)."""
    active = getattr(model, "active_peft_config", None)
    if active is None or not getattr(active, "is_prompt_learning", False):
        return 0
    if str(getattr(active, "peft_type", "")).endswith("PREFIX_TUNING"):
        return 0
    return int(active.num_virtual_tokens)


def is_adapter(model: torch.nn.Module) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def trainable_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = total = 0
    for parameter in model.parameters():
        total += parameter.numel()
        if parameter.requires_grad:
            trainable += parameter.numel()
    return trainable, total


def save_trained(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, output_dir: Path, config: TrainConfig
) -> Path:
    """The adapter (peft) or the full weights (safetensors), the tokenizer and `shikomi_run.json`
    (the configuration and base model) in `output_dir`; with `merge_adapter`, also the base with
    the adapter merged in, in `output_dir/merged` (`save_merged`)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    adapter = is_adapter(model)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    run = {
        "kind": "adapter" if adapter else "full",
        "method": config.method,
        "base_model": config.base_model,
        "config": config.as_dict(),
    }
    (output_dir / RUN_FILE).write_text(json.dumps(run, indent=2, ensure_ascii=False), encoding="utf-8")
    if adapter and getattr(config, "merge_adapter", False):
        save_merged(model, tokenizer, output_dir, config)
    return output_dir


def save_merged(model: Any, tokenizer: PreTrainedTokenizerBase, output_dir: Path, config: TrainConfig) -> Path:
    """The base with the LoRA adapter merged into its weights, in `output_dir/merged`: a plain
    transformers model that any server loads without peft, marked as a full model of this run.

    The adapter saved in `output_dir` already: for a 4-bit (QLoRA) base, a fresh unquantised
    copy of the base in the run's half precision takes it (merging into 4-bit weights would round
    the update away); otherwise `model` is merged in place (saving is the last thing a run does
    with it), which needs no second copy of a large base.
    """
    from peft import PeftModel

    output_dir = Path(output_dir)
    target = output_dir / MERGED
    if getattr(model.get_base_model(), "is_loaded_in_4bit", False) or config.method == "qlora":
        choice = choose_device(None, method="lora", precision=config.precision)
        base = load_model(config.base_model, dtype=choice.dtype, **inference_placement(config.base_model, choice.dtype))
        merged = PeftModel.from_pretrained(base, output_dir).merge_and_unload()
    else:
        merged = model.merge_and_unload()
    _drop_gguf_quantizer(merged)
    merged.save_pretrained(target)
    tokenizer.save_pretrained(target)
    run = {
        "kind": "full",
        "merged": True,
        "method": config.method,
        "base_model": config.base_model,
        "config": config.as_dict(),
    }
    (target / RUN_FILE).write_text(json.dumps(run, indent=2, ensure_ascii=False), encoding="utf-8")
    return target


def _drop_gguf_quantizer(model: Any) -> None:
    """A base read from a GGUF file (the embedded SmolLM2) stays marked GGUF-quantised although
    its weights were unpacked into plain float layers; the merged model is saved as what it is."""
    quantizer = getattr(model, "hf_quantizer", None)
    if (
        quantizer is not None
        and type(quantizer).__name__ == "GgufHfQuantizer"
        and not getattr(quantizer, "packed_modules", None)
    ):
        quantizer.remove_quantization_config(model)


def read_run(output_dir: Path) -> dict[str, Any]:
    path = Path(output_dir) / RUN_FILE
    if not path.is_file():
        raise ModelLoadError(f"{output_dir} holds no trained model ({RUN_FILE} is missing).")
    return json.loads(path.read_text(encoding="utf-8"))


def load_trained(output_dir: Path, *, device: str | None = None) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The tokenizer and the trained model (base + adapter, or the full weights), in eval mode,
    ready to generate (padding on the left)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    output_dir = Path(output_dir)
    run = read_run(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    if run.get("kind") == "full":
        choice = choose_device(device, method="lora")
        placement = inference_placement(str(output_dir), choice.dtype) if choice.device.type == "cuda" else {}
        model = AutoModelForCausalLM.from_pretrained(output_dir, dtype=choice.dtype, **placement)
        if not placement:
            model.to(choice.device)
    else:
        from peft import PeftModel

        # A QLoRA adapter works on the unquantised base as well, which needs no GPU.
        _, base, _ = load_base(run.get("base_model", ""), method="lora", device=device, for_inference=True)
        model = PeftModel.from_pretrained(base, output_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.eval()
    return tokenizer, model
