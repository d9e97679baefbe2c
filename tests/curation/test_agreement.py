"""Agreement statistics against published worked examples and scikit-learn."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from curation.labeling.agreement import (
    PairAgreement,
    cohen_kappa,
    disagreements,
    fleiss_kappa,
    interpret,
    krippendorff_alpha,
    pairwise_cohen,
    per_label_agreement,
)

# Fleiss (1971), as worked on Wikipedia's "Fleiss' kappa": 10 subjects, 14 raters each,
# how many raters put each subject in each of 5 categories.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", nominal data:
# 4 coders, 12 units, None where a coder gave no value. Nominal alpha is 0.743.
KRIPPENDORFF_UNITS = [
    [1, 1, None, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [None, 5, 5, 5],
    [None, None, 1, 1],
    [None, 3, None, None],
]

# Two annotators; ann and bob disagree on u2 only, cat labelled u5 alone.
SMALL = {
    "u1": {"ann": "x", "bob": "x"},
    "u2": {"ann": "x", "bob": "y"},
    "u3": {"ann": "y", "bob": "y"},
    "u4": {"ann": "z", "bob": "z"},
    "u5": {"cat": "w"},
}


def fleiss_annotations(table: list[list[int]]) -> dict[int, dict[int, int]]:
    """One unit per row; rater r of a row gets the category its counts put it in."""
    return {
        subject: dict(enumerate(category for category, count in enumerate(row) for _ in range(count)))
        for subject, row in enumerate(table)
    }


def krippendorff_annotations() -> dict[int, dict[str, int]]:
    return {
        unit: {coder: value for coder, value in zip("ABCD", values, strict=True) if value is not None}
        for unit, values in enumerate(KRIPPENDORFF_UNITS, start=1)
    }


def two_raters(a: list, b: list) -> dict[int, dict[str, object]]:
    return {unit: {"a": x, "b": y} for unit, (x, y) in enumerate(zip(a, b, strict=True))}


# cohen_kappa


@pytest.mark.parametrize("categories", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cohen_kappa_matches_scikit_learn(categories: int, seed: int) -> None:
    rng = random.Random(seed)
    labels = [f"c{i}" for i in range(categories)]
    a = [rng.choice(labels) for _ in range(60)]
    # b copies a two times in three, so kappa is well away from zero.
    b = [x if rng.random() < 0.66 else rng.choice(labels) for x in a]

    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_cohen_kappa_gives_the_textbook_value() -> None:
    # Wikipedia's "Cohen's kappa": 50 units, 20 yes-yes, 5 yes-no, 10 no-yes, 15 no-no.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15

    assert cohen_kappa(a, b) == pytest.approx(0.4, abs=1e-12)


def test_cohen_kappa_is_one_for_perfect_agreement() -> None:
    assert cohen_kappa(["x", "y", "z", "x"], ["x", "y", "z", "x"]) == 1.0


def test_cohen_kappa_is_one_when_both_raters_used_one_and_the_same_label() -> None:
    assert cohen_kappa(["x", "x", "x"], ["x", "x", "x"]) == 1.0


def test_cohen_kappa_needs_two_units() -> None:
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["x"], ["x"]) is None


def test_cohen_kappa_rejects_label_lists_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="got 2 and 3"):
        cohen_kappa(["x", "y"], ["x", "y", "y"])


# pairwise_cohen


def test_pairwise_cohen_covers_every_pair_with_two_common_units_sorted_by_id() -> None:
    annotations = {
        1: {"bob": "x", "ann": "x", "cat": "x"},
        2: {"bob": "y", "ann": "y", "cat": "x"},
        3: {"bob": "y", "ann": "x"},
        4: {"bob": "x", "ann": "x", "dan": "y"},
    }

    pairs = pairwise_cohen(annotations)

    assert [(p.annotator_a, p.annotator_b, p.units) for p in pairs] == [
        ("ann", "bob", 4),
        ("ann", "cat", 2),
        ("bob", "cat", 2),
    ]
    assert pairs[0] == PairAgreement(
        annotator_a="ann",
        annotator_b="bob",
        units=4,
        kappa=cohen_kappa(["x", "y", "x", "x"], ["x", "y", "y", "x"]),
        observed=0.75,
    )
    assert pairs[1].observed == 0.5


def test_pairwise_cohen_is_empty_without_annotations() -> None:
    assert pairwise_cohen({}) == []


# fleiss_kappa


def test_fleiss_kappa_gives_the_value_of_fleiss_worked_example() -> None:
    assert round(fleiss_kappa(fleiss_annotations(FLEISS_TABLE)), 3) == 0.210


def test_fleiss_kappa_matches_the_count_table_formula_for_a_constant_number_of_raters() -> None:
    table = np.array(FLEISS_TABLE, dtype=float)
    raters = table.sum(axis=1)[0]
    p_j = table.sum(axis=0) / table.sum()
    p_i = (np.square(table).sum(axis=1) - raters) / (raters * (raters - 1))
    expected = (p_i.mean() - np.square(p_j).sum()) / (1 - np.square(p_j).sum())

    assert fleiss_kappa(fleiss_annotations(FLEISS_TABLE)) == pytest.approx(expected, abs=1e-12)


def test_fleiss_kappa_weighs_units_with_different_numbers_of_raters() -> None:
    annotations = {1: {"a": "x", "b": "x", "c": "y"}, 2: {"a": "y", "b": "y"}}
    # P_1 = 2/6, P_2 = 1, so P̄ = 2/3; shares x 2/5, y 3/5, so P_e = 13/25.
    expected = (2 / 3 - 13 / 25) / (1 - 13 / 25)

    assert fleiss_kappa(annotations) == pytest.approx(expected, abs=1e-12)


def test_fleiss_kappa_is_one_for_perfect_agreement() -> None:
    assert fleiss_kappa({1: {"a": "x", "b": "x", "c": "x"}, 2: {"a": "y", "b": "y"}}) == 1.0


def test_fleiss_kappa_is_one_when_everyone_used_one_and_the_same_label() -> None:
    assert fleiss_kappa({1: {"a": "x", "b": "x"}, 2: {"a": "x", "b": "x", "c": "x"}}) == 1.0


# krippendorff_alpha


def test_krippendorff_alpha_gives_the_value_of_krippendorffs_nominal_example() -> None:
    assert round(krippendorff_alpha(krippendorff_annotations()), 3) == 0.743


def test_krippendorff_alpha_is_one_for_perfect_agreement() -> None:
    assert krippendorff_alpha({1: {"a": "x", "b": "x", "c": "x"}, 2: {"a": "y", "b": "y"}}) == 1.0


def test_krippendorff_alpha_is_scotts_pi_corrected_for_sample_size_for_two_raters() -> None:
    # With two raters, N units and no missing values, 1 - alpha = (2N - 1) / 2N * (1 - pi).
    rng = random.Random(7)
    a = [rng.choice("xyz") for _ in range(30)]
    b = [x if rng.random() < 0.7 else rng.choice("xyz") for x in a]
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    chance = sum(((a.count(c) + b.count(c)) / (2 * n)) ** 2 for c in "xyz")
    pi = (observed - chance) / (1 - chance)

    alpha = krippendorff_alpha(two_raters(a, b))

    assert alpha == pytest.approx(1 - (2 * n - 1) / (2 * n) * (1 - pi), abs=1e-12)
    assert alpha > pi


def test_krippendorff_alpha_is_undefined_without_variation() -> None:
    assert krippendorff_alpha({1: {"a": "x", "b": "x"}, 2: {"a": "x", "b": "x"}}) is None


# per_label_agreement and disagreements


def test_per_label_agreement_scores_each_label_against_the_rest() -> None:
    # x against the rest: values (1,1) (1,0) (0,0) (0,0), so n = 8 with three 1s, and one
    # disagreeing unit: alpha = 1 - 7 * 2 / (64 - 9 - 25) = 8/15. Same for y; z is never
    # confused; w only appears on a unit with one label.
    assert per_label_agreement(SMALL) == {
        "x": pytest.approx(8 / 15, abs=1e-12),
        "y": pytest.approx(8 / 15, abs=1e-12),
        "z": 1.0,
        "w": None,
    }


def test_overall_alpha_of_the_small_data_set_is_two_thirds() -> None:
    # n = 8 with counts x 3, y 3, z 2: alpha = 1 - 7 * 2 / (64 - 22).
    assert krippendorff_alpha(SMALL) == pytest.approx(2 / 3, abs=1e-12)


def test_disagreements_lists_units_with_differing_labels_in_input_order() -> None:
    annotations = {
        "u9": {"ann": "x", "bob": "y"},
        "u1": {"ann": "x", "bob": "x"},
        "u5": {"ann": "x", "bob": "x", "cat": "z"},
        "u3": {"ann": "y"},
    }

    assert disagreements(annotations) == ["u9", "u5"]


# edge cases


def test_integer_ids_and_labels_work() -> None:
    annotations = {10: {1: 0, 2: 0}, 11: {1: 1, 2: 0}, 12: {1: 1, 2: 1}, 13: {1: 2, 2: 2}}
    renamed = {f"u{u}": {f"a{a}": f"l{label}" for a, label in given.items()} for u, given in annotations.items()}

    assert krippendorff_alpha(annotations) == krippendorff_alpha(renamed)
    assert fleiss_kappa(annotations) == fleiss_kappa(renamed)
    assert pairwise_cohen(annotations)[0].kappa == pairwise_cohen(renamed)[0].kappa
    assert disagreements(annotations) == [11]
    assert set(per_label_agreement(annotations)) == {0, 1, 2}


def test_units_with_a_single_label_are_ignored() -> None:
    lonely = {**SMALL, "u6": {"ann": "x"}, "u7": {"bob": "z"}}

    assert krippendorff_alpha(lonely) == krippendorff_alpha(SMALL)
    assert fleiss_kappa(lonely) == fleiss_kappa(SMALL)
    assert disagreements(lonely) == disagreements(SMALL)


def test_empty_input_gives_none_or_nothing() -> None:
    assert fleiss_kappa({}) is None
    assert krippendorff_alpha({}) is None
    assert per_label_agreement({}) == {}
    assert disagreements({}) == []
    assert krippendorff_alpha({"u1": {"ann": "x"}}) is None
    assert fleiss_kappa({"u1": {"ann": "x"}}) is None


# interpret


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (None, "not enough data"),
        (-0.1, "poor"),
        (0.0, "slight"),
        (0.20, "slight"),
        (0.21, "fair"),
        (0.40, "fair"),
        (0.5, "moderate"),
        (0.61, "substantial"),
        (0.80, "substantial"),
        (0.81, "almost perfect"),
        (1.0, "almost perfect"),
    ],
)
def test_interpret_names_the_landis_and_koch_band(value: float | None, band: str) -> None:
    assert interpret(value) == band
