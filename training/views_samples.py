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

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from curation.models import Project
from curation.permissions import Action, project_view
from training.evaluation import compare, metrics
from training.evaluation.diff import Segment, answer_diff, diffable
from training.evaluation.evaluator import SYSTEMS
from training.models import EvalSample, Evaluation
from training.views import setting_text

SAMPLES_PER_PAGE = 20
REGRESSIONS_SHOWN = 100
LOST_CHOICES = ("all", "base", "few_shot", "either")
SYSTEM_NAMES = {
    "base": gettext_lazy("Base model"),
    "few_shot": gettext_lazy("Base model, few-shot"),
    "tuned": gettext_lazy("Tuned model"),
}


class BadParameter(ValueError):
    """A query parameter with a value the page does not know: the 400 page names it."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param
        self.message = message


# --- how numbers read --------------------------------------------------------------------


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


# --- the overall metrics -----------------------------------------------------------------


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


# --- one sample --------------------------------------------------------------------------


@dataclass
class Answer:
    """One system's answer to a sample, as the page shows it."""

    system: str
    name: str
    output: str
    segments: list[Segment]
    compared: bool  # False when the texts were too long to diff
    scores: list[tuple[str, str]]
    beat_tuned: bool


@dataclass
class SampleRow:
    sample: EvalSample
    answers: list[Answer]
    lost_to: list[str]  # names of the systems that did better than the tuned model


def answer_scores(scores: dict[str, Any] | None, kind: str) -> list[tuple[str, str]]:
    s = scores or {}
    rows = [
        (_("chrF"), number(s.get("chrf"))),
        (_("BLEU"), number(s.get("bleu"))),
        (_("ROUGE-L"), number(s.get("rouge_l"))),
        (_("Repetition"), number(s.get("repetition"), 2)),
        (
            _("Length"),
            _("%(chars)s characters, %(tokens)s tokens")
            % {"chars": s.get("length_chars", "—"), "tokens": s.get("length_tokens", "—")},
        ),
    ]
    if kind == Project.Kind.CLASSIFICATION:
        verdict = "—" if "correct" not in s else (_("right") if s["correct"] else _("wrong"))
        rows += [(_("Label"), s.get("label") or _("none found")), (_("Verdict"), verdict)]
    if kind == Project.Kind.STRUCTURED:
        rows += [(_("Valid"), yes_no(s.get("valid"))), (_("Exact match"), yes_no(s.get("exact")))]
    return rows


def sample_row(sample: EvalSample, kind: str) -> SampleRow:
    lost_to = compare.tuned_lost_to(sample.metrics, kind)
    answers = []
    for system in SYSTEMS:
        output = str((sample.outputs or {}).get(system) or "")
        answers.append(
            Answer(
                system=system,
                name=str(SYSTEM_NAMES[system]),
                output=output,
                segments=answer_diff(sample.reference, output),
                compared=diffable(sample.reference, output),
                scores=answer_scores((sample.metrics or {}).get(system), kind),
                beat_tuned=system in lost_to,
            )
        )
    return SampleRow(sample, answers, [str(SYSTEM_NAMES[s]) for s in compare.RIVALS if s in lost_to])


# --- the samples page --------------------------------------------------------------------


def _choice(request: HttpRequest, param: str, allowed: list[str]) -> str:
    value = request.GET.get(param, "")
    if value and value not in allowed:
        raise BadParameter(
            param,
            _("Unknown value “%(value)s” for the parameter %(param)s; choose one of: %(choices)s.")
            % {"value": value, "param": param, "choices": ", ".join(allowed) or _("(none in this evaluation)")},
        )
    return value


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1") or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise BadParameter("page", _("The parameter page must be a whole number from 1."))
    return int(raw)


