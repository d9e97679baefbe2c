"""The vectorised applier yields exactly Snorkel's PandasLFApplier matrix for the same rules."""

from __future__ import annotations

import random
import re
import unicodedata

import numpy as np
import pandas as pd
import pytest
import regex
from snorkel.labeling import LabelingFunction, PandasLFApplier

from curation.rules import spec as S
from curation.rules.engine import ABSTAIN, Corpus, apply_rules, metadata_matches, target_text
from curation.rules.spec import RuleSpec, clean_params
from text.cjk import CJK_CLASS

BILLING, SHIPPING, SPAM = 0, 1, 2

TEXTS = [
    "I was charged twice, please refund me",
    "Refund!",
    "refunding is not the same word",
    "where is my parcel? tracking says nothing",
    "Check out my channel http://spam.example.com",
    "CHECK OUT MY CHANNEL",
    "please subscribe and check out my music",
    "",
    "返金してください。注文番号は12345です",
    "配送が遅れています",
    "my_refund_code is not a refund word boundary",
    "charged\nrefund\nparcel",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
    "Invoice 2024-001 and a parcel",
    "un-refund-able",
    "ÉTÉ été refund",
    "baaaaa",
    "ＲＥＦＵＮＤ please, ｶｽﾀﾏｰ配送",
    "商品の返品をしたい",
]


def _rows(seed: int = 3, n: int = 400) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        user = rng.choice(TEXTS) + ("" if i % 3 else " " + rng.choice(TEXTS))
        assistant = rng.choice(TEXTS) if i % 4 else ""
        messages = [{"role": "system", "content": "refund parcel system prompt"}, {"role": "user", "content": user}]
        if assistant:
            messages.append({"role": "assistant", "content": assistant})
        metadata = rng.choice(
            [
                {},
                {"channel": "email"},
                {"channel": "chat", "priority": 3},
                {"priority": "7"},
                {"tags": ["VIP", "返品"], "channel": "Ｅｍａｉｌ"},
            ]
        )
        rows.append({"messages": messages, "metadata": metadata})
    quiet = [
        {"role": "user", "content": "Good morning to all of you here today"},
        {"role": "assistant", "content": "Thanks, have a lovely day and a great week ahead!"},
    ]
    rows[::50] = [{"messages": quiet, "metadata": {}}] * len(rows[::50])
    return rows


