"""Rule analysis and the label model, from Snorkel, on a label matrix.

Plain Python on numpy arrays: ``L`` is the matrix from ``engine.apply_rules`` and ``gold`` the
label index a person gave each example (``ABSTAIN`` where nobody has).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from snorkel.labeling import LFAnalysis
from snorkel.labeling.model import LabelModel, MajorityLabelVoter

from curation.rules.engine import ABSTAIN

# Snorkel's label model learns rule accuracies from how rules agree; with fewer rules than
# this there is nothing to learn from, and majority vote is all one can honestly offer.
MIN_RULES_FOR_LABEL_MODEL = 3
# Class balance is taken from the human labels only when they are this many per class.
MIN_GOLD_PER_CLASS = 10


def rule_stats(L: np.ndarray, gold: np.ndarray) -> list[dict[str, Any]]:
    """Per rule: Snorkel's polarity, coverage, overlaps, conflicts and empirical accuracy."""
    n, m = L.shape
    if m == 0:
        return []
    if n == 0:
        return [
            {
                "polarity": [],
                "coverage": 0.0,
                "overlaps": 0.0,
                "conflicts": 0.0,
                "hits": 0,
                "gold_hits": 0,
                "correct": 0,
                "incorrect": 0,
                "accuracy": None,
            }
            for _ in range(m)
        ]
    analysis = LFAnalysis(L)
    polarities = analysis.lf_polarities()
    coverages = analysis.lf_coverages()
    overlaps = analysis.lf_overlaps()
    conflicts = analysis.lf_conflicts()
    labeled = gold != ABSTAIN
    accuracies = np.full(m, np.nan)
    if labeled.any():
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracies = LFAnalysis(L[labeled]).lf_empirical_accuracies(gold[labeled])
    stats = []
    for j in range(m):
        votes = L[labeled, j]
        covered = votes != ABSTAIN
        correct = int((covered & (votes == gold[labeled])).sum())
        stats.append(
            {
                "polarity": [int(p) for p in polarities[j]],
                "coverage": float(coverages[j]),
                "overlaps": float(overlaps[j]),
                "conflicts": float(conflicts[j]),
                "hits": int((L[:, j] != ABSTAIN).sum()),
                "gold_hits": int(covered.sum()),
                "correct": correct,
                "incorrect": int(covered.sum()) - correct,
                "accuracy": None if not covered.any() or np.isnan(accuracies[j]) else float(accuracies[j]),
            }
        )
    return stats


def class_balance(gold: np.ndarray, cardinality: int) -> list[float] | None:
    """The class balance of the human labels, or None (uniform) when there are too few."""
    counts = np.bincount(gold[gold != ABSTAIN], minlength=cardinality)[:cardinality]
    if counts.min() < MIN_GOLD_PER_CLASS:
        return None
    return [float(c) for c in counts / counts.sum()]


@dataclass
class Labeling:
    """Both models' probabilities, the chosen labels, and how each did on the human labels."""

    probabilities: np.ndarray  # (n, k) from the label model (or majority vote where it cannot run)
    labels: np.ndarray  # (n,) chosen index, ABSTAIN where no rule voted
    confidence: np.ndarray  # (n,) probability of the chosen label, 0 where no rule voted
    conflict: np.ndarray  # (n,) rules voted for different labels
    model: str  # "label_model" or "majority"
    metrics: dict[str, Any] = field(default_factory=dict)
    balance: list[float] | None = None


def _predictions(probs: np.ndarray, covered: np.ndarray) -> np.ndarray:
    predictions = np.full(len(probs), ABSTAIN, dtype=np.int64)
    if len(probs):
        best = probs.max(axis=1, keepdims=True)
        unique = (np.isclose(probs, best)).sum(axis=1) == 1  # a tie is no decision
        predictions[covered & unique] = probs.argmax(axis=1)[covered & unique]
    return predictions


def score(predictions: np.ndarray, gold: np.ndarray, label_names: list[str]) -> dict[str, Any]:
    """Accuracy where the model decides, coverage, and F1 per label over all human labels
    (an example the model leaves undecided counts against recall)."""
    labeled = gold != ABSTAIN
    y, p = gold[labeled], predictions[labeled]
    decided = p != ABSTAIN
    per_label: dict[str, float | None] = {}
    for index, name in enumerate(label_names):
        tp = int(((p == index) & (y == index)).sum())
        fp = int(((p == index) & (y != index)).sum())
        fn = int(((p != index) & (y == index)).sum())
        per_label[name] = None if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    f1s = [v for v in per_label.values() if v is not None]
    return {
        "n_gold": int(labeled.sum()),
        "coverage": float(decided.mean()) if len(y) else 0.0,
        "accuracy": float((p[decided] == y[decided]).mean()) if decided.any() else None,
        "accuracy_all": float((p == y).mean()) if len(y) else None,
        "f1": per_label,
        "macro_f1": float(np.mean(f1s)) if f1s else None,
    }


def label(L: np.ndarray, gold: np.ndarray, label_names: list[str], *, seed: int = 0, epochs: int = 500) -> Labeling:
    """Fit Snorkel's LabelModel (MajorityLabelVoter as the baseline beside it) and label."""
    k = len(label_names)
    covered = (L != ABSTAIN).any(axis=1)
    majority = MajorityLabelVoter(cardinality=k).predict_proba(L) if len(L) else np.zeros((0, k))
    balance = class_balance(gold, k)
    model = "majority"
    probabilities = majority
    if L.shape[1] >= MIN_RULES_FOR_LABEL_MODEL and covered.any():
        # The label model's tensors are tiny (rules × labels): with several threads torch spends
        # its time synchronising them, and one thread fits 2-5 times faster.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            label_model = LabelModel(cardinality=k, verbose=False, device="cpu")
            label_model.fit(L, class_balance=balance, n_epochs=epochs, seed=seed, progress_bar=False)
            probabilities = label_model.predict_proba(L)
        finally:
            torch.set_num_threads(threads)
        model = "label_model"
    chosen = _predictions(probabilities, covered)
    confidence = np.where(covered, probabilities.max(axis=1) if len(L) else 0.0, 0.0)
    lowest = np.where(L == ABSTAIN, np.iinfo(np.int64).max, L).min(axis=1, initial=np.iinfo(np.int64).max)
    votes_differ = covered & (lowest != L.max(axis=1, initial=ABSTAIN))
    metrics = {
        "model": model,
        "label_model": score(chosen, gold, label_names) if model == "label_model" else None,
        "majority": score(_predictions(majority, covered), gold, label_names),
        "class_balance": balance,
        "coverage": float(covered.mean()) if len(L) else 0.0,
    }
    return Labeling(probabilities, chosen, confidence, votes_differ, model, metrics, balance)
