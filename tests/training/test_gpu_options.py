"""The GPU settings of a run: validated once with one message per field, refused on a machine
that cannot honour them (this one has no CUDA; a CUDA machine is mocked where the test is about
what one accepts), and wired into loading, the method, the batches, the optimiser and saving."""

from __future__ import annotations

import json

import pytest
import torch

from training.engine import config as config_module
from training.engine.config import PRESETS, ConfigInvalid, TrainConfig, config_clean
from training.engine.data import IGNORE, EncodedExample, collate
from training.engine.gpu import (
    GPUSettingError,
    check_packing,
    describe_precision,
    fsdp_plugin,
    make_optimizer,
    peak_memory,
)
from training.engine.modeling import MERGED, RUN_FILE, apply_method, choose_device, load_base, save_trained

pytestmark = pytest.mark.usefixtures("one_thread")


def checkpointing(model) -> bool:
    """Whether the model recomputes activations (transformers 5 renamed the property)."""
    if hasattr(type(model), "is_activation_checkpointing"):
        return bool(model.is_activation_checkpointing)
    return bool(model.is_gradient_checkpointing)


@pytest.fixture
def no_cuda(monkeypatch):
    """This machine as a CPU-only one, whatever it really is."""
    monkeypatch.setattr(config_module, "cuda_available", lambda: False)
    monkeypatch.setattr(config_module, "cuda_device_count", lambda: 0)


@pytest.fixture
def cuda_machine(monkeypatch):
    """A machine with two bf16 GPUs and every optional package installed."""
    monkeypatch.setattr(config_module, "cuda_available", lambda: True)
    monkeypatch.setattr(config_module, "cuda_device_count", lambda: 2)
    monkeypatch.setattr(config_module, "bf16_supported", lambda: True)
    monkeypatch.setattr(config_module, "package_available", lambda name: True)
    monkeypatch.setattr(config_module, "bitsandbytes_available", lambda: True)


def refused(data: dict, **kwargs) -> dict[str, str]:
    with pytest.raises(ConfigInvalid) as caught:
        config_clean(data, **kwargs)
    return caught.value.errors


# --- validation ------------------------------------------------------------------------------


def test_defaults_keep_the_cpu_path_as_it_was(no_cuda):
    config = config_clean({})
    assert (config.precision, config.attention, config.optimizer, config.fsdp) == ("auto", "auto", "adamw", "off")
    assert not (config.gradient_checkpointing or config.packing or config.liger or config.merge_adapter)
    choice = choose_device(None, method="lora", precision=config.precision)
    assert (choice.device.type, choice.dtype, choice.autocast, choice.description) == (
        "cpu",
        torch.float32,
        None,
        "cpu float32",
    )


@pytest.mark.parametrize("name", ["precision", "attention", "optimizer", "fsdp"])
def test_a_choice_outside_the_list_is_refused_with_the_list(no_cuda, name):
    errors = refused({name: "turbo"})
    assert list(errors) == [name]
    assert errors[name].startswith("Choose one of ")


@pytest.mark.parametrize("name", ["gradient_checkpointing", "packing", "liger", "merge_adapter"])
def test_a_switch_takes_true_or_false_only(no_cuda, name):
    assert refused({name: "maybe"}) == {name: "Choose true or false."}
    assert getattr(config_clean({name: "off"}), name) is False


def test_switches_read_form_and_json_values():
    assert config_clean({"gradient_checkpointing": "on", "merge_adapter": True}).gradient_checkpointing is True
    assert config_clean({"gradient_checkpointing": "false"}).gradient_checkpointing is False


def test_each_gpu_setting_is_refused_on_a_machine_without_cuda(no_cuda):
    errors = refused(
        {
            "precision": "fp16",
            "attention": "flash_attention_2",
            "liger": True,
            "optimizer": "paged_adamw_8bit",
        }
    )
    assert "fp16 needs a CUDA GPU" in errors["precision"]
    assert "CUDA GPUs only" in errors["attention"]
    assert "CUDA GPUs" in errors["liger"]
    assert "8-bit AdamW runs on CUDA GPUs only" in errors["optimizer"]
    assert "this machine has 0" in refused({"method": "full", "fsdp": "full_shard"})["fsdp"]


def test_packing_without_flash_attention_is_refused_saying_why(no_cuda):
    message = refused({"packing": True, "attention": "sdpa"})["packing"]
    assert "flash_attention_2" in message and "attend to each other" in message


