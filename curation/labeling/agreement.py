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
    # Σ_i P_i, summed in integers per number of raters n_i, one division per n_i.
    agreeing: Counter[int] = Counter()
    for counts, units in rows:
        agreeing[sum(counts.values())] += units * sum(c * (c - 1) for c in counts.values())
    p_bar = sum((Fraction(pairs, n * (n - 1)) for n, pairs in agreeing.items()), Fraction(0))
    p_bar /= sum(units for _counts, units in rows)
    totals = _marginals(rows)
    assignments = sum(totals.values())
    p_e = Fraction(sum(count * count for count in totals.values()), assignments * assignments)
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
    rows = _pairable_counts(annotations)
    return _alpha(_marginals(rows), _disagreeing_pairs(rows))


def per_label_agreement(annotations: Annotations) -> dict[Hashable, float | None]:
    """For each label, Krippendorff's alpha of "this label" against "any other label".

    Shows which labels annotators find easy to tell apart and which they confuse; an
    overall alpha hides that. Labels come in order of first appearance, including labels
    seen only on single-label units, whose alpha is None.
    """
    labels = dict.fromkeys(label for unit in annotations.values() for label in unit.values())
    rows = _pairable_counts(annotations)
    n = sum(sum(counts.values()) * units for counts, units in rows)
    # One against the rest, without building it: a unit with m values, a of them this label,
    # has 2·a·(m - a) ordered pairs that disagree; units without the label have none.
    chosen: dict[Hashable, Counter[Hashable]] = {label: Counter() for label in labels}
    pairs: dict[Hashable, Counter[int]] = {label: Counter() for label in labels}
    for counts, units in rows:
        m = sum(counts.values())
        for label, a in counts.items():
            chosen[label][True] += a * units
            pairs[label][m] += 2 * a * (m - a) * units
    result: dict[Hashable, float | None] = {}
    for label in labels:
        marginals = chosen[label]
        marginals[False] = n - marginals[True]
        result[label] = _alpha(marginals, pairs[label])
    return result


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


def _pairable_counts(annotations: Annotations) -> list[tuple[Counter[Hashable], int]]:
    """The label counts of units with at least two labels, each with how many units have them.

    Units are many and their label patterns few (two annotators and five labels make fifteen),
    so the statistics below work on each pattern once, weighted by its number of units.
    """
    given = Counter(tuple(labels.values()) for labels in annotations.values() if len(labels) >= 2)
    patterns: dict[frozenset[tuple[Hashable, int]], int] = {}
    for labels, units in given.items():
        key = frozenset(Counter(labels).items())
        patterns[key] = patterns.get(key, 0) + units
    return [(Counter(dict(key)), units) for key, units in patterns.items()]


def _marginals(rows: list[tuple[Counter[Hashable], int]]) -> Counter[Hashable]:
    totals: Counter[Hashable] = Counter()
    for counts, units in rows:
        for label, count in counts.items():
            totals[label] += count * units
    return totals


def _disagreeing_pairs(rows: list[tuple[Counter[Hashable], int]]) -> Counter[int]:
    """Ordered pairs of a unit's values that differ, Σ_{c≠k} m_c·m_k = m² - Σ_c m_c², summed
    per number of values m: Krippendorff's coincidences o_ck weight each by 1 / (m - 1)."""
    found: Counter[int] = Counter()
    for counts, units in rows:
        m = sum(counts.values())
        found[m] += (m * m - sum(c * c for c in counts.values())) * units
    return found


def _alpha(marginals: Counter[Hashable], disagreeing: Counter[int]) -> float | None:
    """Nominal alpha from the coincidence matrix's marginals n_c (each pairable value counts
    once: n_c is how often c was given in pairable units) and the disagreeing pairs per m.

    Nominal distance is 1 for c != k and 0 otherwise, so D_o = Σ_{c≠k} o_ck / n and
    D_e = Σ_{c≠k} n_c n_k / (n(n - 1)) = (n² - Σ_c n_c²) / (n(n - 1)).
    """
    n = sum(marginals.values())
    observed = sum((Fraction(pairs, m - 1) for m, pairs in disagreeing.items() if pairs), Fraction(0))
    expected = n * n - sum(m * m for m in marginals.values())
    if n == 0 or expected == 0:
        return None
    return float(1 - (n - 1) * observed / expected)