@require_GET
@project_view(Action.VIEW)
def evaluation_samples(request: HttpRequest, evaluation_id: int) -> HttpResponse:
    """The samples of one evaluation, filtered by label, source and where the tuned model lost."""
    project = request.project  # type: ignore[attr-defined]
    evaluation = get_object_or_404(Evaluation.objects.select_related("run"), pk=evaluation_id, run__project=project)
    kind = project.kind
    ctx: dict[str, Any] = {
        "project": project,
        "evaluation": evaluation,
        "run": evaluation.run,
        "kind": kind,
        "columns": overall_columns(kind),
        "overall": overall_rows(evaluation, kind),
        "loss_gap": loss_gap_text(evaluation.run.result),
        "lost_choices": [
            ("all", _("all samples")),
            ("base", _("tuned did worse than base")),
            ("few_shot", _("tuned did worse than few-shot base")),
            ("either", _("tuned did worse than either")),
        ],
        "title": _("Evaluation samples of run %(n)s") % {"n": evaluation.run.number},
    }
    if evaluation.status != Evaluation.Status.DONE:
        return render(request, "training/evaluation_samples.html", ctx)

    samples = EvalSample.objects.filter(evaluation=evaluation)
    labels = list(samples.exclude(label="").order_by("label").values_list("label", flat=True).distinct())
    sources = list(samples.exclude(source="").order_by("source").values_list("source", flat=True).distinct())
    ctx.update(labels=labels, sources=sources)
    try:
        filters = {
            "label": _choice(request, "label", labels),
            "source": _choice(request, "source", sources),
            "lost": _choice(request, "lost", list(LOST_CHOICES)),
        }
        page_number = _page_number(request)
    except BadParameter as bad:
        ctx.update(error=bad.message, filters={name: request.GET.get(name, "") for name in ("label", "source", "lost")})
        return render(request, "training/evaluation_samples.html", ctx, status=400)

    chosen = samples
    if filters["label"]:
        chosen = chosen.filter(label=filters["label"])
    if filters["source"]:
        chosen = chosen.filter(source=filters["source"])
    if filters["lost"] in ("base", "few_shot", "either"):
        # Per-sample JSON comparisons: done here, on at most evaluations.MAX_TEST rows.
        rivals = set(compare.RIVALS) if filters["lost"] == "either" else {filters["lost"]}
        ids = [pk for pk, m in chosen.values_list("pk", "metrics") if rivals & compare.tuned_lost_to(m, kind)]
    else:
        ids = list(chosen.values_list("pk", flat=True))
    page = Paginator(ids, SAMPLES_PER_PAGE).get_page(page_number)
    rows = samples.in_bulk(list(page.object_list))
    ctx.update(
        filters=filters,
        query=urlencode({k: v for k, v in filters.items() if v}),
        page=page,
        rows=[sample_row(rows[pk], kind) for pk in page.object_list],
        shown=len(ids),
        total=samples.count(),
    )
    return render(request, "training/evaluation_samples.html", ctx)


# --- several runs compared ---------------------------------------------------------------


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


def latest_evaluations(project: Project) -> dict[int, Evaluation]:
    """Run id -> its latest finished evaluation, newest run first."""
    done = (
        Evaluation.objects.filter(run__project=project, status=Evaluation.Status.DONE)
        .select_related("run")
        .defer("by_label", "by_source")
        .order_by("-run__number", "-pk")
    )
    latest: dict[int, Evaluation] = {}
    for evaluation in done:
        latest.setdefault(evaluation.run_id, evaluation)
    return latest


def _chosen_run(request: HttpRequest, param: str, latest: dict[int, Evaluation]) -> Evaluation:
    raw = request.GET.get(param, "")
    if not raw.isdigit():
        raise BadParameter(param, _("The parameter %(param)s must be a run id (a whole number).") % {"param": param})
    evaluation = latest.get(int(raw))
    if evaluation is None:
        raise BadParameter(
            param,
            _("The parameter %(param)s names no run of this project with a finished evaluation: %(value)s.")
            % {"param": param, "value": raw},
        )
    return evaluation


def _sample_dicts(evaluation: Evaluation) -> list[dict[str, Any]]:
    return list(
        EvalSample.objects.filter(evaluation=evaluation).values(
            "example_id", "prompt", "reference", "outputs", "metrics"
        )
    )


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


@require_GET
@project_view(Action.VIEW)
def evaluation_compare(request: HttpRequest) -> HttpResponse:
    """Every evaluated run's metrics side by side; with ?a=&b=, the examples run b does worse on."""
    project = request.project  # type: ignore[attr-defined]
    kind = project.kind
    latest = latest_evaluations(project)
    newest = max(latest.values(), key=lambda e: e.pk, default=None)
    ctx: dict[str, Any] = {
        "project": project,
        "kind": kind,
        "columns": compare_columns(kind),
        "runs": [
            RunScores(e, setting_text("method", e.run.method), compare_values((e.overall or {}).get("tuned"), kind))
            for e in latest.values()
        ],
        "baselines": [
            (str(SYSTEM_NAMES[s]), compare_values((newest.overall or {}).get(s), kind)) for s in ("base", "few_shot")
        ]
        if newest
        else [],
        "newest": newest,
        "threshold": number(compare.CHRF_THRESHOLD, 0),
        "title": _("Compare evaluations"),
    }
    if not request.GET.get("a") and not request.GET.get("b"):
        return render(request, "training/evaluation_compare.html", ctx)
    try:
        missing = [name for name in ("a", "b") if not request.GET.get(name)]
        if missing:  # said first: the one given may be fine
            raise BadParameter(missing[0], _("Give both a and b: the ids of the two runs to compare."))
        a, b = _chosen_run(request, "a", latest), _chosen_run(request, "b", latest)
        if a.run_id == b.run_id:
            raise BadParameter("b", _("The parameters a and b name the same run; choose two different runs."))
    except BadParameter as bad:
        ctx["error"] = bad.message
        return render(request, "training/evaluation_compare.html", ctx, status=400)
    result = compare.regressions(_sample_dicts(a), _sample_dicts(b), kind=kind)
    ctx.update(
        a=a,
        b=b,
        comparison=result,
        regressions=[(r, regression_text(r, kind)) for r in result.regressions[:REGRESSIONS_SHOWN]],
        more=max(len(result.regressions) - REGRESSIONS_SHOWN, 0),
        title=_("Run %(b)s against run %(a)s") % {"a": a.run.number, "b": b.run.number},
    )
    return render(request, "training/evaluation_compare.html", ctx)
