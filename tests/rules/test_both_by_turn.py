"""Keyword rules reading both texts give the same votes when the applier searches the user
and assistant texts apart (which it does when it searches those anyway, to skip a scan)."""

from __future__ import annotations

import random

import pytest

from curation.rules import engine
from curation.rules import spec as S
from curation.rules.engine import ABSTAIN, Corpus, apply_rules, example_texts, stored_corpus, target_text
from curation.rules.spec import RuleSpec, clean_params
from tests.rules.test_engine_parity import text_test

PIECES = [
    "refund",
    "Refund!",
    "refunded",
    "my_refund",
    "parcel",
    "ＰＡＲＣＥＬ",
    "返品",
    "返品したい",
    "log in",
    "log\nin",
    "ship",
    "e\u0301",  # a combining accent after a letter: NFKC composes it
    "\u0301x",  # a message that starts with a combining accent
    "",
    "nothing here",
]
BOTH_RULES = [
    ("any", {"keywords": ["refund", "parcel"]}),
    ("all", {"keywords": ["refund", "parcel"], "mode": "all"}),
    ("sub", {"keywords": ["ship"], "whole_word": False}),
    ("case", {"keywords": ["Refund"], "case_sensitive": True}),
    ("ja", {"keywords": ["返品"]}),
    ("nofold", {"keywords": ["parcel"], "fold_width": False}),
    ("phrase", {"keywords": ["log in"]}),
    ("accent", {"keywords": ["é"], "whole_word": False}),
    ("across", {"keywords": ["refund\nparcel"], "whole_word": False}),  # can span two messages
]


def _conversations(n: int = 600, seed: int = 11) -> list[list[dict]]:
    rng = random.Random(seed)
    result = []
    for _ in range(n):
        messages = [{"role": "system", "content": rng.choice(PIECES)}]
        for turn in range(rng.randint(1, 4)):
            words = [rng.choice(PIECES) for _ in range(rng.randint(0, 3))]
            messages.append({"role": ("user", "assistant")[turn % 2], "content": " ".join(words)})
        result.append(messages)
    return result


def _rules() -> list[RuleSpec]:
    both = [RuleSpec(name, S.KEYWORDS, 0, S.BOTH, clean_params(S.KEYWORDS, p)) for name, p in BOTH_RULES]
    # Rules that make the applier search the user and the assistant texts anyway.
    turns = [
        RuleSpec("user", S.KEYWORDS, 1, S.USER, clean_params(S.KEYWORDS, {"keywords": ["nothing"]})),
        RuleSpec("assistant", S.REGEX, 1, S.ASSISTANT, clean_params(S.REGEX, {"pattern": r"here$"})),
        RuleSpec("user_raw", S.KEYWORDS, 1, S.USER, clean_params(S.KEYWORDS, {"keywords": ["x"], "fold_width": False})),
        RuleSpec(
            "assistant_raw", S.REGEX, 1, S.ASSISTANT, clean_params(S.REGEX, {"pattern": "x", "fold_width": False})
        ),
    ]
    return [*both, *turns]


def test_the_applier_searches_both_texts_by_turn_here():
    sets, _searches = engine._plan(_rules())  # "across" holds a newline: the joined text for it
    assert ("text", S.BOTH, True) in sets
    sets, _searches = engine._plan([r for r in _rules() if r.key != "across"])
    assert ("text", S.BOTH, True) not in sets and ("text", S.BOTH, False) not in sets


@pytest.mark.parametrize("stored", [False, True])
def test_votes_on_both_texts_are_those_of_python_re_on_the_joined_text(stored):
    conversations = _conversations()
    rules = [r for r in _rules() if r.key != "across"]
    corpus = (
        stored_corpus([example_texts(m) for m in conversations], [], list(range(len(conversations))))
        if stored
        else Corpus(conversations)
    )
    got = apply_rules(rules, corpus)
    for j, rule in enumerate(rules):
        test = text_test(rule.params)
        expected = [test(target_text(m, rule.target)) for m in conversations]
        assert [bool(v != ABSTAIN) for v in got[:, j]] == expected, rule.key
    assert all((got[:, j] != ABSTAIN).any() and (got[:, j] == ABSTAIN).any() for j in range(len(BOTH_RULES) - 1))


def test_a_keyword_that_can_span_two_messages_is_searched_in_the_joined_text():
    conversations = [
        [{"role": "user", "content": "refund"}, {"role": "assistant", "content": "parcel"}],
        [{"role": "user", "content": "refund"}, {"role": "assistant", "content": "nothing here"}],
    ]
    got = apply_rules(_rules(), Corpus(conversations))
    assert [bool(v != ABSTAIN) for v in got[:, [k for k, _ in BOTH_RULES].index("across")]] == [True, False]