RULES = [
    RuleSpec("kw_refund", S.KEYWORDS, BILLING, S.USER, {"keywords": ["refund", "charged"]}),
    RuleSpec("kw_all", S.KEYWORDS, BILLING, S.BOTH, {"keywords": ["refund", "parcel"], "mode": "all"}),
    RuleSpec("kw_case", S.KEYWORDS, SPAM, S.USER, {"keywords": ["CHECK OUT"], "case_sensitive": True}),
    RuleSpec("kw_sub", S.KEYWORDS, BILLING, S.ASSISTANT, {"keywords": ["refund"], "whole_word": False}),
    RuleSpec("kw_ja", S.KEYWORDS, BILLING, S.USER, {"keywords": ["返金"], "whole_word": False}),
    RuleSpec("kw_ja_ship", S.KEYWORDS, SHIPPING, S.BOTH, {"keywords": ["配送", "parcel", "tracking"]}),
    RuleSpec("re_check", S.REGEX, SPAM, S.USER, {"pattern": r"check\s+out"}),
    RuleSpec("re_url", S.REGEX, SPAM, S.BOTH, {"pattern": r"https?://\S+", "case_sensitive": True}),
    RuleSpec("re_anchor", S.REGEX, SHIPPING, S.USER, {"pattern": r"^where"}),
    RuleSpec("re_digits", S.REGEX, BILLING, S.USER, {"pattern": r"\d{4}-\d{3}|\d{5}"}),
    RuleSpec("re_evil", S.REGEX, SPAM, S.USER, {"pattern": r"(a+)+$"}),
    RuleSpec("re_empty_text", S.REGEX, SHIPPING, S.ASSISTANT, {"pattern": r"^$"}),
    RuleSpec("len_short", S.LENGTH, SHIPPING, S.USER, {"unit": "words", "min": None, "max": 3}),
    RuleSpec("len_chars", S.LENGTH, BILLING, S.ASSISTANT, {"unit": "chars", "min": 20, "max": 40}),
    RuleSpec("meta_email", S.METADATA, BILLING, S.USER, {"key": "channel", "op": "equals", "value": "email"}),
    RuleSpec("meta_gt", S.METADATA, SHIPPING, S.USER, {"key": "priority", "op": "gt", "value": 5.0}),
    RuleSpec("meta_kw", S.METADATA, BILLING, S.USER, {"key": "tags", "op": "keywords", "keywords": ["返品", "vip"]}),
    RuleSpec("meta_re", S.METADATA, BILLING, S.USER, {"key": "channel", "op": "regex", "pattern": r"^e\w+l$"}),
    RuleSpec("re_word", S.REGEX, BILLING, S.USER, {"pattern": r"\w+したい|\bref\w*"}),
    RuleSpec("kw_nofold", S.KEYWORDS, BILLING, S.USER, {"keywords": ["refund"], "fold_width": False}),
    # Combinations of the rules above (by key), as a Snorkel user would call one LF from another.
    RuleSpec("and", S.COMBINE, SPAM, S.USER, {"op": "and", "rules": ["re_check", "kw_case"]}),
    RuleSpec("or", S.COMBINE, SHIPPING, S.USER, {"op": "or", "rules": ["kw_ja_ship", "meta_gt", "and"]}),
    RuleSpec("not", S.COMBINE, BILLING, S.USER, {"op": "not", "rules": ["or"]}),
]

HOSTILE = {r"(a+)+$"}
NON_CJK_WORD = rf"[^\W{CJK_CLASS}]"


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def keyword_regex(keyword: str, p: dict) -> re.Pattern:
    """A keyword as a Snorkel user writes it with re: apart from word characters at an end
    that is one (CJK characters are each a word of their own), on width-folded text."""
    keyword = nfkc(keyword) if p.get("fold_width", True) else keyword
    left = p["whole_word"] and re.match(NON_CJK_WORD, keyword[0])
    right = p["whole_word"] and re.match(NON_CJK_WORD, keyword[-1])
    body = (f"(?<!{NON_CJK_WORD})" if left else "") + re.escape(keyword) + (f"(?!{NON_CJK_WORD})" if right else "")
    return re.compile(body, 0 if p["case_sensitive"] else re.IGNORECASE)


def text_test(p: dict):
    """The test a keyword or regex rule (or a metadata rule searching a field) makes of a text."""
    fold = p.get("fold_width", True)
    if "keywords" in p:
        found = [keyword_regex(k, p) for k in p["keywords"]]
        combine = all if p["mode"] == "all" else any
        return lambda text: combine(r.search(nfkc(text) if fold else text) for r in found)
    pattern = nfkc(p["pattern"]) if fold else p["pattern"]
    # Python's re would backtrack for hours on the hostile pattern; the regex package (re's
    # syntax and meaning in V0) does not.
    engine = regex if pattern in HOSTILE else re
    compiled = engine.compile(pattern, 0 if p["case_sensitive"] else re.IGNORECASE)
    return lambda text: compiled.search(nfkc(text) if fold else text) is not None


def _cleaned(rule: RuleSpec) -> RuleSpec:
    if rule.kind == S.COMBINE:  # keys here are names, not ids
        return rule
    return RuleSpec(rule.key, rule.kind, rule.label, rule.target, clean_params(rule.kind, rule.params))


