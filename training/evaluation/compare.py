"""Which examples got worse: between two runs' evaluations, and between the systems of one sample.

Plain Python (no Django). A sample is a dict with "example_id" and "metrics" ({system: per-sample
metrics}, as evaluator.py stores them); other keys (prompt, reference, outputs) are carried along
for the page. What "worse" means depends on the project's kind:

- classification: right -> wrong ("correct");
- structured: exact -> not exact, or valid -> not valid ("exact", "valid");
- any other kind (chat, style): chrF lower by at least a threshold, in points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CHRF_THRESHOLD = 10.0
RIVALS = ("base", "few_shot")  # the systems the tuned model should beat

Sample = Mapping[str, Any]


@dataclass(frozen=True)
class Regression:
    """One example the newer run's tuned model does worse on than the older run's."""

    example_id: int
    older: Sample
    newer: Sample
    chrf_older: float | None
    chrf_newer: float | None

    @property
    def chrf_drop(self) -> float | None:
        """chrF points lost (negative when chrF rose although the answer became wrong)."""
        if self.chrf_older is None or self.chrf_newer is None:
            return None
        return self.chrf_older - self.chrf_newer


@dataclass
class Comparison:
    regressions: list[Regression] = field(default_factory=list)
    improvements: int = 0
    shared: int = 0  # examples present in both evaluations


def _chrf(scores: Mapping[str, Any] | None) -> float | None:
    value = (scores or {}).get("chrf")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _rank(scores: Mapping[str, Any] | None, kind: str) -> tuple[bool, ...] | None:
    """How good an answer is for classification and structured projects (higher is better), or
    None for text projects and for scores that lack the verdict."""
    scores = scores or {}
    if kind == "classification":
        return (bool(scores["correct"]),) if "correct" in scores else None
    if kind == "structured":
        if "exact" not in scores and "valid" not in scores:
            return None
        return (bool(scores.get("exact")), bool(scores.get("valid")))
    return None


def _worse(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, kind: str, threshold: float) -> bool:
    """Whether `after` is worse than `before`: a lower verdict, or for text a chrF lower by at least
    `threshold` (and lower at all, so that a threshold of 0 means "lower")."""
    if kind in ("classification", "structured"):
        old, new = _rank(before, kind), _rank(after, kind)
        return old is not None and new is not None and new < old
    old_chrf, new_chrf = _chrf(before), _chrf(after)
    if old_chrf is None or new_chrf is None:
        return False
    drop = old_chrf - new_chrf
    return drop > 0 and drop >= threshold


def tuned_scores(sample: Sample) -> Mapping[str, Any] | None:
    """The tuned model's per-sample metrics of a sample."""
    return (sample.get("metrics") or {}).get("tuned")


def regressions(
    older: Sequence[Sample], newer: Sequence[Sample], *, kind: str, threshold: float = CHRF_THRESHOLD
) -> Comparison:
    """The examples (matched by example id; samples without one are skipped) on which the newer
    evaluation's tuned answer is worse than the older one's, the largest chrF drop first, and how
    many got better by the same rule."""
    by_id = {sample["example_id"]: sample for sample in older if sample.get("example_id") is not None}
    comparison = Comparison()
    for sample in newer:
        before = by_id.get(sample.get("example_id"))
        if before is None:
            continue
        comparison.shared += 1
        old, new = tuned_scores(before), tuned_scores(sample)
        if _worse(old, new, kind, threshold):
            comparison.regressions.append(Regression(sample["example_id"], before, sample, _chrf(old), _chrf(new)))
        elif _worse(new, old, kind, threshold):
            comparison.improvements += 1
    comparison.regressions.sort(key=lambda r: (r.chrf_drop is None, -(r.chrf_drop or 0.0), r.example_id))
    return comparison


def tuned_lost_to(metrics: Mapping[str, Mapping[str, Any]] | None, kind: str) -> set[str]:
    """The systems among base and few-shot base that did better than the tuned model on one sample:
    a higher chrF (text projects), right where tuned is wrong (classification), or exact or valid
    where tuned is not (structured). Systems without scores are left out."""
    metrics = metrics or {}
    tuned = metrics.get("tuned")
    if tuned is None:
        return set()
    return {system for system in RIVALS if system in metrics and _worse(metrics[system], tuned, kind, 0.0)}
