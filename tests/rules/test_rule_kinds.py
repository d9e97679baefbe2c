"""Keywords across scripts and widths, metadata searched like text, and combined rules."""

from __future__ import annotations

import numpy as np
import pytest

from curation.rules import spec as S
from curation.rules.engine import ABSTAIN, Corpus, apply_rules, match_spans
from curation.rules.spec import RuleError, RuleSpec, clean_params, combine_check


def votes(rule: RuleSpec, texts: list[str], metadata: list[dict] | None = None) -> list[bool]:
    corpus = Corpus([[{"role": "user", "content": t}] for t in texts], metadata or [])
    return (apply_rules([rule], corpus)[:, 0] != ABSTAIN).tolist()


def keyword_rule(keywords: list[str], **params) -> RuleSpec:
    return RuleSpec("k", S.KEYWORDS, 0, S.USER, clean_params(S.KEYWORDS, {"keywords": keywords, **params}))


def test_a_japanese_keyword_is_found_inside_a_sentence_with_whole_word_on():
    rule = keyword_rule(["返品"])
    assert rule.params["whole_word"] is True
    assert votes(rule, ["商品の返品をしたい", "返品", "へんぴん", "返金"]) == [True, True, False, False]


def test_whole_word_keeps_latin_words_apart_but_not_from_cjk_neighbours():
    rule = keyword_rule(["refund", "PS5"])
    texts = ["please refund me", "refunding", "my_refund", "PS5を買った", "返金refundして", "PS55"]
    assert votes(rule, texts) == [True, False, False, True, True, False]


def test_keywords_fold_width_by_default_and_not_when_turned_off():
    texts = ["ＲＥＦＵＮＤ please", "ｶｽﾀﾏｰ", "refund"]
    assert votes(keyword_rule(["refund", "カスタマー"]), texts) == [True, True, True]
    assert votes(keyword_rule(["refund", "カスタマー"], fold_width=False), texts) == [False, False, True]
    # A full-width keyword finds the plain form too.
    assert votes(keyword_rule(["ＲＥＦＵＮＤ"]), ["refund"]) == [True]


def test_a_keyword_highlight_covers_the_full_width_original():
    text = "お願い: ＲＥＦＵＮＤ"
    assert [text[a:b] for a, b in match_spans(keyword_rule(["refund"]), text)] == ["ＲＥＦＵＮＤ"]


def test_metadata_fields_are_searched_with_keywords_and_patterns():
    tags = RuleSpec(
        "m", S.METADATA, 0, S.USER, clean_params(S.METADATA, {"key": "tags", "op": "keywords", "keywords": "vip, 返品"})
    )
    metadata = [{"tags": ["VIP", "new"]}, {"tags": ["返品希望"]}, {"tags": []}, {}, {"tags": "ｖｉｐ"}]
    assert votes(tags, [""] * 5, metadata) == [True, True, False, False, True]
    pattern = RuleSpec(
        "p", S.METADATA, 0, S.USER, clean_params(S.METADATA, {"key": "order", "op": "regex", "pattern": r"^\d{5}$"})
    )
    metadata = [{"order": "１２３４５"}, {"order": 12345}, {"order": "1234"}, {}]
    assert votes(pattern, [""] * 4, metadata) == [True, True, False, False]


def _rules() -> list[RuleSpec]:
    a = keyword_rule(["refund"])
    return [
        RuleSpec(1, S.KEYWORDS, 0, S.USER, a.params),
        RuleSpec(2, S.KEYWORDS, 1, S.USER, keyword_rule(["parcel"]).params),
        RuleSpec(3, S.COMBINE, 2, S.USER, clean_params(S.COMBINE, {"op": "and", "rules": [1, 2]})),
        RuleSpec(4, S.COMBINE, 2, S.USER, clean_params(S.COMBINE, {"op": "or", "rules": "1, 2"})),
        RuleSpec(5, S.COMBINE, 0, S.USER, clean_params(S.COMBINE, {"op": "not", "rules": [4]})),
    ]


def test_combined_rules_vote_where_their_combination_holds():
    texts = ["refund the parcel", "refund", "parcel", "hello"]
    L = apply_rules(_rules(), Corpus([[{"role": "user", "content": t}] for t in texts]))
    assert L.tolist() == [
        [0, 1, 2, 2, ABSTAIN],
        [0, ABSTAIN, ABSTAIN, 2, ABSTAIN],
        [ABSTAIN, 1, ABSTAIN, 2, ABSTAIN],
        [ABSTAIN, ABSTAIN, ABSTAIN, ABSTAIN, 0],
    ]


def test_a_combination_can_use_rules_without_a_column_of_their_own():
    rules = _rules()
    corpus = Corpus([[{"role": "user", "content": t}] for t in ["refund the parcel", "refund"]])
    L = apply_rules([rules[2]], corpus, operands=rules[:2])
    assert L.shape == (2, 1) and L[:, 0].tolist() == [2, ABSTAIN]


def test_the_applier_refuses_a_combination_of_rules_it_was_not_given():
    rules = _rules()
    with pytest.raises(RuleError, match="not among the rules applied"):
        apply_rules([rules[2]], Corpus([[{"role": "user", "content": "x"}]]))
    loop = RuleSpec(9, S.COMBINE, 0, S.USER, {"op": "not", "rules": [9]})
    with pytest.raises(RuleError, match="reaches itself"):
        apply_rules([loop], Corpus([[{"role": "user", "content": "x"}]]))


def test_combine_check_refuses_missing_rules_self_reference_and_cycles():
    saved = {
        1: (S.KEYWORDS, {}),
        2: (S.KEYWORDS, {}),
        3: (S.COMBINE, {"op": "and", "rules": [1, 4]}),
        4: (S.COMBINE, {"op": "not", "rules": [2]}),
    }
    combine_check(None, {"op": "or", "rules": [3, 4]}, saved)  # a new rule over existing ones
    with pytest.raises(RuleError, match="There is no rule 7"):
        combine_check(None, {"op": "or", "rules": [1, 7]}, saved)
    with pytest.raises(RuleError, match="cannot combine itself"):
        combine_check(4, {"op": "or", "rules": [1, 4]}, saved)
    with pytest.raises(RuleError, match="cycle") as error:
        combine_check(4, {"op": "not", "rules": [3]}, saved)  # 4 → 3 → 4
    assert error.value.field == "rules"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"op": "not", "rules": [1, 2]}, "exactly one"),
        ({"op": "and", "rules": [1]}, "at least two"),
        ({"op": "xor", "rules": [1, 2]}, "Choose and"),
        ({"op": "or", "rules": "1, two"}, "by its number"),
    ],
)
def test_combinations_are_checked(params, message):
    with pytest.raises(RuleError, match=message):
        clean_params(S.COMBINE, params)


def test_a_combination_is_a_column_of_the_analysis_like_any_rule():
    from curation.rules.analysis import rule_stats

    texts = ["refund the parcel", "refund", "parcel", "hello"]
    L = apply_rules(_rules(), Corpus([[{"role": "user", "content": t}] for t in texts]))
    stats = rule_stats(L, np.array([2, 0, ABSTAIN, 0]))
    assert [s["hits"] for s in stats] == [2, 2, 1, 3, 1]
    assert stats[2]["coverage"] == 0.25 and stats[2]["correct"] == 1
