"""Personal names in English and Japanese text, found only where the words around them say they
are names: a title ("Dr."), "my name is", "私の名前は", "と申します", an honorific (さん, 様).

Part of `pii` (which maps full-width characters to ASCII before calling `find_names`); kept apart
because the cues and the stop lists that keep common nouns out are most of its length.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from text.cjk import KANJI_CLASS

Span = tuple[int, int]

_EN_WORD = r"[A-Z][a-z]{1,20}(?:[A-Z][a-z]{1,20})?(?:['\-][A-Z][a-z]{1,20})?"
_EN_NAME = rf"(?P<name>{_EN_WORD}(?: {_EN_WORD})?)(?![A-Za-z])"
_EN_TITLED = re.compile(r"(?<![A-Za-z])(?:Mrs|Mr|Ms|Mx|Dr|Prof|Professor)\.? " + _EN_NAME)
_EN_MY_NAME_IS = re.compile(r"(?<![A-Za-z])(?i:my name is) " + _EN_NAME)
_EN_I_AM = re.compile(r"(?<![A-Za-z])I(?:['\u2019]m| am) " + _EN_NAME)

# Capitalised words that follow "I'm" or a name without being names: titles of headings
# ("I'm Not Sure"), nationalities, and the start of the next sentence.
_EN_NOT_NAMES = frozenset(
    """
    A About Also An And Are As At Back Be But By Can Could Do Dear Does Fine For From Glad Going
    Good Happy He Hello Her Here Hi His How I If In Is It Its Just Looking My No Not Now Of On
    Or Our Please Really Regards She So Sorry Still Sure Thank Thanks That The Their Then There
    They This To Very Was We Well What When Where Which Who Why Will With Yes You Your
    American British Canadian Chinese English French German Indian Italian Japanese Korean
    Spanish Australian Asian European
    """.split()
)

_KANJI = f"[{KANJI_CLASS}]"
# A katakana word starts with a letter; the middle dot and the prolonged sound mark follow one.
_KATAKANA = "[\u30a1-\u30fa][\u30a1-\u30fa\u30fb\u30fc]{1,15}"
# A family and a given name, optionally with one space between them.
_JA_NAME = rf"(?:{_KANJI}{{2,6}}(?: {_KANJI}{{1,4}})?|{_KATAKANA}(?: {_KATAKANA})?)"
_JA_FIRST_PERSON = "(?:私|わたし|わたくし|僕|ぼく|俺|おれ|あたし)"
_JA_NAMING = "(?:です|といいます|と言います|と申します)"
# 私の名前は山田太郎です. Here the context is strong enough to take a name in hiragana too.
_JA_MY_NAME_IS = re.compile(
    rf"{_JA_FIRST_PERSON}の名前は ?(?P<name>{_JA_NAME}|[\u3041-\u3096]{{1,8}}?)(?={_JA_NAMING})"
)
# 山田太郎と申します; 私は山田といいます ("...といいます" alone also names flowers and tools).
_JA_MOUSHIMASU = re.compile(rf"(?P<name>{_JA_NAME})(?=と申します|と申す)")
_JA_I_AM_CALLED = re.compile(rf"{_JA_FIRST_PERSON}は ?(?P<name>{_JA_NAME})(?=といいます|と言います)")
# 山田様, 山田太郎さん, スミス氏. The look-aheads keep words that merely start like an honorific
# out: 様子 (state), 様々 (various), 氏名 (full name), 殿下 (Highness), さまざま.
_JA_HONORIFIC = re.compile(
    rf"(?P<name>{_JA_NAME})(?=(?P<honorific>さん|さま(?!ざま)|様(?![子々式相態])|氏(?!名)|殿(?!下)|くん|ちゃん|先生))"
)
# Words that end in an honorific's character without being one: 仕様 (specification), 多様
# (diverse), 彼氏 (boyfriend), 宮殿 (palace). "新仕様" is not 新仕 with 様.
_JA_NOT_HONORIFIC = frozenset(
    """
    仕様 模様 多様 同様 異様 一様 左様 有様 文様 紋様 無様
    両氏 同氏 某氏 諸氏 彼氏 御殿 宮殿 神殿 本殿 拝殿 仏殿 貴殿
    """.split()
)

# Words that take an honorific without being names: お客様, 皆さん, 神様, 担当者様, ユーザー様.
# Single kanji never reach the check (a kanji name needs two), but are listed for clarity.
_JA_NOT_NAMES = frozenset(
    """
    お客 客 皆 皆々 神 王 奥 姫 殿 仏 彼 父 母 兄 姉 弟 妹 爺 婆 坊 嬢 同 両 某 諸 各 貴 御
    担当 担当者 利用者 会員 保護者 関係者 患者 店員 社員 職員 駅員 運転手 大家 作家 先生 社長 部長
    課長 店長 係長 院長 校長 会長 医者 歯医者 看護師 弁護士 叔父 叔母 伯父 伯母 祖父 祖母 義父 義母
    旦那 奥様 神様 王子 女王 王女 観音 地蔵 稲荷 天神 天皇 皇后 皇太子 彼女 主人 友人 恋人 管理人
    大人 子供 子ども 息子 娘 親方 師匠 兄弟 姉妹 家族 皆様 各位 購入者 出品者 落札者 申込者 応募者
    参加者 来場者 登録者 契約者 受取人 差出人 送り主 依頼主 施主 荷主 株主 店主 顧客 得意先 取引先
    御社 貴社 弊社 当社 会社 業者 配達員 外国人 日本人 近所 親戚 先輩 後輩 同僚 上司 部下 友達
    仲間 相手 相方 選手 監督 教授 博士 和尚 住職 神主 牧師 神父 警官 刑事 仕様 模様 多様 異様
    ユーザー ユーザ オーナー オーナ ゲスト メンバー メンバ クライアント スタッフ ドライバー ファン
    ママ パパ サンタ コック ナース カスタマー プレイヤー ホスト マスター ボス リーダー シェフ
    パートナー ヒーロー ベビー お父 お母 八百屋 魚屋 花屋 本屋 肉屋 酒屋 米屋 床屋 歌手 助手 騎手
    投手 捕手 事務所 役所 研究所
    """.split()
)
# Endings of words for roles and places, not people: 担当者, 店員, 看護師, 社長, 作家. Not 屋, 手
# or 所, which end common family names too (土屋, 井手, 田所); the words are listed above instead.
_JA_NOT_NAME_ENDINGS = tuple("者員師士長官主社店家局")
# Kanji words that often run straight into a name with no particle between them (昨日山田さん,
# 担当鈴木様); taken off the front of a name found before an honorific.
_JA_LEADING_NOT_NAME = tuple(
    """
    昨日 今日 明日 先日 本日 毎日 先週 今週 来週 昨年 今年 来年 担当 営業 弊社 御社 貴社 当社 友人 同僚
    上司 部下 先輩 後輩 部長 課長 社長 店長 先生 宛先
    """.split()
)
_JA_NOT_NAME_ANSWERS = frozenset(["何", "なん", "なに", "秘密", "ひみつ", "内緒", "ないしょ", "不明", "未定"])


def _english_name(match: re.Match[str], *, words_needed: int) -> Span | None:
    words = match["name"].split(" ")
    if words[0] in _EN_NOT_NAMES:
        return None
    if len(words) == 2 and words[1] in _EN_NOT_NAMES:
        words = words[:1]
    if len(words) < words_needed:
        return None
    start = match.start("name")
    return start, start + len(" ".join(words))


def _japanese_name_plausible(text: str, start: int, name: str, honorific: str = "") -> bool:
    compact = name.replace(" ", "")
    if compact in _JA_NOT_NAMES or compact in _JA_NOT_NAME_ANSWERS or compact.endswith(_JA_NOT_NAME_ENDINGS):
        return False
    if honorific and compact[-1] + honorific[0] in _JA_NOT_HONORIFIC:
        return False
    # お客様, ご主人様, お父さん: the polite prefix marks a common noun, never a name.
    return not (start > 0 and text[start - 1] in "おご")


def _trim_leading_words(start: int, name: str) -> tuple[int, str]:
    for word in _JA_LEADING_NOT_NAME:
        # Only when two kanji or more are left: a name needs them.
        if name.startswith(word) and len(name) - len(word) >= 2 and name[len(word)] != " ":
            return start + len(word), name[len(word) :]
    return start, name


def find_names(text: str) -> Iterator[Span]:
    """The (start, end) of each name that the words around it mark as one."""
    for pattern, words_needed in ((_EN_TITLED, 1), (_EN_MY_NAME_IS, 1), (_EN_I_AM, 2)):
        for match in pattern.finditer(text):
            span = _english_name(match, words_needed=words_needed)
            if span is not None:
                yield span
    if text.isascii():
        return
    for pattern in (_JA_MY_NAME_IS, _JA_MOUSHIMASU, _JA_I_AM_CALLED, _JA_HONORIFIC):
        for match in pattern.finditer(text):
            start, name = match.start("name"), match["name"]
            if pattern is _JA_MOUSHIMASU or pattern is _JA_HONORIFIC:
                start, name = _trim_leading_words(start, name)
            honorific = match.groupdict().get("honorific") or ""
            if _japanese_name_plausible(text, start, name, honorific):
                yield start, start + len(name)
