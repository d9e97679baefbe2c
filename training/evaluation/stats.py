"""Statistics of pairwise judgments: win rates with intervals, position bias, judge agreement.

Plain Python (no Django): counts in, numbers and one English sentence out (a view translates
around it).

A pairwise judgment compares an answer of model A with one of model B for the same prompt and
says A, B or tie. The win rate counts a tie as half a win, so 10 wins, 10 losses and 80 ties is
an even 50%, not 10% (the rate without ties is given as well). Its 95% interval is Wilson's score
interval on the tie-adjusted count (wins + ties / 2 of n): exact enough for the counts of an
evaluation (tens to thousands of pairs), never outside 0..1, sensible at 0 and n, and
deterministic, unlike a bootstrap. With many ties it is a little wider than it needs to be.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from curation.labeling.agreement import fleiss_kappa, interpret, krippendorff_alpha

Z_95 = 1.96  # the two-sided 95% quantile of the normal distribution, as usually rounded


def wilson_interval(wins: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval of a proportion `wins` / `n` (95% by default).

    `wins` may be fractional (ties counted as half). With n = 0 nothing is known: (0.0, 1.0).
    68 of 100 gives (0.583, 0.763).
    """
    if n < 0 or wins < 0 or wins > n:
        raise ValueError(f"wilson_interval needs 0 <= wins <= n: got wins={wins!r}, n={n!r}.")
    if n == 0:
        return 0.0, 1.0
    p = wins / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rate(wins: int, losses: int, ties: int = 0, *, z: float = Z_95) -> dict[str, Any]:
    """How often A beats B, ties counting as half a win, with Wilson's 95% interval.

    {"rate", "low", "high", "n" (all judged pairs), "wins", "losses", "ties",
    "rate_without_ties", "low_without_ties", "high_without_ties" (wins / (wins + losses), the
    interval on those decisive pairs alone)}. Rates and bounds are None when there is nothing to
    compute them from.
    """
    for name, value in (("wins", wins), ("losses", losses), ("ties", ties)):
        if value < 0:
            raise ValueError(f"{name} is {value!r}; counts cannot be negative.")
    n = wins + losses + ties
    result: dict[str, Any] = {"n": n, "wins": wins, "losses": losses, "ties": ties}
    if n:
        score = wins + ties / 2
        low, high = wilson_interval(score, n, z)
        result.update(rate=score / n, low=low, high=high)
    else:
        result.update(rate=None, low=None, high=None)
    decisive = wins + losses
    if decisive:
        low, high = wilson_interval(wins, decisive, z)
        result.update(rate_without_ties=wins / decisive, low_without_ties=low, high_without_ties=high)
    else:
        result.update(rate_without_ties=None, low_without_ties=None, high_without_ties=None)
    return result


def position_bias(left_wins: int, right_wins: int, ties: int = 0, *, z: float = Z_95) -> dict[str, Any]:
    """How often the judge prefers the answer shown first (on the left), among its non-tie judgments.

    The order of the two answers is shuffled, so an unbiased judge picks the left one about half
    the time. {"left_rate", "low", "high" (Wilson 95%), "n" (non-tie judgments), "ties", "biased"
    (the interval leaves out 0.5)}; rate and bounds None when there is no non-tie judgment.
    """
    n = left_wins + right_wins
    if n == 0:
        return {"left_rate": None, "low": None, "high": None, "n": 0, "ties": ties, "biased": False}
    low, high = wilson_interval(left_wins, n, z)
    return {
        "left_rate": left_wins / n,
        "low": low,
        "high": high,
        "n": n,
        "ties": ties,
        "biased": low > 0.5 or high < 0.5,
    }


def agreement(judgments_by_item: Mapping[Hashable, Sequence[Hashable]]) -> dict[str, Any]:
    """How far several judges (or one judge asked several times) agree on the same pairs.

    `judgments_by_item` maps each compared pair to the choices it got ("A", "B", "tie", or any
    nominal labels). Items with fewer than two judgments say nothing about agreement and are
    skipped. {"items", "judgments" (in those items), "raw_agreement" (the mean over items of the
    share of pairs of judgments that agree), "fleiss_kappa", "krippendorff_alpha" (nominal), "band"
    (Landis & Koch's English name for alpha: "moderate"...)}; the statistics are
    `curation.labeling.agreement`'s, None when no item has two judgments.
    """
    table = {item: dict(enumerate(choices)) for item, choices in judgments_by_item.items() if len(choices) >= 2}
    judgments = sum(len(choices) for choices in table.values())
    if not table:
        raw = None
    else:
        shares = []
        for choices in table.values():
            counts: dict[Hashable, int] = {}
            for choice in choices.values():
                counts[choice] = counts.get(choice, 0) + 1
            m = len(choices)
            shares.append(Fraction(sum(c * (c - 1) for c in counts.values()), m * (m - 1)))
        raw = float(sum(shares, Fraction(0)) / len(shares))
    alpha = krippendorff_alpha(table)
    return {
        "items": len(table),
        "judgments": judgments,
        "raw_agreement": raw,
        "fleiss_kappa": fleiss_kappa(table),
        "krippendorff_alpha": alpha,
        "band": interpret(alpha),
    }


def _percent(value: float) -> int:
    """A share as a whole percentage, halves rounded up."""
    return math.floor(value * 100 + 0.5)


def verdict_parts(wins: int, losses: int, ties: int = 0) -> dict[str, Any] | None:
    """What a verdict says, before it is put in words (None without judged pairs): {"swapped"
    (B is the clear winner, so B is named first), "clear" (the 95% interval of the first-named
    leaves out 50%), "rate", "low", "high" (of the first-named, as whole percentages), "n", "ties"}."""
    n = wins + losses + ties
    if n == 0:
        return None
    result = win_rate(wins, losses, ties)
    swapped = result["high"] < 0.5
    if swapped:
        result = win_rate(losses, wins, ties)
    return {
        "swapped": swapped,
        "clear": result["low"] > 0.5,
        "rate": _percent(result["rate"]),
        "low": _percent(result["low"]),
        "high": _percent(result["high"]),
        "n": n,
        "ties": ties,
    }


def verdict(name_a: str, name_b: str, wins: int, losses: int, ties: int = 0) -> str:
    """The result of A against B in plain English, e.g.
    "tuned wins 68% [58, 76] over few-shot base on 100 judged pairs".

    The winner is named first when the 95% interval leaves out 50%; otherwise the sentence starts
    with "no clear winner:" and keeps A first. Ties are counted as half a win, and said so.
    (training/evaluation/judging.py says the same in the reader's language from `verdict_parts`.)
    """
    parts = verdict_parts(wins, losses, ties)
    if parts is None:
        return f"no judged pairs between {name_a} and {name_b}"
    if parts["swapped"]:
        name_a, name_b = name_b, name_a
    prefix = "" if parts["clear"] else "no clear winner: "
    n = parts["n"]
    pairs = "judged pair" if n == 1 else "judged pairs"
    text = f"{prefix}{name_a} wins {parts['rate']}% [{parts['low']}, {parts['high']}] over {name_b} on {n} {pairs}"
    if ties:
        text += f" ({ties} {'tie' if ties == 1 else 'ties'} counted as half a win)"
    return text
