"""The characters of Chinese, Japanese and Korean, and a tokeniser that knows them.

Japanese and Chinese write no spaces between words, so a "word" of such text would be a whole
sentence: near-duplicate shingles, overlap metrics, diffs and label matching all take each of
these characters as a token of its own, and words (runs of letters and digits) elsewhere. One
set serves them all, so that they agree on what a Japanese character is.
"""

from __future__ import annotations

import re

# Han ideographs: unified, extension A, compatibility, extensions B to G.
HAN_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x3134F))
# The letters of Chinese and Japanese, which write no spaces between words: Han, radicals, kana,
# bopomofo. Punctuation is left out (。 is no word: overlap metrics would count it), and so are
# full-width Latin letters and digits (ＡＢＣ, １２３), words like their ASCII forms.
UNSPACED_RANGES = (
    (0x2E80, 0x2FDF),  # CJK and Kangxi radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3100, 0x312F),  # bopomofo
    (0x3190, 0x31FF),  # kanbun, bopomofo extended, strokes, katakana extensions
    *HAN_RANGES[:3],
    (0xFF66, 0xFF9F),  # half-width katakana
    HAN_RANGES[3],
)
# Korean writes spaces between words, but its syllables are tokenised one by one as well.
HANGUL_RANGES = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xAC00, 0xD7AF), (0xFFA0, 0xFFDC))
# The one set of CJK characters: each is a token of its own.
CJK_RANGES = tuple(sorted(UNSPACED_RANGES + HANGUL_RANGES))


def _class(ranges: tuple[tuple[int, int], ...]) -> str:
    def escape(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

    return "".join(f"{escape(low)}-{escape(high)}" for low, high in ranges)


# The inside of a regular expression's character class: f"[{CJK_CLASS}]" is one CJK character.
CJK_CLASS = _class(CJK_RANGES)
# Chinese or Japanese, without Korean: the texts whose BLEU counts characters.
UNSPACED_CLASS = _class(UNSPACED_RANGES)
HAN_CLASS = _class(HAN_RANGES)
# What Japanese names are written with: ideographs, 々 (repeat the last), 〆, and ヵ ヶ (read ka, ga, ko).
KANJI_CLASS = "\u3005\u3006\u30f5\u30f6" + HAN_CLASS
CJK_CHAR = re.compile(f"[{CJK_CLASS}]")
UNSPACED_CHAR = re.compile(f"[{UNSPACED_CLASS}]")
# One CJK character, or a run of letters and digits that are not CJK (no underscore, no punctuation).
_WORD = re.compile(rf"[{CJK_CLASS}]|(?:(?![{CJK_CLASS}])[^\W_])+")


def is_cjk(char: str) -> bool:
    return CJK_CHAR.fullmatch(char) is not None


def has_cjk(text: str) -> bool:
    return CJK_CHAR.search(text) is not None


def words(text: str) -> list[str]:
    """The tokens of `text`: each CJK character alone, words of other scripts whole, punctuation
    and spaces left out."""
    return _WORD.findall(text)