def _snorkel_lf(rule: RuleSpec, lfs: dict | None = None) -> LabelingFunction:
    """The same rule written the way a Snorkel user would: plain Python on one row."""
    p = rule.params
    column = f"text_{rule.target}"
    if rule.kind in (S.KEYWORDS, S.REGEX):
        test = text_test(p)

        def f(x, test=test):
            return rule.label if test(x[column]) else ABSTAIN
    elif rule.kind == S.METADATA and p["op"] in ("keywords", "regex"):
        test = text_test(p)

        def f(x, test=test):
            value = x["metadata"].get(p["key"])
            if value is None:
                return ABSTAIN
            text = (
                "\n".join(v if isinstance(v, str) else str(v) for v in value) if isinstance(value, list) else str(value)
            )
            return rule.label if test(text) else ABSTAIN
    elif rule.kind == S.COMBINE:
        operands = [lfs[key] for key in p["rules"]]
        op = {"and": all, "or": any, "not": lambda votes: not next(iter(votes))}[p["op"]]

        def f(x, operands=operands, op=op):
            return rule.label if op(lf(x) != ABSTAIN for lf in operands) else ABSTAIN
    elif rule.kind == S.LENGTH:

        def f(x):
            text = x[column]
            n = len(text) if p["unit"] == "chars" else len(text.split())
            ok = (p["min"] is None or n >= p["min"]) and (p["max"] is None or n <= p["max"])
            return rule.label if ok else ABSTAIN
    else:

        def f(x):
            return rule.label if metadata_matches(p, x["metadata"]) else ABSTAIN

    return LabelingFunction(name=str(rule.key), f=f)


def test_the_matrix_equals_snorkels_pandas_applier():
    rows = _rows()
    rules = [_cleaned(r) for r in RULES]
    frame = pd.DataFrame(
        {
            "text_user": [target_text(r["messages"], "user") for r in rows],
            "text_assistant": [target_text(r["messages"], "assistant") for r in rows],
            "text_both": [target_text(r["messages"], "both") for r in rows],
            "metadata": [r["metadata"] for r in rows],
        }
    )
    lfs: dict = {}
    for r in rules:
        lfs[r.key] = _snorkel_lf(r, lfs)
    expected = PandasLFApplier(list(lfs.values())).apply(frame, progress_bar=False)

    got = apply_rules(rules, Corpus([r["messages"] for r in rows], [r["metadata"] for r in rows]))

    np.testing.assert_array_equal(got, expected)
    # The data set really exercises what the parity is about.
    voting = (got[:, :-1] != ABSTAIN).sum(axis=1)  # "not" votes wherever "or" does not
    assert (voting == 0).any(), "some examples get no vote"
    assert (voting >= 2).any(), "some examples get several votes"
    conflicting = [len({v for v in row if v != ABSTAIN}) > 1 for row in got]
    assert any(conflicting), "some examples get conflicting votes"
    assert all((got[:, j] != ABSTAIN).any() for j in range(len(rules))), "every rule fires somewhere"
    assert all((got[:, j] == ABSTAIN).any() for j in range(len(rules))), "every rule abstains somewhere"


def test_chunks_give_the_same_matrix_as_one_pass():
    rows = _rows(seed=9, n=101)
    rules = [_cleaned(r) for r in RULES]
    whole = apply_rules(rules, Corpus([r["messages"] for r in rows], [r["metadata"] for r in rows]))
    parts = [
        apply_rules(rules, Corpus([r["messages"] for r in rows[i : i + 17]], [r["metadata"] for r in rows[i : i + 17]]))
        for i in range(0, len(rows), 17)
    ]
    np.testing.assert_array_equal(np.vstack(parts), whole)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("please refund me", True),
        ("Refund!", True),
        ("REFUND", True),
        ("refunding", False),
        ("my_refund", False),
        ("prefund", False),
        ("un-refund-able", True),
        ("", False),
    ],
)
def test_whole_word_keywords(text, expected):
    rule = _cleaned(RuleSpec("r", S.KEYWORDS, 0, S.USER, {"keywords": ["refund"]}))
    got = apply_rules([rule], Corpus([[{"role": "user", "content": text}]]))
    assert bool(got[0, 0] == 0) is expected
