from __future__ import annotations

import copy
import random
import time

import pytest

from curation.quality import pii
from curation.quality.pii import PLACEHOLDERS, Finding, PiiKind, detect, highlight, redact


def full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def my_number(seed: int) -> str:
    """A valid My Number: eleven random digits and the check digit the official algorithm gives."""
    first = "".join(random.Random(seed).choice("0123456789") for _ in range(11))
    return first + str(pii.my_number_check_digit(first))


def wrong_check(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def iban(country: str, bban: str) -> str:
    """An IBAN with the right mod-97 check digits for any BBAN, of any length."""
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def kinds_and_texts(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.text) for f in detect(text)]


MY_NUMBERS = [my_number(seed) for seed in range(5)]

MUST_FLAG = [
    # e-mail
    ("Write to taro.yamada@example.co.jp today.", "email", "taro.yamada@example.co.jp"),
    ("連絡先はtaro.yamada@example.co.jpです", "email", "taro.yamada@example.co.jp"),
    ("メール：hanako+news@mail.example.com。", "email", "hanako+news@mail.example.com"),
    ("全角でｔａｒｏ＠ｅｘａｍｐｌｅ．ｃｏｍまで", "email", "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
    # phone: international
    ("Call +81 90-1234-5678 now", "phone", "+81 90-1234-5678"),
    ("US office: +1 (555) 123-4567.", "phone", "+1 (555) 123-4567"),
    ("London +44 20 7946 0958", "phone", "+44 20 7946 0958"),
    ("London +44 (0)20 7946 0958", "phone", "+44 (0)20 7946 0958"),
    ("電話は+819012345678です", "phone", "+819012345678"),
    # phone: North American
    ("Call (555) 123-4567 after 5pm", "phone", "(555) 123-4567"),
    ("Call 555-123-4567.", "phone", "555-123-4567"),
    ("Toll free 1-800-555-1234", "phone", "1-800-555-1234"),
    # phone: Japanese domestic
    ("携帯は090-1234-5678です", "phone", "090-1234-5678"),
    ("携帯は080 1234 5678まで", "phone", "080 1234 5678"),
    ("携帯は07012345678です", "phone", "07012345678"),
    ("会社03-1234-5678に", "phone", "03-1234-5678"),
    ("大阪06-1234-5678", "phone", "06-1234-5678"),
    ("横浜045-123-4567", "phone", "045-123-4567"),
    ("旭川0166-12-3456", "phone", "0166-12-3456"),
    ("固定0312345678", "phone", "0312345678"),
    ("TEL.03-1234-5678", "phone", "03-1234-5678"),
    ("フリーダイヤル0120-123-456へ", "phone", "0120-123-456"),
    ("電話：０９０－１２３４－５６７８", "phone", "０９０－１２３４－５６７８"),
    ("電話：０９０ー１２３４ー５６７８まで", "phone", "０９０ー１２３４ー５６７８"),
    ("電話03(1234)5678", "phone", "03(1234)5678"),
    # credit card
    ("Visa 4111 1111 1111 1111 expires soon", "credit_card", "4111 1111 1111 1111"),
    ("カード番号は4111-1111-1111-1111です", "credit_card", "4111-1111-1111-1111"),
    ("card 5555555555554444", "credit_card", "5555555555554444"),
    ("Amex 3782 822463 10005", "credit_card", "3782 822463 10005"),
    ("JCB ３５３０ １１１３ ３３３０ ００００", "credit_card", "３５３０ １１１３ ３３３０ ００００"),
    ("card 4111 1111 1111 1111 2024", "credit_card", "4111 1111 1111 1111"),
    # IP addresses
    ("server 192.168.0.1 is down", "ip_address", "192.168.0.1"),
    ("アクセス元は203.0.113.45でした", "ip_address", "203.0.113.45"),
    ("IPv6 2001:db8::8a2e:370:7334 here", "ip_address", "2001:db8::8a2e:370:7334"),
    ("IP:2001:db8::1です", "ip_address", "2001:db8::1"),
    ("mapped ::ffff:192.0.2.1", "ip_address", "::ffff:192.0.2.1"),
    ("fe80::1ff:fe23:4567:890a%eth0", "ip_address", "fe80::1ff:fe23:4567:890a"),
    # IBAN
    ("IBAN DE89 3704 0044 0532 0130 00.", "iban", "DE89 3704 0044 0532 0130 00"),
    ("振込先DE89370400440532013000まで", "iban", "DE89370400440532013000"),
    ("GB82 WEST 1234 5698 7654 32 IN LONDON", "iban", "GB82 WEST 1234 5698 7654 32"),
    ("FR14 2004 1010 0505 0001 3M02 606", "iban", "FR14 2004 1010 0505 0001 3M02 606"),
    ("NL91ABNA0417164300", "iban", "NL91ABNA0417164300"),
    ("ES91 2100 0418 4502 0005 1332", "iban", "ES91 2100 0418 4502 0005 1332"),
    ("IT60 X054 2811 1010 0000 0123 456", "iban", "IT60 X054 2811 1010 0000 0123 456"),
    ("CH93 0076 2011 6238 5295 7", "iban", "CH93 0076 2011 6238 5295 7"),
    # My Number: the Digital Agency's example and numbers made by the algorithm
    ("マイナンバーは123456789018です", "my_number", "123456789018"),
    *[(f"個人番号{n}です", "my_number", n) for n in MY_NUMBERS],
    *[(f"番号 {n[:4]} {n[4:8]} {n[8:]} を", "my_number", f"{n[:4]} {n[4:8]} {n[8:]}") for n in MY_NUMBERS[:2]],
    *[(f"番号{n[:4]}-{n[4:8]}-{n[8:]}を", "my_number", f"{n[:4]}-{n[4:8]}-{n[8:]}") for n in MY_NUMBERS[:2]],
    (f"番号{full_width(MY_NUMBERS[0])}を", "my_number", full_width(MY_NUMBERS[0])),
    # postal codes: the mark or word stays outside the finding
    ("〒123-4567 東京都", "postal_code", "123-4567"),
    ("〒 1234567", "postal_code", "1234567"),
    ("郵便番号 150-0001", "postal_code", "150-0001"),
    ("郵便番号：１５０－０００１", "postal_code", "１５０－０００１"),
    ("住所は150-0001東京都渋谷区", "postal_code", "150-0001"),
    # names: the title or honorific stays outside the finding
    ("Mr. John Smith said hello", "name", "John Smith"),
    ("Please ask Dr. Tanaka.", "name", "Tanaka"),
    ("Ms Jones will call", "name", "Jones"),
    ("Prof. Marie Curie-Sklodowska", "name", "Marie Curie-Sklodowska"),
    ("My name is John Smith.", "name", "John Smith"),
    ("Hello, my name is Alice.", "name", "Alice"),
    ("I'm John Smith, nice to meet you", "name", "John Smith"),
    ("私の名前は山田太郎です", "name", "山田太郎"),
    ("私の名前はさくらです", "name", "さくら"),
    ("山田太郎と申します", "name", "山田太郎"),
    ("私は鈴木といいます", "name", "鈴木"),
    ("山田様", "name", "山田"),
    ("昨日、山田 太郎さんが来た", "name", "山田 太郎"),
    ("昨日山田さんが来た", "name", "山田"),
    ("担当鈴木様まで", "name", "鈴木"),
    ("スミスさんによろしく", "name", "スミス"),
    ("ジョン・スミス様へ", "name", "ジョン・スミス"),
    ("佐々木くんと", "name", "佐々木"),
    ("田中氏によれば", "name", "田中"),
    ("田中先生の授業", "name", "田中"),
    # family names ending in characters that also end common nouns
    ("土屋さんと井手さん", "name", "土屋"),
    ("土屋さんと井手さん", "name", "井手"),
    ("田所様", "name", "田所"),
]


@pytest.mark.parametrize(("text", "kind", "found"), MUST_FLAG)
def test_it_flags_personal_data(text: str, kind: str, found: str) -> None:
    assert (kind, found) in kinds_and_texts(text)


@pytest.mark.parametrize(
    "text",
    [
        # dates, times, ranges, versions, prices, numbers that are not personal
        "The release is on 2024-01-15 at 10:30.",
        "2024/01/15 と 2024年1月15日",
        "Years 1990-2000 and 2001–2010.",
        "Python 3.11.7, version 1.2.3.4.5 and 10.0.19045.",
        "It costs $1,234.56 or ¥12,800 or 1,980円（税込）.",
        "ISBN 978-4-06-123456-7 and ISBN 4-06-123456-7 and 9780306406157.",
        "Order #12345 and #123456789012 shipped.",
        "Order No.123-4567 and no.0312345678 and 3.0312345678.",
        "Quantities 12, 345, 6789 and 42.",
        "会議は10:30から12:00まで、受付は10:30:15。",
        "The ratio is 3:4:5.",
        "売上は3,456,789,012円、社員1200人。",
        "Code: std::vector<int>, a::b, Foo::Bar. MAC 00:1A:2B:3C:4D:5E.",
        "uuid 550e8400-e29b-41d4-a716-446655440000",
        "timestamp 2020-10-10T10:10:10Z",
        "three numbers 300 500 1000",
        # check-digit negatives: Luhn, mod 97, My Number
        "Visa 4111 1111 1111 1112 is wrong",
        "card 4111111111111112",
        "IBAN DE89 3704 0044 0532 0130 01",
        "GB82 WEST 1234 5698 7654 33",
        f"個人番号{wrong_check(MY_NUMBERS[0])}です",
        f"番号 {wrong_check(MY_NUMBERS[1])[:4]} {wrong_check(MY_NUMBERS[1])[4:8]} {wrong_check(MY_NUMBERS[1])[8:]}",
        "注文番号123456789012の件",
        # phones that are not real numbering plans
        "0901234567 is ten digits, too short for a mobile",
        "090-123-4567",
        # names that are not names
        "The Quick Brown Fox. Hello World. New York City.",
        "I'm Not Sure. I'm Japanese. I am Happy To Help.",
        "My name is not important.",
        "お客様各位、皆さん、皆様、神様、王様、奥様。",
        "担当者様へ。ユーザー様の声。会員様限定。",
        "新仕様のご案内。多種多様な商品。同様に。その様子。氏名を記入。",
        "彼氏と宮殿へ。殿下がいらした。さまざまな種類さまざま。",
        "お父さん、お母さん、ご主人様、お子様。",
        "八百屋さんと運転手さんと歌手さんと看護師さんと社長さん。",
        "あなたの名前は何ですか。私の名前は何です",
    ],
)
def test_it_leaves_ordinary_text_alone(text: str) -> None:
    assert detect(text) == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # an IBAN with a valid mod-97 check but the wrong length for its country
        (iban("DE", "370400440532013000" + "1"), "iban"),
        (iban("GB", "WEST123456987654"), "iban"),
        # an IPv4 octet over 255, leading zeros, and a dotted number too long to be one
        ("host 192.168.0.256", "ip_address"),
        ("host 192.168.001.1", "ip_address"),
        ("build 1.2.3.4.5", "ip_address"),
        # a bare 123-4567 inside a phone number is not a postal code
        ("会社03-1234-5678に", "postal_code"),
        ("番号 12-345-6789", "postal_code"),
    ],
)
def test_it_validates_before_flagging(text: str, kind: str) -> None:
    assert kind not in {f.kind for f in detect(text)}


