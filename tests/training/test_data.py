"""Label masks, resampling and length-grouped batches (no model needed, only the tokenizer)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.training.conftest import chat
from training.engine.data import (
    IGNORE,
    EncodedExample,
    batch_order,
    batches,
    collate,
    encode,
    encode_all,
    resample,
    steps_per_epoch,
)
from training.engine.interface import TrainExample

END = "<|im_end|>"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from training.engine.modeling import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


def trained_text(tokenizer, encoded: EncodedExample) -> str:
    return tokenizer.decode([label for label in encoded.labels if label != IGNORE])


def test_only_the_assistant_answer_and_its_end_marker_are_trained(tokenizer):
    encoded = encode(tokenizer, TrainExample(messages=chat(3)), 512)
    assert trained_text(tokenizer, encoded) == "3 plus 3 is 6." + END
    # The whole text is the chat template's, the default system prompt included.
    text = tokenizer.apply_chat_template(chat(3), tokenize=False)
    assert tokenizer.decode(encoded.input_ids) == text
    assert "SmolLM" in text
    assert encoded.length == len(encoded.input_ids) == len(encoded.labels)
    # Nothing before the answer is trained: the labels start after the assistant header.
    first = next(index for index, label in enumerate(encoded.labels) if label != IGNORE)
    assert tokenizer.decode(encoded.input_ids[:first]).endswith("<|im_start|>assistant\n")
    # Trained labels are the tokens themselves (the loss shifts them).
    assert all(label in (IGNORE, token) for label, token in zip(encoded.labels, encoded.input_ids, strict=True))


def test_several_turns_and_a_system_prompt(tokenizer):
    messages = [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": "Colour of the sky?"},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "And grass? Say Blue. if unsure"},
        {"role": "assistant", "content": "Green, mostly.\n\n"},
        {"role": "user", "content": "日本語で？"},
        {"role": "assistant", "content": "緑です。"},
    ]
    encoded = encode(tokenizer, TrainExample(messages=messages), 512)
    assert trained_text(tokenizer, encoded) == "Blue." + END + "Green, mostly.\n\n" + END + "緑です。" + END
    text = tokenizer.decode(encoded.input_ids)
    assert "You answer in one word." in text and "SmolLM" not in text  # the given system prompt replaces it
    # Every trained stretch is one assistant answer: three runs of labels.
    runs = sum(
        1
        for index, label in enumerate(encoded.labels)
        if label != IGNORE and (index == 0 or encoded.labels[index - 1] == IGNORE)
    )
    assert runs == 3


def test_a_token_across_the_start_of_an_answer_is_trained(tokenizer):
    # "assistant\n  Green" tokenises the newline with the spaces: that token is trained too,
    # rather than losing the answer's start.
    messages = [{"role": "user", "content": "Grass?"}, {"role": "assistant", "content": "  Green."}]
    text = trained_text(tokenizer, encode(tokenizer, TrainExample(messages=messages), 512))
    assert text.endswith("  Green." + END)
    assert not text[: -len("  Green." + END)].strip()


def test_truncation_cuts_the_end_and_skips_examples_with_nothing_left(tokenizer):
    full = encode(tokenizer, TrainExample(messages=chat(5)), 512)
    answer_start = next(index for index, label in enumerate(full.labels) if label != IGNORE)
    cut = encode(tokenizer, TrainExample(messages=chat(5)), answer_start + 3)
    assert cut.length == answer_start + 3
    assert cut.input_ids == full.input_ids[: answer_start + 3]
    assert "5 plus 5 is 10.".startswith(trained_text(tokenizer, cut))
    assert END not in trained_text(tokenizer, cut)
    # Cut before the answer: nothing to train on.
    assert encode(tokenizer, TrainExample(messages=chat(5)), answer_start) is None
    assert encode(tokenizer, TrainExample(messages=chat(5)), answer_start + 1).trainable_tokens == 1
    examples = [TrainExample(messages=chat(5)), TrainExample(messages=chat(1)[:1]), TrainExample(messages=chat(2))]
    encoded, skipped = encode_all(tokenizer, examples, 512)
    assert (len(encoded), skipped) == (2, 1)  # the conversation without an answer is skipped


def test_weight_travels_with_the_example(tokenizer):
    encoded = encode(tokenizer, TrainExample(messages=chat(2), weight=2.5, label="x"), 512)
    assert encoded.weight == 2.5


def test_a_tokenizer_without_chat_template_trains_answers_and_end_of_sequence(tokenizer):
    import copy

    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    encoded = encode(plain, TrainExample(messages=chat(4)), 512)
    assert trained_text(plain, encoded) == "4 plus 4 is 8." + plain.eos_token


def fake(lengths: list[int]) -> list[EncodedExample]:
    return [EncodedExample(input_ids=[7] * n, labels=[IGNORE] + [7] * (n - 1), weight=1.0, length=n) for n in lengths]


def test_length_grouped_batches_pad_less_than_random_batches():
    rng = random.Random(0)
    lengths = [rng.randint(5, 600) for _ in range(1000)]
    encoded = fake(lengths)
    grouped = batches(encoded, 8, seed=1, epoch=0)
    shuffled = list(range(len(lengths)))
    rng.shuffle(shuffled)
    plain = [collate([encoded[i] for i in shuffled[start : start + 8]]) for start in range(0, len(shuffled), 8)]
    grouped_padding = sum(batch.padding for batch in grouped)
    plain_padding = sum(batch.padding for batch in plain)
    assert grouped_padding * 5 < plain_padding
    # Every example exactly once, every batch padded to its own longest example.
    order = batch_order(lengths, 8, seed=1, epoch=0)
    assert sorted(i for batch in order for i in batch) == list(range(len(lengths)))
    for indices, batch in zip(order, grouped, strict=True):
        assert batch.input_ids.shape == (len(indices), max(lengths[i] for i in indices))
        assert batch.tokens == int(batch.attention_mask.sum()) == sum(lengths[i] for i in indices)
        assert (batch.labels[batch.attention_mask == 0] == IGNORE).all()


def test_batch_order_is_deterministic_per_seed_and_epoch():
    lengths = [random.Random(3).randint(5, 100) for _ in range(200)]
    first = batch_order(lengths, 4, seed=7, epoch=2)
    assert first == batch_order(lengths, 4, seed=7, epoch=2)
    assert first != batch_order(lengths, 4, seed=7, epoch=3)
    assert first != batch_order(lengths, 4, seed=8, epoch=2)
    # Without shuffling (evaluation): sorted by length, longest first.
    flat = [i for batch in batch_order(lengths, 4, seed=7, epoch=2, shuffle=False) for i in batch]
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_steps_per_epoch():
    assert steps_per_epoch(10, 2, 1) == 5
    assert steps_per_epoch(10, 2, 2) == 3  # the last step gathers one micro-batch
    assert steps_per_epoch(0, 2, 2) == 0


def labelled(counts: dict[str | None, int]) -> list[TrainExample]:
    return [TrainExample(messages=chat(i), label=label) for label, count in counts.items() for i in range(count)]


def test_oversample_repeats_rare_labels_up_to_the_most_frequent():
    examples = labelled({"a": 7, "b": 3, "c": 1, None: 2})
    balanced = resample(examples, "oversample", seed=0)
    assert Counter(e.label for e in balanced) == {"a": 7, "b": 7, "c": 7, None: 2}
    assert balanced[: len(examples)] == examples  # the originals first, in order
    # "b" has 3 examples: two whole copies of each, plus one drawn at random.
    copies = Counter(id(e) for e in balanced if e.label == "b")
    assert sorted(copies.values()) == [2, 2, 3]
    assert resample(examples, "oversample", seed=0) == balanced
    assert resample(examples, "oversample", seed=1) != balanced


def test_undersample_keeps_the_count_of_the_rarest_label():
    examples = labelled({"a": 7, "b": 3, None: 2})
    balanced = resample(examples, "undersample", seed=0)
    assert Counter(e.label for e in balanced) == {"a": 3, "b": 3, None: 2}
    assert [examples.index(e) for e in balanced] == sorted(examples.index(e) for e in balanced)
    assert resample(examples, "undersample", seed=0) == balanced


@pytest.mark.parametrize("balance", ["none", "class_weights"])
def test_other_balances_change_nothing(balance):
    examples = labelled({"a": 5, "b": 1})
    assert resample(examples, balance, seed=0) == examples
