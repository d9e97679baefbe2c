"""How far annotators agree with each other: Cohen's, Fleiss' and Krippendorff's statistics.

Plain data in, plain data out, and no Django: a service turns the database rows into
`{unit_id: {annotator_id: label}}` and stores or shows what comes back. Units and annotators
are any hashable ids, labels any hashable category. An annotator may have labelled only
some units; a unit with fewer than two labels says nothing about agreement and is skipped.

Counts are kept in integers and `Fraction`s until the last division, so that the
degenerate cases (everyone used one and the same category) are recognised exactly rather
than through a float that happens to come out as 0.9999999.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations

Annotations = Mapping[Hashable, Mapping[Hashable, Hashable]]


def gettext_noop(message: str) -> str:
    """Marks a string for `makemessages` without importing Django.

    `interpret` returns English keys for templates to translate; xgettext finds them by
    this function's name, so they land in the catalogue like every other string.
    """
    return message


NOT_ENOUGH_DATA = gettext_noop("not enough data")
# Landis & Koch (1977): upper bound of each band (inclusive) and its name.
BANDS: tuple[tuple[float, str], ...] = (
    (0.20, gettext_noop("slight")),
    (0.40, gettext_noop("fair")),
    (0.60, gettext_noop("moderate")),
    (0.80, gettext_noop("substantial")),
)
POOR = gettext_noop("poor")
ALMOST_PERFECT = gettext_noop("almost perfect")


@dataclass(frozen=True)
class PairAgreement:
    """Cohen's kappa of two annotators over the units they both labelled."""

    annotator_a: Hashable
    annotator_b: Hashable
    units: int
    kappa: float | None
    observed: float  # share of the common units on which they gave the same label


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters' labels on the same units, given in the same order.

    None for fewer than two units. When both raters used one and the same category
    throughout, chance agreement is 1 and the formula is 0/0; they did agree on every
    unit, so this returns 1.0 (scikit-learn returns nan there).
    """
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa needs labels for the same units: got {len(a)} and {len(b)}")
    n = len(a)
    if n < 2:
        return None
    agreed = sum(x == y for x, y in zip(a, b, strict=True))
    counts_a, counts_b = Counter(a), Counter(b)
    # kappa = (p_o - p_e) / (1 - p_e) with p_o = agreed / n and p_e = chance / n²,
    # multiplied through by n² to stay in integers.
    chance = sum(count * counts_b[label] for label, count in counts_a.items())
    if chance == n * n:
        return 1.0
    return (n * agreed - chance) / (n * n - chance)


def pairwise_cohen(annotations: Annotations) -> list[PairAgreement]:
    """Cohen's kappa for every pair of annotators with at least two units in common.

    Pairs come sorted by annotator id (the smaller id first), so a table of them reads
    the same every time.
    """
    by_annotator: dict[Hashable, dict[Hashable, Hashable]] = {}
    for unit, labels in annotations.items():
        for annotator, label in labels.items():
            by_annotator.setdefault(annotator, {})[unit] = label
    pairs = []
    for first, second in combinations(sorted(by_annotator), 2):
        labels_a, labels_b = by_annotator[first], by_annotator[second]
        common = [unit for unit in labels_a if unit in labels_b]
        if len(common) < 2:
            continue
        a = [labels_a[unit] for unit in common]
        b = [labels_b[unit] for unit in common]
        agreed = sum(x == y for x, y in zip(a, b, strict=True))
        pairs.append(
            PairAgreement(
                annotator_a=first,
                annotator_b=second,
                units=len(common),
                kappa=cohen_kappa(a, b),
                observed=agreed / len(common),
            )
        )
    return pairs


def fleiss_kappa(annotations: Annotations) -> float | None:
    """Fleiss' kappa over the units with at least two labels.

    Fleiss (1971) assumes every unit has the same number of raters n. Here each unit i
    has its own n_i: its agreement is P_i = Σ_j n_ij(n_ij - 1) / (n_i(n_i - 1)), the
    share of ordered pairs of its raters who agree; P̄ is the mean of the P_i, p_j the
    share of all assignments that went to category j, and P_e = Σ_j p_j². With a
    constant n this is exactly Fleiss' formula.

    None when no unit has two labels. When a single category was used throughout,
    P̄ = P_e = 1 and the formula is 0/0; as with `cohen_kappa`, that is 1.0.
    """
    rows = _pairable_counts(annotations)
    if not rows:
        return None
    p_bar = sum((_unit_agreement(counts) for counts in rows), Fraction(0)) / len(rows)
    totals = _marginals(rows)
    assignments = sum(totals.values())
    p_e = sum((Fraction(count, assignments) ** 2 for count in totals.values()), Fraction(0))
    if p_e == 1:
        return 1.0
    return float((p_bar - p_e) / (1 - p_e))


def krippendorff_alpha(annotations: Annotations) -> float | None:
    """Krippendorff's alpha for nominal labels, through the coincidence matrix.

    alpha = 1 - D_o / D_e, observed over expected disagreement. It copes with missing
    labels and a varying number of annotators per unit; units with fewer than two labels
    are dropped. None when nothing is pairable, or when every pairable label is the same
    (D_e = 0): Krippendorff treats data without variation as saying nothing about
    reliability, which is also why it can differ from `fleiss_kappa` there.
    """
    coincidences = _coincidences(_pairable_counts(annotations))
    marginals: Counter[Hashable] = Counter()
    for (c, _k), weight in coincidences.items():
        marginals[c] += weight
    n = sum(marginals.values())
    # Nominal distance is 1 for c != k and 0 otherwise, so
    # D_o = Σ_{c≠k} o_ck / n and D_e = Σ_{c≠k} n_c n_k / (n(n - 1)).
    observed = sum((w for (c, k), w in coincidences.items() if c != k), Fraction(0))
    expected = n * n - sum((m * m for m in marginals.values()), Fraction(0))
    if n == 0 or expected == 0:
        return None
    return float(1 - (n - 1) * observed / expected)


def per_label_agreement(annotations: Annotations) -> dict[Hashable, float | None]:
    """For each label, Krippendorff's alpha of "this label" against "any other label".

    Shows which labels annotators find easy to tell apart and which they confuse; an
    overall alpha hides that. Labels come in order of first appearance, including labels
    seen only on single-label units, whose alpha is None.
    """
    labels = dict.fromkeys(label for unit in annotations.values() for label in unit.values())
    return {label: krippendorff_alpha(_one_against_rest(annotations, label)) for label in labels}


def disagreements(annotations: Annotations) -> list[Hashable]:
    """Units with at least two labels that are not all the same, in input order."""
    return [unit for unit, labels in annotations.items() if len(labels) >= 2 and len(set(labels.values())) > 1]


def interpret(value: float | None) -> str:
    """A plain-English band for a kappa or alpha (Landis & Koch, 1977).

    Returns the English key; templates translate it. Each band includes its upper bound.
    """
    if value is None:
        return NOT_ENOUGH_DATA
    if value < 0:
        return POOR
    for upper, band in BANDS:
        if value <= upper:
            return band
    return ALMOST_PERFECT


def _one_against_rest(annotations: Annotations, label: Hashable) -> dict[Hashable, dict[Hashable, bool]]:
    """The same annotations with each label replaced by whether it is `label`."""
    return {unit: {who: value == label for who, value in given.items()} for unit, given in annotations.items()}


def _pairable_counts(annotations: Annotations) -> list[Counter[Hashable]]:
    """Label counts of each unit that has at least two labels."""
    return [Counter(labels.values()) for labels in annotations.values() if len(labels) >= 2]


def _unit_agreement(counts: Counter[Hashable]) -> Fraction:
    """Fleiss' P_i: the share of ordered pairs of a unit's annotators who gave the same label."""
    n = sum(counts.values())
    return Fraction(sum(c * (c - 1) for c in counts.values()), n * (n - 1))


def _marginals(rows: list[Counter[Hashable]]) -> Counter[Hashable]:
    totals: Counter[Hashable] = Counter()
    for counts in rows:
        totals.update(counts)
    return totals


def _coincidences(rows: list[Counter[Hashable]]) -> dict[tuple[Hashable, Hashable], Fraction]:
    """Krippendorff's coincidence matrix o_ck from per-unit label counts.

    Each unit with m_u labels adds its ordered pairs of labels from different annotators,
    each weighted 1 / (m_u - 1), so every pairable label contributes exactly 1 in total.
    """
    matrix: dict[tuple[Hashable, Hashable], Fraction] = {}
    for counts in rows:
        m = sum(counts.values())
        for c, m_c in counts.items():
            for k, m_k in counts.items():
                pairs = m_c * (m_c - 1) if c == k else m_c * m_k
                if pairs:
                    matrix[c, k] = matrix.get((c, k), Fraction(0)) + Fraction(pairs, m - 1)
    return matrix
