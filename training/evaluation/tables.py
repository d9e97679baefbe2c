"""An evaluation's samples side by side, and several runs' evaluations compared.

The samples page shows each test example's prompt and reference, then the base, few-shot base
and tuned answers with their per-sample metrics and their differences from the reference. The
compare page puts every evaluated run's metrics in one table and, for two chosen runs, lists
the examples the newer run does worse on. The diff and the comparison rules are plain Python in
training/evaluation/diff.py and compare.py; these views only choose rows and format numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from curation.models import Project
from training.evaluation import compare, metrics
from training.evaluation.evaluator import SYSTEMS
from training.models import Evaluation

SYSTEM_NAMES = {
    "base": gettext_lazy("Base model"),
    "few_shot": gettext_lazy("Base model, few-shot"),
    "tuned": gettext_lazy("Tuned model"),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def number(value: Any, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if _is_number(value) else "—"


def percent(value: Any) -> str:
    """A share (0..1) as a percentage."""
    return f"{value * 100:.1f} %" if _is_number(value) else "—"


def yes_no(value: Any) -> str:
    if value is None:
        return "—"
    return _("yes") if value else _("no")


def loss_gap_text(result: dict[str, Any] | None) -> str:
    r = result or {}
    train, val = r.get("final_train_loss"), r.get("final_val_loss")
    gap = metrics.loss_gap(train, val) if _is_number(train) and _is_number(val) else None
    return f"{gap:+.4f}" if gap is not None else "—"


def overall_columns(kind: str) -> list[str]:
    columns = [
        _("BLEU"),
        _("chrF"),
        _("ROUGE-L"),
        _("Perplexity"),
        _("Repetition"),
        _("Distinct-2"),
        _("Mean length (characters)"),
    ]
    if kind == Project.Kind.CLASSIFICATION:
        columns += [_("Accuracy"), _("Macro-F1")]
    if kind == Project.Kind.STRUCTURED:
        columns += [_("Valid"), _("Schema-valid"), _("Exact match")]
    return columns


def overall_values(scores: dict[str, Any] | None, kind: str) -> list[str]:
    s = scores or {}
    values = [
        number(s.get("bleu")),
        number(s.get("chrf")),
        number(s.get("rouge_l")),
        number(s.get("perplexity"), 2),
        number(s.get("repetition"), 3),
        number(s.get("distinct_2"), 3),
        number((s.get("length") or {}).get("mean_chars"), 0),
    ]
    if kind == Project.Kind.CLASSIFICATION:
        c = s.get("classification") or {}
        values += [percent(c.get("accuracy")), number(c.get("macro_f1"), 3)]
    if kind == Project.Kind.STRUCTURED:
        st = s.get("structured") or {}
        values += [percent(st.get("valid_rate")), percent(st.get("schema_valid_rate")), percent(st.get("exact_match"))]
    return values


def overall_rows(evaluation: Evaluation, kind: str) -> list[tuple[str, list[str]]]:
    overall = evaluation.overall or {}
    return [(str(SYSTEM_NAMES[system]), overall_values(overall.get(system), kind)) for system in SYSTEMS]


@dataclass
class RunScores:
    evaluation: Evaluation
    method: str
    values: list[str]


def compare_columns(kind: str) -> list[str]:
    columns = [_("BLEU"), _("chrF"), _("ROUGE-L"), _("Repetition")]
    if kind == Project.Kind.CLASSIFICATION:
        columns.append(_("Accuracy"))
    if kind == Project.Kind.STRUCTURED:
        columns.append(_("Valid"))
    return columns


def compare_values(scores: dict[str, Any] | None, kind: str) -> list[str]:
    s = scores or {}
    values = [number(s.get("bleu")), number(s.get("chrf")), number(s.get("rouge_l")), number(s.get("repetition"), 3)]
    if kind == Project.Kind.CLASSIFICATION:
        values.append(percent((s.get("classification") or {}).get("accuracy")))
    if kind == Project.Kind.STRUCTURED:
        values.append(percent((s.get("structured") or {}).get("valid_rate")))
    return values


def regression_text(regression: compare.Regression, kind: str) -> str:
    """What got worse, in words: the verdict that flipped and the chrF change."""
    before, after = compare.tuned_scores(regression.older) or {}, compare.tuned_scores(regression.newer) or {}
    chrf = _("chrF %(old)s → %(new)s") % {"old": number(regression.chrf_older), "new": number(regression.chrf_newer)}
    if kind == Project.Kind.CLASSIFICATION:
        flip = _("right (%(old)s) → wrong (%(new)s)") % {
            "old": before.get("label") or "—",
            "new": after.get("label") or _("none found"),
        }
        return f"{flip} · {chrf}"
    if kind == Project.Kind.STRUCTURED:
        flip = _("exact match lost") if before.get("exact") and not after.get("exact") else _("valid → not valid")
        return f"{flip} · {chrf}"
    return _("%(chrf)s (%(drop)s points lower)") % {"chrf": chrf, "drop": number(regression.chrf_drop)}
