"""What the Presidio recognizers add to the patterns (the context a number needs), and that the
analyzer runs offline with only our recognizers."""

from __future__ import annotations

import socket

import pytest

from curation.quality import pii, pii_engine
from curation.quality.pii import detect, redact

# Each pair: the same number without the words that make it personal data, and with them.
# Without them, these were flagged before Presidio (arithmetic in English prose, a calorie range).
NEEDS_CONTEXT = [
    # a My Number passes its check digit once in eleven twelve-digit numbers
    ("my_number", "355909190063 - 746 = 355909189317", "My Number: 355909189317", "355909189317"),
    ("my_number", "売上の合計は123456789018円でした", "マイナンバーは123456789018です", "123456789018"),
    # card numbers run together are Luhn-valid once in ten
    ("credit_card", "The result is: 4212883012996", "Charge card 4212883012996 today", "4212883012996"),
    ("credit_card", "合計5555555555554444件", "カード番号5555555555554444", "5555555555554444"),
    # a bare NNN-NNNN is a postal code only near an address
    ("postal_code", "cut down by 500-1000 calories", "Zip code 500-1000, Japan", "500-1000"),
    ("postal_code", "範囲は150-0001です", "150-0001 東京都渋谷区", "150-0001"),
]


@pytest.mark.parametrize(("kind", "without", "with_context", "found"), NEEDS_CONTEXT)
def test_an_ambiguous_number_needs_its_context(kind: str, without: str, with_context: str, found: str) -> None:
    assert kind not in {f.kind for f in detect(without)}
    assert (kind, found) in [(f.kind, f.text) for f in detect(with_context)]


def test_numbers_printed_in_groups_need_no_context() -> None:
    assert [(f.kind, f.text) for f in detect("paid with 4111 1111 1111 1111 yesterday")] == [
        ("credit_card", "4111 1111 1111 1111")
    ]


def test_an_international_number_must_have_a_length_its_country_allows() -> None:
    assert detect("472547338 +960397912423686") == []  # the Maldives have seven-digit numbers
    assert [(f.kind, f.text) for f in detect("text me on +447935454150 please")] == [("phone", "+447935454150")]


def test_a_title_in_title_case_is_not_someone_giving_their_name() -> None:
    assert detect("the comedy series My Name Is Earl, with Jason Lee") == []
    assert [(f.kind, f.text) for f in detect("Hello, my name is Earl.")] == [("name", "Earl")]


def test_an_office_after_a_title_is_not_a_name() -> None:
    text = "Mr. President, on behalf of Mr. De Gucht, I would like to thank the House."
    assert [(f.kind, f.text) for f in detect(text)] == [("name", "De Gucht")]


def test_two_findings_of_one_kind_stay_two_placeholders() -> None:
    # Presidio's anonymizer would merge same-kind findings with only spaces between them.
    assert redact("a@example.com b@example.com") == ("[EMAIL] [EMAIL]", 2)


def test_it_runs_offline_with_only_its_own_recognizers(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError("this test has no network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    pii_engine.analyzer.cache_clear()
    pii._candidates.cache_clear()
    text = "Mail ops@example.net or see https://www.example.co.uk/a; 昨日、山田太郎が来た。"
    assert [(f.kind, f.text) for f in detect(text)] == [("email", "ops@example.net"), ("name", "山田太郎")]
    analyzer = pii_engine.analyzer()
    recognizers = {r.name for r in analyzer.get_recognizers()}
    assert recognizers == {f"shikomi_{kind}" for kind in pii.PiiKind} | {"shikomi_ginza_name"}
    assert analyzer.nlp_engine.engine_name == "no_op"