def test_settings_that_do_not_go_with_the_method_are_refused_even_on_a_gpu(cuda_machine):
    assert "LoRA, QLoRA and full fine-tuning only" in refused({"method": "prefix", "packing": True})["packing"]
    assert "FSDP shards full fine-tuning" in refused({"method": "lora", "fsdp": "full_shard"})["fsdp"]
    for method in ("full", "prompt"):
        assert "Only a LoRA adapter" in refused({"method": method, "merge_adapter": True})["merge_adapter"]


def test_a_cuda_machine_with_the_packages_accepts_every_setting(cuda_machine):
    config = config_clean(
        {
            "method": "full",
            "precision": "fp16",
            "attention": "flash_attention_2",
            "packing": True,
            "liger": True,
            "optimizer": "adamw_8bit",
            "fsdp": True,
            "gradient_checkpointing": True,
        }
    )
    assert (config.fsdp, config.packing, config.optimizer) == ("full_shard", True, "adamw_8bit")
    assert config_clean({"method": "qlora", "merge_adapter": True}).merge_adapter


def test_a_cuda_machine_without_a_package_names_it(cuda_machine, monkeypatch):
    monkeypatch.setattr(config_module, "package_available", lambda name: False)
    monkeypatch.setattr(config_module, "bitsandbytes_available", lambda: False)
    errors = refused({"attention": "flash_attention_2", "liger": True, "optimizer": "adamw_8bit"})
    assert "flash-attn package" in errors["attention"]
    assert "liger-kernel package" in errors["liger"]
    assert "bitsandbytes package" in errors["optimizer"]


def test_bf16_is_allowed_on_a_cpu_only_where_torch_computes_in_it(no_cuda, monkeypatch):
    assert config_clean({"precision": "bf16"}).precision == "bf16"
    monkeypatch.setattr(config_module, "bf16_supported", lambda: False)
    assert "cannot compute in bf16" in refused({"precision": "bf16"})["precision"]


def test_presets_check_gradients_and_still_validate_here(no_cuda):
    assert PRESETS["lora_standard"][1]["gradient_checkpointing"] is True
    assert PRESETS["qlora_gpu"][1]["gradient_checkpointing"] is True
    full = config_clean({}, preset="full_gpu")
    assert (full.method, full.precision, full.gradient_checkpointing) == ("full", "bf16", True)


def test_a_config_saved_before_the_gpu_settings_still_loads():
    saved = TrainConfig().as_dict()
    for name in ("precision", "attention", "gradient_checkpointing", "packing", "liger", "optimizer"):
        saved.pop(name)
    saved.pop("fsdp")
    saved.pop("merge_adapter")
    config = TrainConfig(**json.loads(json.dumps(saved)))
    assert (config.precision, config.fsdp, config.merge_adapter) == ("auto", "off", False)


# --- device and precision --------------------------------------------------------------------


def test_precision_on_a_cpu():
    lora = choose_device("cpu", method="lora", precision="bf16")
    full = choose_device("cpu", method="full", precision="bf16")
    assert (lora.dtype, lora.autocast, full.dtype, full.autocast) == (
        torch.bfloat16,
        torch.bfloat16,
        torch.float32,
        torch.bfloat16,
    )
    assert choose_device("cpu", method="lora", precision="fp32").dtype == torch.float32
    with pytest.raises(GPUSettingError, match="fp16 needs a CUDA GPU"):
        choose_device("cpu", method="lora", precision="fp16")
    assert describe_precision(TrainConfig(), lora.autocast, lora.dtype) == "bf16 autocast, frozen base in bf16"
    assert describe_precision(TrainConfig(method="full"), None, torch.float32) == "fp32 weights"


# --- loading and the method ------------------------------------------------------------------


def test_attention_and_gradient_checkpointing_reach_the_model(tiny_model_dir):
    config = TrainConfig(base_model=str(tiny_model_dir), attention="eager", gradient_checkpointing=True)
    _, model, description = load_base(config.base_model, method="lora", device="cpu", config=config)
    assert model.config._attn_implementation == "eager"
    assert description == "cpu float32"
    tuned = apply_method(model, config)
    tuned.train()
    assert checkpointing(tuned.get_base_model())
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    tuned(input_ids=ids, labels=ids).loss.backward()
    grads = [p.grad for n, p in tuned.named_parameters() if "lora_A" in n]
    assert grads and all(g is not None for g in grads)