def test_the_iban_helper_makes_valid_ibans() -> None:
    # The wrong-length cases above only prove something if their mod-97 check passes.
    assert pii.iban_valid(iban("DE", "370400440532013000"))
    assert pii.iban_valid(iban("GB", "WEST12345698765432"))


def test_the_my_number_check_digit_follows_the_official_example() -> None:
    assert pii.my_number_check_digit("12345678901") == 8
    assert all(pii.my_number_valid(n) for n in MY_NUMBERS)
    assert not any(pii.my_number_valid(wrong_check(n)) for n in MY_NUMBERS)


def test_offsets_point_into_the_original_text() -> None:
    text = (
        "連絡先はtaro@example.jp、電話は０９０－１２３４－５６７８、〒１５０－０００１、"
        f"山田様、card ４１１１ １１１１ １１１１ １１１１、番号{full_width(MY_NUMBERS[2])}。"
    )
    findings = detect(text)
    assert [f.kind for f in findings] == ["email", "phone", "postal_code", "name", "credit_card", "my_number"]
    for finding in findings:
        assert text[finding.start : finding.end] == finding.text


def test_findings_are_sorted_and_never_overlap() -> None:
    text = "Dr. John.Smith@example.com wrote from 4111 1111 1111 1111 and 〒123-4567."
    findings = detect(text)
    assert [(f.kind, f.text) for f in findings] == [
        ("email", "John.Smith@example.com"),
        ("credit_card", "4111 1111 1111 1111"),
        ("postal_code", "123-4567"),
    ]
    assert all(a.end <= b.start for a, b in zip(findings, findings[1:], strict=False))


