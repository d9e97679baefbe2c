"""The launch form of a training run: every TrainConfig field with its bounds and help.

The form only collects what was typed: numbers stay text here, so that `config_clean`
(through `training_run_create`) judges every field at once and its one message per field
lands on that field. The number inputs still carry min, max and step from BOUNDS, so a
browser can say most of it before the form is sent.

Some settings apply to some methods only (APPLIES_TO). The page shows only the chosen
method's (static/js/training.js); the server reads only the chosen method's too, whatever the
browser sent for the others: those keep the form's initial values (the preset's or the
defaults), so a value left in a hidden field can neither block a launch nor reach the run.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy

from curation.models import Project
from training.engine.config import (
    ATTENTIONS,
    BALANCE,
    BOOLEAN_FIELDS,
    BOUNDS,
    FSDP,
    MERGEABLE_METHODS,
    METHODS,
    OPTIMIZERS,
    PACKABLE_METHODS,
    PRECISIONS,
    PRESETS,
    REASONING,
    SCHEDULERS,
    TrainConfig,
)

DEFAULT_PRESET = "quick_cpu_demo"
# SmolLM2 is a Llama: these are its linear layers. Offered without loading a model in a request.
LLAMA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CONFIG_FIELDS = [f.name for f in fields(TrainConfig)]

# The methods each setting applies to; a setting not named here applies to every method.
ADAPTER_METHODS = ("lora", "qlora", "dpo")
VIRTUAL_TOKEN_METHODS = ("prefix", "prompt", "ptuning")
APPLIES_TO: dict[str, tuple[str, ...]] = {
    "lora_rank": ADAPTER_METHODS,
    "lora_alpha": ADAPTER_METHODS,
    "lora_dropout": ADAPTER_METHODS,
    "target_modules": ADAPTER_METHODS,
    "target_modules_other": ADAPTER_METHODS,
    "num_virtual_tokens": VIRTUAL_TOKEN_METHODS,
    "dpo_beta": ("dpo",),
    # DPO trains on preference pairs, which have no label to balance.
    "balance": tuple(method for method in METHODS if method != "dpo"),
    "packing": PACKABLE_METHODS,
    "merge_adapter": MERGEABLE_METHODS,
    "fsdp": ("full",),
}

FIELD_LABELS: dict[str, Any] = {
    "method": gettext_lazy("Method"),
    "base_model": gettext_lazy("Base model"),
    "lora_rank": gettext_lazy("LoRA rank"),
    "lora_alpha": gettext_lazy("LoRA alpha"),
    "lora_dropout": gettext_lazy("LoRA dropout"),
    "target_modules": gettext_lazy("Target modules"),
    "num_virtual_tokens": gettext_lazy("Virtual tokens"),
    "learning_rate": gettext_lazy("Learning rate"),
    "lr_scheduler": gettext_lazy("Learning rate schedule"),
    "warmup_ratio": gettext_lazy("Warm-up share"),
    "batch_size": gettext_lazy("Batch size"),
    "gradient_accumulation": gettext_lazy("Gradient accumulation"),
    "epochs": gettext_lazy("Epochs"),
    "max_steps": gettext_lazy("Maximum steps"),
    "max_seq_length": gettext_lazy("Sequence length"),
    "weight_decay": gettext_lazy("Weight decay"),
    "max_grad_norm": gettext_lazy("Gradient clipping"),
    "eval_every": gettext_lazy("Evaluate every"),
    "early_stopping_patience": gettext_lazy("Early stopping patience"),
    "early_stopping_threshold": gettext_lazy("Early stopping threshold"),
    "save_every": gettext_lazy("Checkpoint every"),
    "seed": gettext_lazy("Seed"),
    "balance": gettext_lazy("Class balance"),
    "dpo_beta": gettext_lazy("DPO beta"),
    "reasoning": gettext_lazy("Reasoning"),
    "precision": gettext_lazy("Precision"),
    "attention": gettext_lazy("Attention"),
    "gradient_checkpointing": gettext_lazy("Gradient checkpointing"),
    "packing": gettext_lazy("Packing (padding-free)"),
    "liger": gettext_lazy("Liger kernels"),
    "optimizer": gettext_lazy("Optimiser"),
    "fsdp": gettext_lazy("FSDP across GPUs"),
    "merge_adapter": gettext_lazy("Also save the merged model"),
}
# Help for the fields that have no numeric bounds (those have theirs in BOUNDS).
FIELD_HELP: dict[str, Any] = {
    "method": gettext_lazy(
        "LoRA trains a small adapter; QLoRA does the same on a 4-bit base (CUDA only); prefix, prompt and "
        "P-tuning train virtual tokens; full fine-tuning changes every weight; DPO trains an adapter on "
        "preference pairs."
    ),
    "base_model": gettext_lazy(
        "Empty: the embedded SmolLM2-135M-Instruct. Otherwise a model folder on this server, or a Hugging Face "
        "id already downloaded here (nothing is downloaded)."
    ),
    "target_modules": gettext_lazy("LoRA, QLoRA and DPO: the linear layers that get an adapter."),
    "lr_scheduler": gettext_lazy("How the learning rate changes after the warm-up."),
    "balance": gettext_lazy("How labels of unequal size are evened out for training (classification)."),
    "reasoning": gettext_lazy(
        "The reasoning of assistant turns: trained on; shown to the model with no loss; or removed from every "
        "turn but the last, which is trained on."
    ),
    "precision": gettext_lazy(
        "What the forward pass computes in. Auto: bf16 on a GPU that has it (else fp16), fp32 on a CPU. fp16 "
        "needs CUDA; bf16 on a CPU only where torch computes in it."
    ),
    "attention": gettext_lazy(
        "The attention kernel. Auto is the model's default (sdpa); flash_attention_2 needs CUDA and the flash-attn "
        "package, and is what packing needs."
    ),
    "gradient_checkpointing": gettext_lazy(
        "Recompute each layer's activations in the backward pass instead of keeping them: far less memory for "
        "long sequences and large models, about a third more compute."
    ),
    "packing": gettext_lazy(
        "Put a batch's examples one after another in one row, with no padding. Needs flash_attention_2 (CUDA): "
        "with another attention the examples would attend to each other."
    ),
    "liger": gettext_lazy(
        "Liger's Triton kernels for normalisation, rotary embeddings and SwiGLU: less memory, a little faster. "
        "CUDA with the liger-kernel package only."
    ),
    "optimizer": gettext_lazy(
        "AdamW (fused on CUDA), or bitsandbytes' 8-bit AdamW, paged or not, which keeps a quarter of AdamW's "
        "optimiser memory (CUDA only)."
    ),
    "fsdp": gettext_lazy(
        "Full fine-tuning only: split the weights, gradients and optimiser state across several CUDA GPUs "
        "(a 7B-70B model does not fit one)."
    ),
    "merge_adapter": gettext_lazy(
        "LoRA, QLoRA and DPO: besides the adapter, save the base with the adapter merged in (the merged/ folder), "
        "a plain model any server loads without peft."
    ),
}
SCHEDULER_LABELS: dict[str, Any] = {
    "constant": gettext_lazy("Constant"),
    "linear": gettext_lazy("Linear decay"),
    "cosine": gettext_lazy("Cosine decay"),
}


def balance_choices() -> list[tuple[str, Any]]:
    """The project's own labels for the balance strategies, in BALANCE's order."""
    labels = dict(Project._meta.get_field("balance_strategy").choices)
    return [(key, labels.get(key, key)) for key in BALANCE]


def applies(name: str, method: str) -> bool:
    """Whether the setting `name` does anything for a run of `method`."""
    return name not in APPLIES_TO or method in APPLIES_TO[name]


def field_help(name: str) -> Any:
    return BOUNDS[name].help if name in BOUNDS else FIELD_HELP.get(name, "")


def initial_config(project: Project, preset: str | None) -> dict[str, Any]:
    """What the form starts with: the defaults, the project's base model and balance, then the preset."""
    values = TrainConfig().as_dict()
    values["base_model"] = project.base_model
    values["balance"] = project.balance_strategy
    if preset in PRESETS:
        values.update(PRESETS[preset][1])
    return values


