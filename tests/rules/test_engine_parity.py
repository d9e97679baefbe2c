"""The vectorised applier yields exactly Snorkel's PandasLFApplier matrix for the same rules."""

from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd
import pytest
import re2
from snorkel.labeling import LabelingFunction, PandasLFApplier

from curation.rules import spec as S
from curation.rules.engine import ABSTAIN, Corpus, apply_rules, metadata_matches, target_text
from curation.rules.spec import RuleSpec, clean_params

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
        metadata = rng.choice([{}, {"channel": "email"}, {"channel": "chat", "priority": 3}, {"priority": "7"}])
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
]


def _cleaned(rule: RuleSpec) -> RuleSpec:
    return RuleSpec(rule.key, rule.kind, rule.label, rule.target, clean_params(rule.kind, rule.params))


def _snorkel_lf(rule: RuleSpec) -> LabelingFunction:
    """The same rule written the way a Snorkel user would: plain Python on one row."""
    p = rule.params
    column = f"text_{rule.target}"
    if rule.kind == S.KEYWORDS:
        flags = 0 if p["case_sensitive"] else re.IGNORECASE
        found = [
            re.compile(rf"(?<!\w){re.escape(k)}(?!\w)" if p["whole_word"] else re.escape(k), flags)
            for k in p["keywords"]
        ]
        combine = all if p["mode"] == "all" else any

        def f(x, found=found, combine=combine):
            return rule.label if combine(r.search(x[column]) for r in found) else ABSTAIN
    elif rule.kind == S.REGEX:
        compiled = re2.compile(p["pattern"], S.re2_options(case_sensitive=p["case_sensitive"]))

        def f(x, compiled=compiled):
            return rule.label if compiled.search(x[column]) else ABSTAIN
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
    expected = PandasLFApplier([_snorkel_lf(r) for r in rules]).apply(frame, progress_bar=False)

    got = apply_rules(rules, Corpus([r["messages"] for r in rows], [r["metadata"] for r in rows]))

    np.testing.assert_array_equal(got, expected)
    # The data set really exercises what the parity is about.
    voting = (got != ABSTAIN).sum(axis=1)
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
