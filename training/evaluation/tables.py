"""An evaluation's samples side by side, and several runs' evaluations compared.

The samples page shows each test example's prompt and reference, then the base, few-shot base
and tuned answers with their per-sample metrics and their differences from the reference. The
compare page puts every evaluated run's metrics in one table and, for two chosen runs, lists
the examples the newer run does worse on. The diff and the comparison rules are plain Python in
training/evaluation/diff.py and compare.py; these views only choose rows and format numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from curation.models import Project
from training.evaluation import compare, metrics, toolcalls
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


def bleu_unit(evaluation: Evaluation | None) -> str | None:
    """ "characters" or "words": what the evaluation's BLEU counted, for every system (recorded
    with its results); for an older evaluation, what its systems all used, else None."""
    if evaluation is None:
        return None
    unit = ((evaluation.config or {}).get("scoring") or {}).get("bleu_unit")
    if unit:
        return unit
    chosen = {(scores or {}).get("tokenize") for scores in (evaluation.overall or {}).values()}
    if len(chosen) == 1 and (tokenize := chosen.pop()):
        return "characters" if tokenize == "char" else "words"
    return None


def bleu_column(evaluation: Evaluation | None) -> str:
    unit = bleu_unit(evaluation)
    if unit == "characters":
        return _("BLEU on characters")
    if unit == "words":
        return _("BLEU on words")
    return _("BLEU")


def has_tool_calls(evaluation: Evaluation | None) -> bool:
    """Whether the evaluation scored tool calls (its test set has reference turns with calls)."""
    overall = (evaluation.overall if evaluation is not None else None) or {}
    return any(isinstance((overall.get(system) or {}).get("tool_calls"), dict) for system in SYSTEMS)


def tool_call_columns() -> list[str]:
    return [
        _("Right function"),
        _("Exact arguments"),
        _("Argument keys right"),
        _("Valid JSON arguments"),
        _("Schema-valid calls"),
        _("Call precision"),
        _("Call recall"),
    ]


def tool_call_values(scores: dict[str, Any] | None) -> list[str]:
    t = (scores or {}).get("tool_calls") or {}
    return [percent(t.get(key)) for key in toolcalls.RATES]


def tool_call_answer_scores(scores: dict[str, Any] | None) -> list[tuple[str, str]]:
    """One answer's tool-call verdicts for the side-by-side page (none when it was not scored)."""
    t = (scores or {}).get("tool_calls")
    if not isinstance(t, dict):
        return []
    names = ", ".join(str(name or "?") for name in t.get("names") or []) or _("none")
    rows = [(_("Calls"), names)]
    if t.get("should_call"):
        rows += [
            (_("Right function"), yes_no(t.get("function"))),
            (_("Exact arguments"), yes_no(t.get("arguments_exact"))),
        ]
    else:
        rows.append((_("Call expected"), _("no")))
    if t.get("calls"):
        rows.append((_("Valid JSON arguments"), f"{t.get('valid_json', 0)} / {t['calls']}"))
    if t.get("schema_judged"):
        rows.append((_("Schema-valid calls"), f"{t.get('schema_valid', 0)} / {t['schema_judged']}"))
    return rows


def overall_columns(kind: str, evaluation: Evaluation | None = None) -> list[str]:
    columns = [
        bleu_column(evaluation),
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
    if has_tool_calls(evaluation):
        columns += tool_call_columns()
    return columns


def overall_values(scores: dict[str, Any] | None, kind: str, tool_calls: bool = False) -> list[str]:
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
    if tool_calls:
        values += tool_call_values(s)
    return values


def overall_rows(evaluation: Evaluation, kind: str) -> list[tuple[str, list[str]]]:
    overall = evaluation.overall or {}
    tools = has_tool_calls(evaluation)
    return [(str(SYSTEM_NAMES[system]), overall_values(overall.get(system), kind, tools)) for system in SYSTEMS]


@dataclass
class RunScores:
    evaluation: Evaluation
    method: str
    values: list[str]


def bleu_scales(evaluations: Sequence[Evaluation]) -> set[str | None]:
    """What the evaluations' BLEU counted ("characters", "words", None when unknown), each once."""
    return {bleu_unit(evaluation) for evaluation in evaluations}


def bleu_compare_column(evaluations: Sequence[Evaluation]) -> str:
    """The BLEU column of a table of several evaluations: its scale when they share one, else a
    header that says the scales differ (each cell then names its own, `bleu_scaled`)."""
    scales = bleu_scales(evaluations)
    if len(scales) > 1:
        return _("BLEU (scales differ)")
    return bleu_column(evaluations[0] if evaluations else None)


def bleu_scaled(value: Any, evaluation: Evaluation | None) -> str:
    """A BLEU figure with the scale it was counted on, for a table that mixes scales."""
    unit = bleu_unit(evaluation)
    if unit == "characters":
        return _("%(value)s on characters") % {"value": number(value)}
    if unit == "words":
        return _("%(value)s on words") % {"value": number(value)}
    return _("%(value)s, scale unknown") % {"value": number(value)}


def compare_columns(kind: str, bleu: str | None = None) -> list[str]:
    """The columns of a comparison table; `bleu` is the BLEU column's header (its scale)."""
    columns = [bleu or _("BLEU"), _("chrF"), _("ROUGE-L"), _("Repetition")]
    if kind == Project.Kind.CLASSIFICATION:
        columns.append(_("Accuracy"))
    if kind == Project.Kind.STRUCTURED:
        columns.append(_("Valid"))
    return columns


def compare_values(scores: dict[str, Any] | None, kind: str, scaled: Evaluation | None = None) -> list[str]:
    """The cells of a comparison row; with `scaled`, the BLEU cell names that evaluation's scale
    (a table whose rows were scored on different scales)."""
    s = scores or {}
    bleu = bleu_scaled(s.get("bleu"), scaled) if scaled is not None else number(s.get("bleu"))
    values = [bleu, number(s.get("chrf")), number(s.get("rouge_l")), number(s.get("repetition"), 3)]
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
