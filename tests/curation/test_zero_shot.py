from __future__ import annotations

import pytest

from curation.rules.zero_shot import MAX_TEXT_CHARS, build_conversation, classify, parse_answer
from llm.interface import GenerationBackend, GenerationError
from llm.local import LocalBackend

LABELS = [("billing", "Invoices, charges and refunds"), ("shipping", "Delivery and parcels")]
NAMES = ["billing", "shipping"]


@pytest.mark.parametrize(
    "output",
    [
        "billing",
        "Billing.",
        "Label: billing",
        "**billing**",
        "  BILLING\n",
        "The label is `billing`.",
        "billing\n\nNot shipping.",
    ],
)
def test_an_answer_naming_one_label_parses(output: str) -> None:
    assert parse_answer(output, NAMES) == "billing"


@pytest.mark.parametrize(
    "output",
    [
        "none",
        "None.",
        "unknown",
        "abstain",
        "",
        "   ",
        "I cannot tell.",
        "billings",
        "rebilling",
        "None of them: billing is wrong",
    ],
)
def test_an_abstention_or_garbage_parses_as_none(output: str) -> None:
    assert parse_answer(output, NAMES) is None


def test_an_answer_naming_two_labels_is_ambiguous() -> None:
    assert parse_answer("billing or shipping", NAMES) is None
    assert parse_answer("Billing, billing!", NAMES) == "billing"


def test_a_label_inside_another_label_matches_only_as_a_whole_word() -> None:
    names = ["ship", "shipping"]

    assert parse_answer("shipping", names) == "shipping"
    assert parse_answer("Ship.", names) == "ship"
    assert parse_answer("ship, not shipping", names) is None
    assert parse_answer("spaceship", names) is None


def test_multi_word_and_japanese_labels_parse() -> None:
    names = ["返品", "請求", "wrong item"]

    assert parse_answer("返品", names) == "返品"
    assert parse_answer("ラベル：返品です。", names) == "返品"
    assert parse_answer("返品と請求", names) is None
    assert parse_answer("Wrong item.", names) == "wrong item"
    assert parse_answer("なし", names) is None


def test_a_label_called_none_is_a_label() -> None:
    assert parse_answer("None", ["none", "spam"]) == "none"


def test_the_prompt_holds_the_labels_the_instruction_and_the_text() -> None:
    system, user = build_conversation("Why was I charged twice?", LABELS, "Classify support emails.")

    assert system["role"] == "system"
    assert user["role"] == "user"
    for expected in ["Classify support emails.", "billing: Invoices, charges and refunds", "shipping", "charged twice"]:
        assert expected in user["content"]
    assert "none" in user["content"]


def test_a_long_text_is_truncated_in_the_prompt() -> None:
    _system, user = build_conversation("x" * 10_000, LABELS)

    assert "x" * MAX_TEXT_CHARS in user["content"]
    assert "x" * (MAX_TEXT_CHARS + 1) not in user["content"]


class KeywordBackend:
    """Answers like a model that spots the word "charged" or "parcel" in the text."""

    name = "fake:keywords"

    def __init__(self) -> None:
        self.calls: list[tuple[list[list[dict[str, str]]], int, float]] = []

    def generate(
        self, conversations: list[list[dict[str, str]]], *, max_new_tokens: int = 64, temperature: float = 0.0
    ) -> list[str]:
        self.calls.append((conversations, max_new_tokens, temperature))
        replies = []
        for conversation in conversations:
            text = conversation[-1]["content"].split("<<<")[1]
            replies.append("Billing." if "charged" in text else "**shipping**" if "parcel" in text else "none")
        return replies


def test_classify_asks_the_backend_once_and_parses_each_answer() -> None:
    backend = KeywordBackend()
    texts = ["I was charged twice.", "My parcel is late.", "Hello!"]

    assert isinstance(backend, GenerationBackend)
    assert classify(texts, LABELS, backend=backend, instruction="Support emails.") == ["billing", "shipping", None]
    [(conversations, max_new_tokens, temperature)] = backend.calls
    assert [
        conversation[-1]["content"].count(text) for conversation, text in zip(conversations, texts, strict=True)
    ] == [1, 1, 1]
    assert all("Support emails." in conversation[-1]["content"] for conversation in conversations)
    assert (max_new_tokens, temperature) == (8, 0.0)


def test_classify_rejects_a_backend_that_skips_answers() -> None:
    class Forgetful(KeywordBackend):
        def generate(self, conversations, **options):  # type: ignore[no-untyped-def]
            return super().generate(conversations, **options)[:-1]

    with pytest.raises(GenerationError, match="answered 1 of 2 texts"):
        classify(["a", "b"], LABELS, backend=Forgetful())


def test_classify_needs_labels_but_not_texts() -> None:
    assert classify([], LABELS, backend=KeywordBackend()) == []
    with pytest.raises(ValueError, match="at least one label"):
        classify(["a"], [], backend=KeywordBackend())


def test_the_embedded_model_answers_through_the_local_backend() -> None:
    backend = LocalBackend(batch_size=8)
    conversations = [
        [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        build_conversation("I was charged twice for my order.", LABELS),
    ]

    first = backend.generate(conversations, max_new_tokens=8)
    loaded = backend.load()
    one_at_a_time = LocalBackend(batch_size=1)
    second = one_at_a_time.generate(conversations, max_new_tokens=8)

    assert len(first) == 2
    assert all(isinstance(reply, str) and reply for reply in first)
    assert "Paris" in first[0]
    # Greedy decoding is deterministic, and left padding in a batch changes no answer.
    assert second == first
    assert one_at_a_time.load()[1] is loaded[1]
    assert backend.name == "local:SmolLM2-135M-Instruct"
