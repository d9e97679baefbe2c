"""Tiny models for the trainer tests (other training tests import `chat` and use `tiny_model_dir`).

`tiny_model_dir` is a randomly initialised two-layer Llama with the embedded SmolLM2 tokenizer
(its chat template and vocabulary), saved once per test session: it trains a step in
milliseconds, while the tokens, the template and the label masks are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def chat(i: int) -> list[dict[str, str]]:
    """A small conversation, a little longer for larger `i`, for `TrainExample(messages=chat(i))`."""
    words = " ".join(["very"] * (i % 7))
    return [
        {"role": "user", "content": f"What is {i} plus {i}? Answer {words} briefly."},
        {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
    ]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.modeling import load_tokenizer

    tokenizer = load_tokenizer("")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and on a busy two-core machine the threads wait
    on each other (a 32-wide matrix product then takes milliseconds): one thread, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
