"""Win rates, intervals, position bias, agreement and the verdict, on fixed counts computed by hand.

Wilson's interval with z = 1.96 (z² = 3.8416): centre = (p + z²/2n) / (1 + z²/n), half width =
z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n).
"""

from __future__ import annotations

import pytest

from training.evaluation.stats import agreement, position_bias, verdict, wilson_interval, win_rate


def test_wilson_interval_68_of_100():
    # p = 0.68: centre = 0.699208 / 1.038416 = 0.673341; half = 1.96 * sqrt(0.002176 + 0.00009604)
    # / 1.038416 = 0.089968, so [0.5834, 0.7633].
    low, high = wilson_interval(68, 100)
    assert low == pytest.approx(0.5834, abs=1e-4)
    assert high == pytest.approx(0.7633, abs=1e-4)


def test_wilson_interval_at_the_edges():
    # 0 of 10: centre = half = 0.19208 / 1.38416 = 0.13877, so [0, 0.27754].
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.27754, abs=1e-5)
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(1 - 0.27754, abs=1e-5)
    assert high == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_win_rate_counts_a_tie_as_half_a_win():
    result = win_rate(60, 30, 10)
    # (60 + 10/2) / 100 = 0.65: centre = 0.669208 / 1.038416 = 0.644451; half = 1.96 *
    # sqrt(0.002275 + 0.00009604) / 1.038416 = 0.091908, so [0.5525, 0.7364].
    assert result["rate"] == pytest.approx(0.65)
    assert result["low"] == pytest.approx(0.5525, abs=1e-4)
    assert result["high"] == pytest.approx(0.7364, abs=1e-4)
    assert result["n"] == 100
    assert (result["wins"], result["losses"], result["ties"]) == (60, 30, 10)
    assert result["rate_without_ties"] == pytest.approx(60 / 90)
    assert (result["low_without_ties"], result["high_without_ties"]) == pytest.approx(wilson_interval(60, 90))


def test_win_rate_of_ties_only_and_of_nothing():
    result = win_rate(0, 0, 10)
    assert result["rate"] == 0.5
    assert result["rate_without_ties"] is None
    nothing = win_rate(0, 0, 0)
    assert nothing["rate"] is None
    assert nothing["low"] is None
    assert nothing["n"] == 0
    with pytest.raises(ValueError):
        win_rate(-1, 3)


def test_position_bias():
    # 70 of 100 non-tie judgments for the left answer: centre = 0.719208 / 1.038416 = 0.692601;
    # half = 1.96 * sqrt(0.0021 + 0.00009604) / 1.038416 = 0.088449, so [0.6042, 0.7811].
    result = position_bias(70, 30, 5)
    assert result["left_rate"] == pytest.approx(0.7)
    assert result["low"] == pytest.approx(0.6042, abs=1e-4)
    assert result["high"] == pytest.approx(0.7811, abs=1e-4)
    assert result["n"] == 100
    assert result["ties"] == 5
    assert result["biased"] is True
    assert position_bias(52, 48)["biased"] is False
    assert position_bias(30, 70)["biased"] is True
    assert position_bias(0, 0, 3) == {"left_rate": None, "low": None, "high": None, "n": 0, "ties": 3, "biased": False}


def test_agreement_on_a_fixed_table():
    table = {
        "q1": ["A", "A", "A"],
        "q2": ["A", "A", "B"],
        "q3": ["B", "B", "tie"],
        "q4": ["tie", "tie", "tie"],
        "q5": ["A"],  # one judgment: says nothing about agreement
    }
    result = agreement(table)
    assert result["items"] == 4
    assert result["judgments"] == 12
    # Share of agreeing pairs per item: 1, 1/3, 1/3, 1; mean 2/3.
    assert result["raw_agreement"] == pytest.approx(2 / 3)
    # Fleiss: P̄ = 2/3; A 5, B 3, tie 4 of 12 judgments, so P_e = (25 + 9 + 16) / 144 = 25/72;
    # kappa = (2/3 - 25/72) / (1 - 25/72) = 23/47.
    assert result["fleiss_kappa"] == pytest.approx(23 / 47)
    # Krippendorff: coincidences (each pair weighted 1/(3 - 1)) off the diagonal: A-B 1, B-A 1,
    # B-tie 1, tie-B 1, so 4; alpha = 1 - (n - 1) * 4 / (n² - Σ n_c²) = 1 - 11 * 4 / (144 - 50) = 25/47.
    assert result["krippendorff_alpha"] == pytest.approx(25 / 47)
    assert result["band"] == "moderate"


def test_agreement_of_nothing():
    result = agreement({"q1": ["A"]})
    assert result["items"] == 0
    assert result["raw_agreement"] is None
    assert result["fleiss_kappa"] is None
    assert result["krippendorff_alpha"] is None
    assert result["band"] == "not enough data"


def test_verdict_names_the_winner():
    assert verdict("tuned", "few-shot base", 68, 32) == "tuned wins 68% [58, 76] over few-shot base on 100 judged pairs"
    # The loser's 30% is the winner's 70%: Wilson [0.6042, 0.7811].
    assert verdict("tuned", "base", 30, 70) == "base wins 70% [60, 78] over tuned on 100 judged pairs"


def test_verdict_without_a_clear_winner():
    # 52 of 100: centre = 0.539208 / 1.038416 = 0.519261; half = 1.96 * sqrt(0.002496 + 0.00009604)
    # / 1.038416 = 0.096096, so [0.4232, 0.6154].
    assert verdict("tuned", "base", 52, 48) == "no clear winner: tuned wins 52% [42, 62] over base on 100 judged pairs"
    # One pair: 100% [21, 100] is no evidence.
    assert verdict("A", "B", 1, 0) == "no clear winner: A wins 100% [21, 100] over B on 1 judged pair"


def test_verdict_says_how_ties_count():
    assert (
        verdict("A", "B", 60, 30, 10)
        == "A wins 65% [55, 74] over B on 100 judged pairs (10 ties counted as half a win)"
    )
    assert verdict("A", "B", 0, 0, 1).endswith("on 1 judged pair (1 tie counted as half a win)")
    assert verdict("A", "B", 0, 0) == "no judged pairs between A and B"