def _is_int(name: str) -> bool:
    default = getattr(TrainConfig(), name)
    return isinstance(default, int) and not isinstance(default, bool)


class RunForm(forms.Form):
    preset = forms.ChoiceField(
        label=gettext_lazy("Preset"),
        required=False,
        choices=[("", "—"), *[(key, label) for key, (label, _values) in PRESETS.items()]],
        widget=forms.HiddenInput,
    )
    method = forms.ChoiceField(
        label=FIELD_LABELS["method"], choices=list(METHODS.items()), help_text=FIELD_HELP["method"]
    )
    base_model = forms.CharField(
        label=FIELD_LABELS["base_model"],
        required=False,
        max_length=300,
        help_text=FIELD_HELP["base_model"],
        widget=forms.TextInput(attrs={"placeholder": "SmolLM2-135M-Instruct", "size": 50}),
    )
    target_modules = forms.MultipleChoiceField(
        label=FIELD_LABELS["target_modules"],
        required=False,
        choices=[(name, name) for name in LLAMA_MODULES],
        widget=forms.CheckboxSelectMultiple,
        help_text=FIELD_HELP["target_modules"],
    )
    target_modules_other = forms.CharField(
        label=gettext_lazy("Other target modules"),
        required=False,
        help_text=gettext_lazy("For other architectures: module names separated by commas, such as c_attn."),
    )
    lr_scheduler = forms.ChoiceField(
        label=FIELD_LABELS["lr_scheduler"],
        choices=[(key, SCHEDULER_LABELS.get(key, key)) for key in SCHEDULERS],
        help_text=FIELD_HELP["lr_scheduler"],
    )
    balance = forms.ChoiceField(label=FIELD_LABELS["balance"], choices=balance_choices, help_text=FIELD_HELP["balance"])
    reasoning = forms.ChoiceField(
        label=FIELD_LABELS["reasoning"], choices=list(REASONING.items()), help_text=FIELD_HELP["reasoning"]
    )
    precision = forms.ChoiceField(
        label=FIELD_LABELS["precision"], choices=list(PRECISIONS.items()), help_text=FIELD_HELP["precision"]
    )
    attention = forms.ChoiceField(
        label=FIELD_LABELS["attention"], choices=list(ATTENTIONS.items()), help_text=FIELD_HELP["attention"]
    )
    optimizer = forms.ChoiceField(
        label=FIELD_LABELS["optimizer"], choices=list(OPTIMIZERS.items()), help_text=FIELD_HELP["optimizer"]
    )
    fsdp = forms.ChoiceField(label=FIELD_LABELS["fsdp"], choices=list(FSDP.items()), help_text=FIELD_HELP["fsdp"])
    approved_only = forms.BooleanField(
        label=gettext_lazy("Use only approved examples"),
        required=False,
        initial=True,
        help_text=gettext_lazy(
            "On: the run trains and validates on approved examples only. Off: also on examples that still need "
            "review (rejected examples and drafts are never used)."
        ),
    )
    override_leakage = forms.BooleanField(
        label=gettext_lazy("Launch despite the leaks between splits"),
        required=False,
        help_text=gettext_lazy("Only when the leakage gate blocks the launch. Who, when and why is kept on the run."),
    )
    override_reason = forms.CharField(
        label=gettext_lazy("Why the leakage is acceptable"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
    )

    def __init__(self, *args: Any, project: Project, preset: str | None = None, **kwargs: Any) -> None:
        values = initial_config(project, preset)
        initial = {name: str(value) if name in BOUNDS else value for name, value in values.items()}
        initial["target_modules"] = [m for m in values["target_modules"] if m in LLAMA_MODULES]
        initial["target_modules_other"] = ", ".join(m for m in values["target_modules"] if m not in LLAMA_MODULES)
        initial["preset"] = preset if preset in PRESETS else ""
        initial["approved_only"] = True  # a new run takes reviewed data unless told otherwise
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        for name in BOOLEAN_FIELDS:
            self.fields[name] = forms.BooleanField(label=FIELD_LABELS[name], required=False, help_text=FIELD_HELP[name])
        for name in BOUNDS:
            bound = BOUNDS[name]
            attrs = {
                "min": str(bound.low),
                "max": str(bound.high),
                "step": "1" if _is_int(name) else "any",
            }
            # Text, not a number field: config_clean gives the one message per field.
            self.fields[name] = forms.CharField(
                label=FIELD_LABELS[name],
                required=False,
                help_text=bound.help,
                widget=forms.NumberInput(attrs=attrs),
            )

    def full_clean(self) -> None:
        """Clean only the chosen method's settings: the others are disabled while cleaning, so
        Django takes their initial values instead of what was sent (a hidden field's leftover
        cannot fail the form nor reach the run), then enabled again for the page."""
        method = self.data.get("method") if self.is_bound else None
        ignored = [name for name in APPLIES_TO if method in METHODS and not applies(name, method)]
        for name in ignored:
            self.fields[name].disabled = True
        try:
            super().full_clean()
        finally:
            for name in ignored:
                self.fields[name].disabled = False

    def config(self) -> dict[str, Any]:
        """The cleaned form as the `config` of `training_run_create`: every TrainConfig field."""
        d = self.cleaned_data
        others = [part.strip() for part in d.get("target_modules_other", "").replace("\n", ",").split(",")]
        config = {name: d.get(name, "") for name in CONFIG_FIELDS if name != "target_modules"}
        config["target_modules"] = [*d.get("target_modules", []), *[name for name in others if name]]
        return config

    def groups(self) -> list[tuple[Any, str, list[tuple[forms.BoundField, str]]]]:
        """The fields as the page shows them, in sections: (title, methods, [(field, methods)]),
        methods being the space-separated methods a section or field applies to ("" for every
        method; a field's is "" when it is its section's)."""
        sections = [
            (gettext_lazy("Method and model"), ["method", "base_model"]),
            (
                gettext_lazy("Adapter (LoRA, QLoRA, DPO)"),
                [
                    "lora_rank",
                    "lora_alpha",
                    "lora_dropout",
                    "target_modules",
                    "target_modules_other",
                    # Not a GPU setting: what is saved, for a method with an adapter.
                    "merge_adapter",
                ],
            ),
            (gettext_lazy("Virtual tokens (prefix, prompt and P-tuning)"), ["num_virtual_tokens"]),
            (gettext_lazy("DPO"), ["dpo_beta"]),
            (
                gettext_lazy("Optimiser"),
                [
                    "learning_rate",
                    "lr_scheduler",
                    "warmup_ratio",
                    "batch_size",
                    "gradient_accumulation",
                    "weight_decay",
                    "max_grad_norm",
                ],
            ),
            (gettext_lazy("How long"), ["epochs", "max_steps", "max_seq_length"]),
            (
                gettext_lazy("Evaluation and checkpoints"),
                ["eval_every", "early_stopping_patience", "early_stopping_threshold", "save_every"],
            ),
            (gettext_lazy("Data"), ["balance", "reasoning", "seed"]),
            (
                gettext_lazy("GPU"),
                [
                    "precision",
                    "attention",
                    "gradient_checkpointing",
                    "packing",
                    "liger",
                    "optimizer",
                    "fsdp",
                ],
            ),
        ]
        groups = []
        for title, names in sections:
            methods = {" ".join(APPLIES_TO.get(name, ())) for name in names}
            shared = methods.pop() if len(methods) == 1 else ""
            rows = [(self[name], "" if shared else " ".join(APPLIES_TO.get(name, ()))) for name in names]
            groups.append((title, shared, rows))
        return groups
