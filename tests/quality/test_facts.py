from __future__ import annotations

from curation.quality.facts import FactSummary, brings_new_facts, fact_tokens, new_facts, summarise


def chat(prompt: str, answer: str, *, system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system is not None else []
    return messages + [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


POLITE_REWRITE = chat(
    "Rewrite politely: tell Mr Tanaka the refund of $45.20 for order A-10234 goes out on May 3, 2024.",
    "Dear Mr. Tanaka, we are pleased to let you know that your refund of $45.20 for order A-10234 "
    "will be sent on May 3.",
)
JSON_EXTRACTION = chat(
    "Extract name, city and date as JSON: Hanako Yamada moved to Osaka on 1 April 2023.",
    '{"name": "Hanako Yamada", "city": "Osaka", "date": "2023-04-01"}',
)
TRIVIA = chat("Who founded Sony?", "Masaru Ibuka and Akio Morita founded Sony in 1946.")
JAPANESE_REWRITE = chat(
    "次の文を丁寧に書き直してください：田中さん、注文番号10234の返金は５月３日に送ります。",
    "田中様、ご注文番号10234の返金は5月3日にお送りいたします。",
)
JAPANESE_TRIVIA = chat(
    "ソニーを創業したのは誰ですか？",
    "ソニーは1946年5月7日に井深大氏と盛田昭夫氏が東京で創業しました。",
)


# Fact tokens


def test_numbers_are_facts_but_list_numbering_and_small_counts_are_not() -> None:
    text = "1. Preheat the oven.\n2. Bake 3 trays at 180 °C for 12.5 minutes; it costs 1,250 yen (30% off)."

    assert fact_tokens(text) == {"180°c", "12.5minutes", "1250yen", "30%"}


def test_dates_in_any_spelling_become_iso_dates() -> None:
    spellings = ["2024-05-01", "2024/5/1", "May 1, 2024", "1 May 2024", "2024年5月1日", "令和6年5月1日"]

    assert [fact_tokens(spelling) for spelling in spellings] == [{"2024-05-01"}] * len(spellings)
    assert fact_tokens("令和元年") == {"2019"}
    assert fact_tokens("Shipped in March 2023.") == {"2023-03"}


def test_names_inside_a_sentence_are_facts() -> None:
    assert fact_tokens("Masaru Ibuka and Akio Morita founded Sony's first plant.") == {
        "masaru ibuka",
        "akio morita",
        "sony",
    }


def test_a_single_capitalised_word_opening_a_sentence_is_not_a_fact() -> None:
    assert fact_tokens("Thanks for waiting. Everything is fine. Please try again.") == set()
    assert fact_tokens("The Tokyo office is open.") == {"tokyo"}


def test_titles_are_left_out_of_names() -> None:
    assert fact_tokens("Please call Dr. Suzuki.") == fact_tokens("Please call Suzuki.") == {"suzuki"}


def test_urls_and_email_addresses_are_facts() -> None:
    text = "See https://example.com/help?id=7. Or write to support@example.co.jp"

    assert fact_tokens(text) == {"https://example.com/help?id=7", "support@example.co.jp"}


def test_japanese_names_are_katakana_words_and_kanji_before_a_suffix() -> None:
    text = "東京都の本社で、株式会社ソニーの田中さんと東京大学のスミス先生が話します。"

    assert fact_tokens(text) == {"東京都", "ソニー", "田中", "東京大学", "スミス"}


def test_full_width_digits_are_read_as_digits() -> None:
    assert fact_tokens("￥２，０００") == fact_tokens("¥2,000") == {"¥2000"}


# New facts


def test_a_polite_rewrite_brings_no_new_facts() -> None:
    assert new_facts(POLITE_REWRITE) == []
    assert not brings_new_facts(POLITE_REWRITE)


def test_json_extraction_from_the_prompt_brings_no_new_facts() -> None:
    assert new_facts(JSON_EXTRACTION) == []
    assert not brings_new_facts(JSON_EXTRACTION)


def test_trivia_answers_bring_new_facts() -> None:
    assert new_facts(TRIVIA) == ["1946", "akio morita", "masaru ibuka"]
    assert brings_new_facts(TRIVIA)


def test_a_japanese_rewrite_brings_no_new_facts() -> None:
    assert new_facts(JAPANESE_REWRITE) == []
    assert not brings_new_facts(JAPANESE_REWRITE)


def test_japanese_trivia_brings_new_facts() -> None:
    assert new_facts(JAPANESE_TRIVIA) == ["1946-05-07", "井深大", "盛田昭夫"]
    assert brings_new_facts(JAPANESE_TRIVIA)


def test_numbers_in_the_prompt_are_not_new() -> None:
    messages = chat("Order 10234 costs 1,250 yen and weighs 3.5 kg.", "Your order 10234 costs 1250 yen; 3.5kg.")

    assert new_facts(messages) == []


def test_the_system_prompt_counts_as_prompt() -> None:
    messages = chat("Who runs the shop?", "Akio Morita runs it, with Masaru Ibuka.", system="Staff: Akio Morita.")

    assert new_facts(messages) == ["masaru ibuka"]


def test_one_new_fact_is_not_enough() -> None:
    messages = chat("When was Sony founded?", "Sony was founded in 1946.")

    assert new_facts(messages) == ["1946"]
    assert not brings_new_facts(messages)
    assert brings_new_facts(messages, min_new=1)


def test_new_facts_must_be_at_least_half_of_the_answers_facts() -> None:
    prompt = "Summarise: Hanako Yamada, Taro Suzuki and Ken Sato met Yui Ito in Osaka on 2024-05-01."
    answer = "Hanako Yamada, Taro Suzuki, Ken Sato and Yui Ito met on 2024-05-01; Akio Morita and Masaru Ibuka joined."

    assert new_facts(chat(prompt, answer)) == ["akio morita", "masaru ibuka"]
    assert not brings_new_facts(chat(prompt, answer))


def test_an_answer_without_facts_brings_none() -> None:
    assert new_facts(chat("Say hello.", "Hello! How can I help you today?")) == []


# Summary


def test_the_summary_counts_examples_that_bring_new_facts() -> None:
    conversations = [POLITE_REWRITE, TRIVIA, JSON_EXTRACTION, JAPANESE_TRIVIA, JAPANESE_REWRITE, []]

    summary = summarise(conversations)

    assert summary == FactSummary(
        examples=6,
        with_new_facts=2,
        share=2 / 6,
        samples=[(1, ["1946", "akio morita", "masaru ibuka"]), (3, ["1946-05-07", "井深大", "盛田昭夫"])],
    )


def test_the_summary_keeps_at_most_ten_samples() -> None:
    summary = summarise([TRIVIA] * 12)

    assert (summary.with_new_facts, summary.share) == (12, 1.0)
    assert [index for index, _facts in summary.samples] == list(range(10))


def test_an_empty_project_has_no_share() -> None:
    assert summarise([]) == FactSummary(examples=0, with_new_facts=0, share=0.0, samples=[])


def test_a_number_inside_a_longer_one_of_the_prompt_is_still_new() -> None:
    messages = chat("What happened in 1946?", "Sony was founded with 46 staff and 190,000 yen.")

    assert new_facts(messages) == ["190000yen", "46"]
