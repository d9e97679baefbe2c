from __future__ import annotations

import pytest

from curation.quality.lengths import Bin, LengthError, context_length, count_tokens, histogram, load_tokenizer
from llm import loading

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}],
    [
        {"role": "system", "content": "You answer billing questions in one sentence."},
        {"role": "user", "content": "Why was I charged twice in May?"},
        {"role": "assistant", "content": "The second charge of $12.99 is a pending authorisation; it drops off."},
        {"role": "user", "content": "When?"},
        {"role": "assistant", "content": "Within 3 to 5 business days."},
    ],
    [
        {"role": "user", "content": "注文した商品がまだ届きません。注文番号は A-10234 です。"},
        {"role": "assistant", "content": "ご不便をおかけして申し訳ございません。配送状況を確認いたします。"},
    ],
    [
        {"role": "system", "content": "丁寧な日本語で答えてください。"},
        {"role": "user", "content": "パスワードを忘れました"},
        {
            "role": "assistant",
            "content": "ログイン画面の「パスワードをお忘れですか？」から再設定できます。\n\n- 手順1\n- 手順2",
        },
    ],
]


@pytest.fixture(scope="module")
def tokenizer():
    # Parsing the GGUF file takes seconds; every test in the module shares the one tokenizer.
    return load_tokenizer()


def _template_length(tokenizer, conversation) -> int:
    # transformers 5 returns a BatchEncoding here unless asked for a plain list.
    return len(tokenizer.apply_chat_template(conversation, tokenize=True)["input_ids"])


def test_counts_equal_the_chat_template_token_counts(tokenizer) -> None:
    counts = count_tokens(tokenizer, CONVERSATIONS)

    assert counts == [_template_length(tokenizer, conversation) for conversation in CONVERSATIONS]
    assert all(count > 10 for count in counts)


def test_counts_do_not_depend_on_the_batch_size(tokenizer) -> None:
    assert count_tokens(tokenizer, CONVERSATIONS, batch_size=1) == count_tokens(tokenizer, CONVERSATIONS)


def test_a_longer_answer_has_more_tokens(tokenizer) -> None:
    short = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    long = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello. " * 50}]

    short_count, long_count = count_tokens(tokenizer, [short, long])

    assert long_count - short_count >= 50


def test_an_empty_conversation_has_no_tokens(tokenizer) -> None:
    assert count_tokens(tokenizer, [[], CONVERSATIONS[0]]) == [0, _template_length(tokenizer, CONVERSATIONS[0])]
    assert count_tokens(tokenizer, []) == []


def test_a_tokenizer_without_a_chat_template_counts_role_and_content_lines(tokenizer) -> None:
    template = tokenizer.chat_template
    tokenizer.chat_template = None
    try:
        counts = count_tokens(tokenizer, CONVERSATIONS[:1])
    finally:
        tokenizer.chat_template = template

    plain = tokenizer("user: Hi\nassistant: Hello! How can I help?")["input_ids"]
    assert counts == [len(plain)]
    assert counts[0] < _template_length(tokenizer, CONVERSATIONS[0])


def test_the_batch_size_must_be_positive(tokenizer) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        count_tokens(tokenizer, CONVERSATIONS, batch_size=0)


def test_the_tokenizer_is_loaded_once_per_process(tokenizer) -> None:
    assert load_tokenizer() is tokenizer
    assert load_tokenizer("") is tokenizer


def test_the_embedded_model_has_an_8k_context() -> None:
    assert context_length() == 8192


def test_a_missing_model_folder_is_named_in_the_error(tmp_path) -> None:
    missing = str(tmp_path / "no-model-here")

    with pytest.raises(LengthError, match="no-model-here does not exist"):
        load_tokenizer(missing)
    with pytest.raises(LengthError, match="no-model-here does not exist"):
        context_length(missing)


def test_a_folder_without_a_tokenizer_says_what_it_needs(tmp_path) -> None:
    with pytest.raises(LengthError, match="could not be loaded.*tokenizer and config.json"):
        load_tokenizer(str(tmp_path))


def test_a_model_id_outside_the_cache_is_not_downloaded() -> None:
    with pytest.raises(LengthError, match="not in the local Hugging Face cache.*hf download shikomi-test/no-such"):
        load_tokenizer("shikomi-test/no-such-model")
    assert ("tokenizer", "shikomi-test/no-such-model") not in loading._CACHE


def test_a_histogram_counts_every_value_once() -> None:
    counts = [3, 17, 17, 250, 512, 513, 1999]

    bins = histogram(counts)

    assert sum(bin.count for bin in bins) == len(counts)
    assert bins[0].low == 0
    assert bins[-1].high >= max(counts)
    assert all(left.high == right.low for left, right in zip(bins, bins[1:], strict=False))
    assert len(bins) <= 20


def test_histogram_bins_have_a_round_width() -> None:
    bins = histogram(list(range(1, 1000)), bins=10)

    assert {bin.high - bin.low for bin in bins} == {100}
    assert bins[-1].high == 1000


def test_a_limit_inside_the_range_falls_on_a_bin_edge() -> None:
    counts = list(range(0, 9000, 7))

    bins = histogram(counts, limits=[2048, 8192])

    edges = {bin.low for bin in bins} | {bins[-1].high}
    assert {2048, 8192} <= edges
    # A power-of-two width divides both limits, so the bins stay equal.
    assert len({bin.high - bin.low for bin in bins}) == 1


def test_an_awkward_limit_splits_the_bin_it_falls_in() -> None:
    bins = histogram([1, 5, 1000, 1001, 3000], limits=[1234])

    assert any(bin.high == 1234 for bin in bins)
    assert any(bin.low == 1234 for bin in bins)
    assert sum(bin.count for bin in bins) == 5


def test_a_count_equal_to_the_limit_is_in_the_bin_below_it() -> None:
    bins = histogram([100, 512, 513, 600], limits=[512])

    fits = sum(bin.count for bin in bins if bin.high <= 512)
    over = sum(bin.count for bin in bins if bin.low >= 512)
    assert (fits, over) == (2, 2)


def test_a_limit_beyond_the_longest_example_adds_no_edges() -> None:
    assert histogram([10, 20, 30], limits=[8192]) == histogram([10, 20, 30])


def test_no_counts_make_no_bins() -> None:
    assert histogram([]) == []


def test_all_zero_counts_make_one_bin() -> None:
    assert histogram([0, 0]) == [Bin(low=0, high=1, count=2)]