def test_the_longer_finding_wins_an_overlap() -> None:
    # "John" after "Dr." is a name on its own, but the e-mail address holding it is longer.
    assert kinds_and_texts("Dr. John.Smith@example.com") == [("email", "John.Smith@example.com")]
    assert kinds_and_texts("Dr. John") == [("name", "John")]


def test_equally_long_findings_go_by_priority() -> None:
    assert pii._resolve([(PiiKind.NAME, 0, 5), (PiiKind.PHONE, 0, 5)]) == [(PiiKind.PHONE, 0, 5)]
    assert pii._resolve([(PiiKind.POSTAL_CODE, 3, 8), (PiiKind.IBAN, 4, 9)]) == [(PiiKind.IBAN, 4, 9)]
    # Length comes before priority, and findings apart from each other are all kept.
    assert pii._resolve([(PiiKind.NAME, 0, 9), (PiiKind.EMAIL, 2, 7), (PiiKind.PHONE, 9, 12)]) == [
        (PiiKind.NAME, 0, 9),
        (PiiKind.PHONE, 9, 12),
    ]


def test_kinds_limits_what_is_looked_for() -> None:
    text = "taro@example.com 090-1234-5678"
    assert kinds_and_texts(text) == [("email", "taro@example.com"), ("phone", "090-1234-5678")]
    assert [f.kind for f in detect(text, kinds=["phone"])] == ["phone"]
    assert redact(text, kinds=[PiiKind.EMAIL]) == ("[EMAIL] 090-1234-5678", 1)


