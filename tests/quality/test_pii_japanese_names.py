"""Japanese names written with no honorific or cue around them, found by GiNZA through Presidio."""

from __future__ import annotations

import pytest

from curation.quality import pii, pii_ginza
from curation.quality.pii import detect, redact
from llm import loading


def names(text: str) -> list[str]:
    return [f.text for f in detect(text) if f.kind == "name"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("昨日、山田太郎が来た。", ["山田太郎"]),
        ("担当は佐藤です。", ["佐藤"]),
        ("鈴木一郎と田中花子は大阪に住んでいる。", ["鈴木一郎", "田中花子"]),
        ("ご質問は中村までお願いします。", ["中村"]),
        ("高橋は会議に出席しなかった。", ["高橋"]),
        ("明日、伊藤と打ち合わせをします。", ["伊藤"]),
        ("担当：加藤", ["加藤"]),
        ("マイケル・ジャクソンは歌手だ。", ["マイケル・ジャクソン"]),
        # one with an honorific (found by the pattern), one without (found by the model)
        ("渡辺さんの件ですが、小林から連絡があります。", ["渡辺", "小林"]),
        ("吉田さんと山本が来ました。", ["吉田", "山本"]),
    ],
)
def test_it_finds_japanese_names_without_an_honorific(text: str, expected: list[str]) -> None:
    assert names(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        # places are not people, and a place alone is not personal data
        "東京の天気は晴れです。",
        "日本の首都は東京です。",
        "富士山は日本一高い山です。",
        # ordinary Japanese, Latin words inside it, and our own placeholders
        "次の文章を要約してください。",
        "彼は医者です。お客様からのお問い合わせです。",
        "Pythonでリストを並べ替える関数を書いてください。",
        "私の名前は[NAME]です。[NAME]が来た。",
        # Chinese (kanji and no kana) is not read as Japanese
        "尽管剩下的双键更为活泼，该反应却很慢。",
    ],
)
def test_it_leaves_places_and_ordinary_japanese_alone(text: str) -> None:
    assert detect(text) == []


def test_an_honorific_stays_outside_the_name() -> None:
    # The model reads "山田様" as one person; the placeholder keeps the honorific, as the pattern does.
    assert redact("山田様、お世話になっております。") == ("[NAME]様、お世話になっております。", 1)


def test_offsets_point_into_the_original_text() -> None:
    text = "連絡先：ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ。昨日、山田　太郎が来た。"
    findings = detect(text)
    assert [(f.kind, f.text) for f in findings] == [("email", "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ"), ("name", "山田　太郎")]
    assert all(text[f.start : f.end] == f.text for f in findings)


def test_names_are_redacted_once() -> None:
    once, count = redact("昨日、山田太郎が来た。担当は佐藤です。")
    assert (once, count) == ("昨日、[NAME]が来た。担当は[NAME]です。", 2)
    assert redact(once) == (once, 0)


def test_a_name_in_a_long_text_is_found_past_the_first_sentences() -> None:
    filler = "この文章は名前を含まない長い説明の一部です。" * 150
    text = filler + "最後に、担当の佐藤健一から連絡します。"
    assert len(text) > 10 * pii_ginza.SEGMENT_LIMIT
    assert [(f.text, f.start) for f in detect(text)] == [("佐藤健一", text.index("佐藤健一"))]


def test_the_model_is_loaded_once_only_for_japanese_text_and_given_back_when_idle(monkeypatch) -> None:
    monkeypatch.setattr(loading, "_CACHE", {})
    key = (pii_ginza.CACHE_WHAT, pii_ginza.MODEL)
    # Texts no other test reads, so no cached finding answers for the model.
    pii.detect("Dr. Quillfeather wrote from quill@example.org on Tuesday.")
    assert key not in loading._CACHE
    pii.detect("先週、大河内雅人が社内報に寄稿した。")
    first = loading._CACHE[key].value
    pii.detect("来月、長谷部沙織が着任する予定です。")
    assert loading._CACHE[key].value is first
    assert loading.release_idle(loading._clock() + 3600, 60) == ["named-entity model ja_ginza (idle 3600 s)"]
    assert key not in loading._CACHE
    assert names("今朝、宇佐美健吾から電話があった。") == ["宇佐美健吾"]
    assert loading._CACHE[key].value is not first