def test_without_the_settings_nothing_changes(tiny_model_dir):
    config = TrainConfig(base_model=str(tiny_model_dir), method="full")
    _, model, _ = load_base(config.base_model, method="full", device="cpu", config=config)
    assert model.config._attn_implementation == "sdpa"
    assert not checkpointing(apply_method(model, config))
    assert checkpointing(apply_method(model, TrainConfig(method="full", gradient_checkpointing=True)))


# --- packing ---------------------------------------------------------------------------------


def _item(ids: list[int], labels: list[int], weight: float = 1.0) -> EncodedExample:
    return EncodedExample(input_ids=ids, labels=labels, weight=weight, length=len(ids))


def test_packed_collate_restarts_positions_and_masks_each_boundary():
    first = _item([5, 6, 7], [IGNORE, 6, 7], weight=2.0)
    second = _item([8, 9], [8, 9])
    batch = collate([first, second], packed=True)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 0, 1]]
    # Token 7 (the end of the first example) must not be trained to predict 8.
    assert batch.labels.tolist() == [[IGNORE, 6, 7, IGNORE, 9]]
    assert batch.weights.tolist() == [[2.0, 2.0, 2.0, 1.0, 1.0]]
    assert (batch.tokens, batch.padding, batch.trainable_tokens) == (5, 0, 3)
    assert collate([first, second]).position_ids is None


def test_a_packed_forward_without_flash_attention_is_refused(tiny_model_dir):
    config = TrainConfig(base_model=str(tiny_model_dir), attention="eager")
    _, model, _ = load_base(config.base_model, method="lora", device="cpu", config=config)
    with pytest.raises(GPUSettingError, match="attend to each other"):
        check_packing(model)
    model.config._attn_implementation = "flash_attention_2"  # what a CUDA machine with flash-attn loads
    check_packing(model)


# --- optimiser, FSDP, memory -----------------------------------------------------------------


def test_the_optimizer_factory():
    weight = torch.nn.Parameter(torch.ones(2, 2))
    groups = [{"params": [weight], "weight_decay": 0.0}]
    adamw = make_optimizer(groups, TrainConfig(learning_rate=1e-3), torch.device("cpu"))
    assert type(adamw) is torch.optim.AdamW and not adamw.defaults["fused"]
    assert adamw.defaults["lr"] == 1e-3
    with pytest.raises(GPUSettingError, match="CUDA GPUs only"):
        make_optimizer(groups, TrainConfig(optimizer="adamw_8bit"), torch.device("cpu"))
    with pytest.raises(ValueError, match="no trainable parameter"):
        make_optimizer([], TrainConfig(), torch.device("cpu"))


def test_fsdp_plugin_only_when_asked_and_possible():
    assert fsdp_plugin(TrainConfig(method="full")) is None
    if not torch.cuda.is_available():
        with pytest.raises(GPUSettingError, match="several CUDA GPUs"):
            fsdp_plugin(TrainConfig(method="full", fsdp="full_shard"))


def test_peak_memory_on_a_cpu_is_the_process_peak():
    assert peak_memory(torch.device("cpu")) > 10 * 2**20


# --- the merged model ------------------------------------------------------------------------


def test_the_merged_export_is_a_plain_model_that_answers_like_base_plus_adapter(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    config = TrainConfig(base_model=str(tiny_model_dir), merge_adapter=True)
    tokenizer, model, _ = load_base(config.base_model, method="lora", device="cpu", config=config)
    tuned = apply_method(model, config)
    torch.manual_seed(1)
    for name, parameter in tuned.named_parameters():
        if "lora_B" in name:  # an untrained adapter adds nothing: give it something to merge
            parameter.data.normal_(std=0.5)
    tuned.eval()
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        expected = tuned(input_ids=ids).logits
    save_trained(tuned, tokenizer, tmp_path, config)

    merged_dir = tmp_path / MERGED
    run = json.loads((merged_dir / RUN_FILE).read_text(encoding="utf-8"))
    assert (run["kind"], run["merged"]) == ("full", True)
    assert not (merged_dir / "adapter_config.json").exists()
    assert (tmp_path / "adapter_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-4)


def test_no_merged_folder_unless_asked(tiny_model_dir, tmp_path):
    config = TrainConfig(base_model=str(tiny_model_dir))
    tokenizer, model, _ = load_base(config.base_model, method="lora", device="cpu", config=config)
    save_trained(apply_method(model, config), tokenizer, tmp_path, config)
    assert not (tmp_path / MERGED).exists()