def test_it_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="'passport'"):
        detect("text", kinds=["passport"])


MIXED = (
    "Hi, I'm John Smith (john.smith@example.com, +1 (555) 123-4567). "
    "私の名前は山田太郎です。電話は０９０－１２３４－５６７８、〒150-0001 東京都渋谷区。"
    "Card 4111 1111 1111 1111, server 10.0.0.12, IBAN DE89 3704 0044 0532 0130 00, "
    "マイナンバー123456789018。田中様によろしく。"
)


def test_it_redacts_a_mixed_english_and_japanese_message() -> None:
    assert redact(MIXED) == (
        "Hi, I'm [NAME] ([EMAIL], [PHONE]). "
        "私の名前は[NAME]です。電話は[PHONE]、〒[POSTAL_CODE] 東京都渋谷区。"
        "Card [CREDIT_CARD], server [IP_ADDRESS], IBAN [IBAN], "
        "マイナンバー[MY_NUMBER]。[NAME]様によろしく。",
        11,
    )


@pytest.mark.parametrize("text", [MIXED, *(text for text, _, _ in MUST_FLAG)])
def test_redacting_twice_changes_nothing(text: str) -> None:
    once, count = redact(text)
    assert count > 0
    assert redact(once) == (once, 0)


def test_placeholders_are_not_personal_data() -> None:
    assert detect(" ".join(PLACEHOLDERS.values()) + " Mr. [NAME] [NAME]様 私の名前は[NAME]です") == []


