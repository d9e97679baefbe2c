"""Regular expressions mean what Python's re makes of them, in every script, though they run on
RE2 (whose \\d \\w \\s \\b know only ASCII and whose case folding is Unicode's, not re's)."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pytest

from curation.rules import spec as S
from curation.rules.engine import ABSTAIN, Corpus, apply_rules, match_spans
from curation.rules.spec import RuleError, RuleSpec, clean_params

CORPUS = [
    "注文番号は１２３４５です",  # full-width digits
    "注文番号は12345です",
    "商品の返品をしたい",
    "返品",
    "返品率が高い",
    "ｶｽﾀﾏｰｻﾎﾟｰﾄに電話したい",  # half-width katakana
    "我想退货，订单号 ４５６７８",
    "환불하고 싶어요 ２０２４년",
    "رقم الطلب ١٢٣٤٥ من فضلك",  # Arabic-Indic digits
    "मेरा ऑर्डर १२३४५ कहाँ है",  # Devanagari digits
    "ΣΊΣΥΦΟΣ σίσυφος τελος ς",
    "Die Straße, STRASSE und ẞ",
    "café crème",
    "cafés",
    "caf",
    "a caf b",
    "cafe\u0301 au lait",  # e + combining acute
    "İstanbul ıi Iİ",
    "5 \u212a is cold, k",  # Kelvin sign
    "a\u00a0b",  # no-break space
    "a\u3000b",  # ideographic space
    "tab\there\u2028line",
    "I ❤️ 😀 café",
    "ＡＢＣ ａｂｃ ABC",
    "ﬁle ① x² ㍿",
    "ǅemal Ǆ ǆ",
    "snake_case_word",
    "",
    "\n",
    "line\n",
    "two\nlines\n",
]

PATTERNS = [
    r"\d{5}",
    r"\d+",
    r"\D+\d",
    r"\w+したい",
    r"\bcaf\b",
    r"\bcafé\b",
    r"café\b",
    r"\b返品",
    r"返品\b",
    r"\B品",
    r"\b\d\b",
    r"\bé",
    r"\s",
    r"[\s]+",
    r"a\sb",
    r"\S+\s\S+",
    r"[^\s\w]+",
    r"[^\W\d]+",
    r"\W",
    r"[\w-]+",
    r"σ",
    r"Σ",
    r"ς",
    r"straße",
    r"STRASSE",
    r"ß",
    r"ẞ",
    r"k",
    "\u212a",
    r"i",
    r"İ",
    r"ı",
    r"[a-z]+",
    r"[^a-z]+",
    r"ＡＢＣ",
    r"abc",
    r"ǅ",
    r"(?a)\w+",
    r"(?a)\bcaf\b",
    r"(?a)\d",
    r"^\w+$",
    r"^.*$",
    r"(?m)^\w+$",
    r"(?s)o.l",
    r"\w$",
    r"e$\n",
    r"(?m)\d$",
    r"^$",
    r"[α-ω]+",
    r"[\u0600-\u06ff]+",
    r"[가-힣]+",
    "\u00a0",
    "\u3000",
    "é",
    "e\u0301",
    "😀",
    r"[😀-🙏]",
    r"ﬁ",
    r"x²",
    r"(?i:Σ)ΊΣ",
    r"(?-i:ABC)",
    r"caf(?:é|e)s?",
    r"\bcaf",
    r"[\d\s]{3,}",
    r"(?x) \d  +  \s",
]


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _matrix(patterns: list[str], *, case_sensitive: bool, fold: bool) -> np.ndarray:
    rules = [
        RuleSpec(
            i,
            S.REGEX,
            0,
            S.USER,
            clean_params(S.REGEX, {"pattern": p, "case_sensitive": case_sensitive, "fold_width": fold}),
        )
        for i, p in enumerate(patterns)
    ]
    return apply_rules(rules, Corpus([[{"role": "user", "content": t}] for t in CORPUS])) != ABSTAIN


def _python(patterns: list[str], *, case_sensitive: bool, fold: bool) -> np.ndarray:
    flags = 0 if case_sensitive else re.IGNORECASE
    compiled = [re.compile(nfkc(p) if fold else p, flags) for p in patterns]
    texts = [nfkc(t) if fold else t for t in CORPUS]
    return np.array([[c.search(t) is not None for c in compiled] for t in texts])


def _differences(got: np.ndarray, expected: np.ndarray) -> list[tuple[str, str, bool]]:
    rows, cols = np.nonzero(got != expected)
    return [(PATTERNS[c], CORPUS[r], bool(expected[r, c])) for r, c in zip(rows, cols, strict=True)]


@pytest.mark.parametrize("case_sensitive", [True, False], ids=["case-sensitive", "ignore-case"])
def test_the_matrix_equals_pythons_re_without_folding(case_sensitive):
    got = _matrix(PATTERNS, case_sensitive=case_sensitive, fold=False)
    expected = _python(PATTERNS, case_sensitive=case_sensitive, fold=False)
    assert _differences(got, expected) == []
    # The corpus tests what it is about: each of these differs from RE2's own reading.
    hits = dict(zip(PATTERNS, expected.T, strict=True))
    assert hits[r"\d{5}"][CORPUS.index("注文番号は１２３４５です")]
    assert hits[r"\w+したい"][CORPUS.index("商品の返品をしたい")]
    assert hits[r"\b返品"][CORPUS.index("返品率が高い")]
    assert not hits[r"\bcaf\b"][CORPUS.index("café crème")]
    assert hits[r"a\sb"][CORPUS.index("a\u00a0b")] and hits[r"a\sb"][CORPUS.index("a\u3000b")]


@pytest.mark.parametrize("case_sensitive", [True, False], ids=["case-sensitive", "ignore-case"])
def test_the_matrix_equals_pythons_re_on_width_folded_text(case_sensitive):
    got = _matrix(PATTERNS, case_sensitive=case_sensitive, fold=True)
    expected = _python(PATTERNS, case_sensitive=case_sensitive, fold=True)
    assert _differences(got, expected) == []


def test_case_folding_follows_re_where_re2_differs():
    patterns = ["k", "i", "σ", "ß", "[a-z]"]
    got = _matrix(patterns, case_sensitive=False, fold=False)
    kelvin, turkish = CORPUS.index("5 \u212a is cold, k"), CORPUS.index("İstanbul ıi Iİ")
    sigma, eszett = CORPUS.index("ΣΊΣΥΦΟΣ σίσυφος τελος ς"), CORPUS.index("Die Straße, STRASSE und ẞ")
    assert got[kelvin, 0] and got[turkish, 1] and got[sigma, 2] and got[eszett, 3]
    assert got[CORPUS.index("İstanbul ıi Iİ"), 4]


def test_width_folding_finds_full_width_digits_and_letters():
    rule = RuleSpec("r", S.REGEX, 0, S.USER, clean_params(S.REGEX, {"pattern": r"order ABC\d{3}"}))
    texts = ["ｏｒｄｅｒ ＡＢＣ１２３", "order abc123", "order ABC"]
    got = apply_rules([rule], Corpus([[{"role": "user", "content": t}] for t in texts]))[:, 0] != ABSTAIN
    assert got.tolist() == [True, True, False]
    off = RuleSpec("r", S.REGEX, 0, S.USER, clean_params(S.REGEX, {"pattern": r"order ABC", "fold_width": False}))
    got = apply_rules([off], Corpus([[{"role": "user", "content": t}] for t in texts]))[:, 0] != ABSTAIN
    assert got.tolist() == [False, True, True]


def test_highlights_point_into_the_original_text_when_folded():
    rule = RuleSpec("r", S.REGEX, 0, S.USER, clean_params(S.REGEX, {"pattern": r"refund \d+"}))
    text = "ﾍﾟｰｼﾞ: ＲＥＦＵＮＤ １２３ ok"
    ((start, end),) = match_spans(rule, text)
    assert text[start:end] == "ＲＥＦＵＮＤ １２３"
    kw = RuleSpec("k", S.KEYWORDS, 0, S.USER, clean_params(S.KEYWORDS, {"keywords": ["ページ"]}))
    assert [text[a:b] for a, b in match_spans(kw, text)] == ["ﾍﾟｰｼﾞ"]


def test_a_word_boundary_candidate_that_times_out_abstains_and_is_counted(monkeypatch):
    from curation.rules import engine

    class Slow:
        def search(self, text, timeout=None):
            raise TimeoutError

    monkeypatch.setattr(engine, "_confirmer", lambda pattern: Slow())
    rule = RuleSpec("slow", S.REGEX, 0, S.USER, clean_params(S.REGEX, {"pattern": r"\bcaf\b"}))
    corpus = Corpus([[{"role": "user", "content": "a caf b"}]] * 8)
    got = apply_rules([rule], corpus)
    assert (got == ABSTAIN).all()
    assert corpus.timeouts == {"slow": 8}


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(?<=a)b", "Lookahead and lookbehind"),
        (r"(a)\1", "Back-references"),
        (r"a++", "Possessive"),
        (r"((a{100}){100}){100}", "too large"),
        (r"(", "Not a valid regular expression"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_with_a_reason(pattern, message):
    with pytest.raises(RuleError) as error:
        clean_params(S.REGEX, {"pattern": pattern})
    assert error.value.field == "pattern" and message in str(error.value.message)


def test_re2_only_syntax_keeps_re2s_meaning():
    rule = RuleSpec("r", S.REGEX, 0, S.USER, clean_params(S.REGEX, {"pattern": r"\p{Han}+"}))
    got = apply_rules([rule], Corpus([[{"role": "user", "content": t}] for t in ["返品", "refund"]]))
    assert (got[:, 0] != ABSTAIN).tolist() == [True, False]