MESSAGES = [
    {"role": "system", "content": "You are helpful.", "weight": 0},
    {"role": "user", "content": "私の名前は山田太郎です。taro@example.jpに返信を。", "name": "u1"},
    {"role": "assistant", "content": [{"type": "text", "text": "taro@example.jp"}]},
    {"role": "assistant", "content": "承知しました、山田様。"},
]


def test_detect_messages_reports_where_each_finding_is() -> None:
    assert pii.detect_messages(MESSAGES) == [
        {"message": 1, "role": "user", "kind": "name", "start": 5, "end": 9, "text": "山田太郎"},
        {"message": 1, "role": "user", "kind": "email", "start": 12, "end": 27, "text": "taro@example.jp"},
        {"message": 3, "role": "assistant", "kind": "name", "start": 7, "end": 9, "text": "山田"},
    ]
    assert pii.detect_messages(MESSAGES, kinds=["email"])[0]["text"] == "taro@example.jp"


def test_redact_messages_returns_a_new_list_and_keeps_other_keys() -> None:
    before = copy.deepcopy(MESSAGES)
    redacted, count = pii.redact_messages(MESSAGES)
    assert MESSAGES == before
    assert count == 3
    assert redacted == [
        {"role": "system", "content": "You are helpful.", "weight": 0},
        {"role": "user", "content": "私の名前は[NAME]です。[EMAIL]に返信を。", "name": "u1"},
        {"role": "assistant", "content": [{"type": "text", "text": "taro@example.jp"}]},
        {"role": "assistant", "content": "承知しました、[NAME]様。"},
    ]
    assert all(new is not old for new, old in zip(redacted, MESSAGES, strict=True))


@pytest.mark.parametrize("text", [MIXED, "no personal data here", "", "taro@example.jp"])
def test_highlight_segments_join_back_to_the_text(text: str) -> None:
    findings = detect(text)
    segments = highlight(text, findings)
    assert "".join(segment for segment, _ in segments) == text
    assert [(segment, kind) for segment, kind in segments if kind] == [(f.text, f.kind) for f in findings]


def test_highlight_marks_the_found_segments() -> None:
    text = "mail taro@example.jp now"
    assert highlight(text, [Finding(kind="email", start=5, end=20, text="taro@example.jp")]) == [
        ("mail ", None),
        ("taro@example.jp", "email"),
        (" now", None),
    ]


def test_every_kind_has_a_label_and_a_placeholder() -> None:
    assert set(pii.KIND_LABELS) == set(PLACEHOLDERS) == set(PiiKind)
    assert all(str(label) for label in pii.KIND_LABELS.values())


def test_long_adversarial_text_is_scanned_in_linear_time() -> None:
    # Inputs shaped to make a backtracking pattern explode; each is scanned once.
    n = 20_000
    texts = [
        "a." * n + "@",
        "x@" + "a-" * n,
        "1 " * n,
        "12-" * n,
        "+1 (2) " * n,
        "ab:" * n,
        "::" * n,
        "1." * n,
        "DE89" + " A" * n,
        "山田" * n + "様",
        "Mr. Aa " * 2000,
        "私の名前は" + "あ" * n,
    ]
    detect("山田様")  # importing Presidio and loading GiNZA is not scanning: done before the clock starts
    started = time.perf_counter()
    for text in texts:
        detect(text)
    assert time.perf_counter() - started < 5
