"""An evaluation's page (metrics, the judges' verdict, the LLM judge) and blind judging.

The judging page is reached by a comparison's random key. Neither the page, its form nor the
address it posts to or goes to next names the models or says which side is which: sides come
from training.evaluation.judging.sides on the server.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from curation.connections.services import backend_choices, spec_from_choice
from curation.core.errors import ServiceError, flash_service_error
from curation.core.permissions import Action, ProjectRequest, allowed_actions, project_view
from curation.core.polling import render_polled
from curation.core.progress import work_progress
from curation.models import Connection, Project
from training.evaluation import compare
from training.evaluation.diff import Segment, answer_diff, diffable
from training.evaluation.evaluator import SYSTEMS
from training.evaluation.judging import (
    CRITERIA,
    SCORES,
    JudgingError,
    evaluations_to_judge,
    finished_evaluation,
    judgeable,
    judging_results,
    judgment_save,
    my_judgment,
    next_comparison,
    sides,
)
from training.evaluation.tables import (
    SYSTEM_NAMES,
    RunScores,
    bleu_column,
    bleu_compare_column,
    bleu_scales,
    compare_columns,
    compare_values,
    loss_gap_text,
    number,
    overall_columns,
    overall_rows,
    regression_text,
    tool_call_answer_scores,
    yes_no,
)
from training.evaluation.tasks import evaluation_start, judge_job_start
from training.models import EvalSample, Evaluation, TrainingRun
from training.runs.services import TrainingRefused
from training.runs.views import setting_text


@require_POST
@project_view(Action.REVIEW)
def evaluation_llm_judge(request: ProjectRequest, evaluation_id: int) -> HttpResponse:
    project = request.project
    evaluation = get_evaluation(project, evaluation_id)
    # Only the name of a connection an admin defined is read; a posted address or key name is ignored.
    backend = spec_from_choice(request.POST.get("connection", ""))
    try:
        judge_job_start(evaluation=evaluation, user=request.user, backend=backend or {"connection": ""})
    except JudgingError as error:
        flash_service_error(request, error)
    else:
        messages.success(request, _("The LLM judge is queued; its verdicts appear below as they come."))
    return redirect(reverse("evaluation_detail", args=[project.slug, evaluation.pk]) + "#llm-judge")


@require_GET
@project_view(Action.REVIEW)
def judge_home(request: ProjectRequest) -> HttpResponse:
    project = request.project
    rows = evaluations_to_judge(project, request.user)
    return render(
        request, "training/evaluation/judge_home.html", {"project": project, "rows": rows, "title": _("Judge")}
    )


@require_GET
@project_view(Action.REVIEW)
def judge_next(request: ProjectRequest) -> HttpResponse:
    """Go to the next pair this reviewer has not judged (?evaluation= keeps to one evaluation)."""
    project = request.project
    try:
        raw = request.GET.get("evaluation", "")
        evaluation = finished_evaluation(project, raw) if raw else None
    except JudgingError as error:
        ctx = {"project": project, "rows": evaluations_to_judge(project, request.user), "error": error.message}
        return render(request, "training/evaluation/judge_home.html", ctx | {"title": _("Judge")}, status=400)
    comparison = next_comparison(project, request.user, evaluation, after=request.GET.get("after") or None)
    if comparison is None:
        messages.info(request, _("You have judged every pair there is. Thank you."))
        return redirect("judge_home", project.slug)
    return redirect("judge_pair", project.slug, comparison.key)


def _scores_from_post(data: Any) -> dict[str, dict[str, Any]]:
    return {key: {"a": data.get(f"{key}_a", ""), "b": data.get(f"{key}_b", "")} for key in CRITERIA}


@require_http_methods(["GET", "POST"])
@project_view(Action.REVIEW)
def judge_pair(request: ProjectRequest, key: str) -> HttpResponse:
    project = request.project
    comparison = get_object_or_404(judgeable(project).select_related("sample", "evaluation"), key=key)
    error_field = error = ""
    earlier = my_judgment(comparison, request.user)
    if request.method == "POST":
        try:
            judgment_save(
                comparison=comparison,
                user=request.user,
                choice=request.POST.get("choice"),
                scores=_scores_from_post(request.POST),
                note=request.POST.get("note", ""),
            )
        except JudgingError as problem:
            error_field, error = problem.field, problem.message
            earlier = {"choice": request.POST.get("choice"), "scores": _scores_from_post(request.POST)}
            earlier["note"] = request.POST.get("note", "")
        else:
            messages.success(request, _("Saved."))
            return redirect(reverse("judge_next", args=[project.slug]) + f"?evaluation={comparison.evaluation_id}")
    a, b, _left = sides(comparison, str(request.user.pk))
    pairs = judgeable(project).filter(evaluation=comparison.evaluation_id)
    given = (earlier or {}).get("scores") or {}
    criteria = [
        {
            "key": key,
            "name": name,
            # One radio group per answer: (side, the score given earlier as text, "" for none).
            "sides": [(side, str((given.get(key) or {}).get(side) or "")) for side in ("a", "b")],
        }
        for key, name in CRITERIA.items()
    ]
    ctx = {
        "project": project,
        "comparison": comparison,
        "prompt": comparison.sample.prompt,
        "context": comparison.sample.context,
        "reference": comparison.sample.reference,
        "answer_a": a,
        "answer_b": b,
        "criteria": criteria,
        "scores": [str(n) for n in SCORES],
        "earlier": earlier,
        "error": error,
        "error_field": error_field,
        "done": pairs.filter(judgments__reviewer=request.user).count(),
        "total": pairs.count(),
        "skip_url": reverse("judge_next", args=[project.slug])
        + f"?evaluation={comparison.evaluation_id}&after={comparison.key}",
        "title": _("Which answer is better?"),
    }
    return render(request, "training/evaluation/judge_pair.html", ctx, status=400 if error else 200)


SAMPLES_PER_PAGE = 20


REGRESSIONS_SHOWN = 100


LOST_CHOICES = ("all", "base", "few_shot", "either")


class BadParameter(ServiceError):
    """A query parameter with a value the page does not know: the 400 page names it."""


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
    return rows + tool_call_answer_scores(s)


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


def _choice(request: ProjectRequest, param: str, allowed: list[str]) -> str:
    value = request.GET.get(param, "")
    if value and value not in allowed:
        raise BadParameter(
            param,
            _("Unknown value “%(value)s” for the parameter %(param)s; choose one of: %(choices)s.")
            % {"value": value, "param": param, "choices": ", ".join(allowed) or _("(none in this evaluation)")},
        )
    return value


def _page_number(request: ProjectRequest) -> int:
    raw = request.GET.get("page", "1") or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise BadParameter("page", _("The parameter page must be a whole number from 1."))
    return int(raw)


@require_GET
@project_view(Action.VIEW)
def evaluation_samples(request: ProjectRequest, evaluation_id: int) -> HttpResponse:
    """The samples of one evaluation, filtered by label, source and where the tuned model lost."""
    project = request.project
    evaluation = get_object_or_404(Evaluation.objects.select_related("run"), pk=evaluation_id, run__project=project)
    kind = project.kind
    ctx: dict[str, Any] = {
        "project": project,
        "evaluation": evaluation,
        "run": evaluation.run,
        "kind": kind,
        "columns": overall_columns(kind, evaluation),
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
        return render(request, "training/evaluation/samples.html", ctx)

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
        return render(request, "training/evaluation/samples.html", ctx, status=400)

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
    return render(request, "training/evaluation/samples.html", ctx)


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


def _chosen_run(request: ProjectRequest, param: str, latest: dict[int, Evaluation]) -> Evaluation:
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


@require_GET
@project_view(Action.VIEW)
def evaluation_compare(request: ProjectRequest) -> HttpResponse:
    """Every evaluated run's metrics side by side; with ?a=&b=, the examples run b does worse on."""
    project = request.project
    kind = project.kind
    latest = latest_evaluations(project)
    newest = max(latest.values(), key=lambda e: e.pk, default=None)
    shown = list(latest.values())
    # BLEU on characters and BLEU on words are different scales: one header names the scale
    # when every row shares it; otherwise each figure names its own.
    mixed = len(bleu_scales(shown)) > 1
    ctx: dict[str, Any] = {
        "project": project,
        "kind": kind,
        "columns": compare_columns(kind, bleu_compare_column(shown)),
        "bleu_mixed": mixed,
        "runs": [
            RunScores(
                e,
                setting_text("method", e.run.method),
                compare_values((e.overall or {}).get("tuned"), kind, e if mixed else None),
            )
            for e in shown
        ],
        "baselines": [
            (str(SYSTEM_NAMES[s]), compare_values((newest.overall or {}).get(s), kind, newest if mixed else None))
            for s in ("base", "few_shot")
        ]
        if newest
        else [],
        "newest": newest,
        "threshold": number(compare.CHRF_THRESHOLD, 0),
        "title": _("Compare evaluations"),
    }
    if not request.GET.get("a") and not request.GET.get("b"):
        return render(request, "training/evaluation/compare.html", ctx)
    try:
        missing = [name for name in ("a", "b") if not request.GET.get(name)]
        if missing:  # said first: the one given may be fine
            raise BadParameter(missing[0], _("Give both a and b: the ids of the two runs to compare."))
        a, b = _chosen_run(request, "a", latest), _chosen_run(request, "b", latest)
        if a.run_id == b.run_id:
            raise BadParameter("b", _("The parameters a and b name the same run; choose two different runs."))
    except BadParameter as bad:
        ctx["error"] = bad.message
        return render(request, "training/evaluation/compare.html", ctx, status=400)
    result = compare.regressions(_sample_dicts(a), _sample_dicts(b), kind=kind)
    ctx.update(
        a=a,
        b=b,
        comparison=result,
        regressions=[(r, regression_text(r, kind)) for r in result.regressions[:REGRESSIONS_SHOWN]],
        more=max(len(result.regressions) - REGRESSIONS_SHOWN, 0),
        title=_("Run %(b)s against run %(a)s") % {"a": a.run.number, "b": b.run.number},
    )
    return render(request, "training/evaluation/compare.html", ctx)


def get_evaluation(project: Any, evaluation_id: int) -> Evaluation:
    return get_object_or_404(Evaluation.objects.select_related("run"), pk=evaluation_id, run__project=project)


def group_tables(evaluation: Evaluation, kind: str) -> list[tuple[str, list[str], list[tuple[str, str, list[str]]]]]:
    """The metrics per label and per source: [(title, columns, [(value, system name, cells)])]."""
    columns = [str(c) for c in compare_columns(kind, bleu_column(evaluation))]
    tables = []
    for title, groups in ((_("By label"), evaluation.by_label), (_("By source"), evaluation.by_source)):
        rows = []
        for value, systems in sorted((groups or {}).items()):
            for system, name in SYSTEM_NAMES.items():
                if system in systems:
                    scores = dict(systems[system])
                    if "accuracy" in scores:  # the groups keep accuracy at the top level
                        scores["classification"] = {"accuracy": scores["accuracy"]}
                    rows.append((value, str(name), compare_values(scores, kind)))
        if rows:
            tables.append((str(title), columns, rows))
    return tables


@require_GET
@project_view(Action.VIEW)
def evaluation_detail(request: ProjectRequest, evaluation_id: int) -> HttpResponse:
    """Metrics of base, few-shot base and tuned; the judges' verdict; the LLM judge. While the
    evaluation runs, htmx polls its status part."""
    project = request.project
    evaluation = get_evaluation(project, evaluation_id)
    run = evaluation.run
    ctx: dict[str, Any] = {"project": project, "evaluation": evaluation, "run": run}
    ctx["progress"] = work_progress(evaluation)

    def page_context() -> dict[str, Any]:
        return {
            "columns": overall_columns(project.kind, evaluation),
            "rows": overall_rows(evaluation, project.kind),
            "group_tables": group_tables(evaluation, project.kind),
            "loss_gap": loss_gap_text(run.result),
            "results": judging_results(evaluation) if evaluation.status == Evaluation.Status.DONE else None,
            "judge_jobs": evaluation.judge_jobs.all()[:5],
            "judge_connections": backend_choices(project, kinds=(Connection.Kind.OPENAI,), runs=False),
            "allowed": allowed_actions(request.role),
            "title": _("Evaluation of run %(n)s") % {"n": run.number},
        }

    return render_polled(
        request,
        "training/evaluation/detail.html",
        "evaluation-status",
        ctx,
        finished=evaluation.finished,
        page_context=page_context,
        # The metrics, the judges and the samples are the rest of the page: reload it all.
        reload_when_finished=True,
    )


EVALUATIONS_SHOWN = 5
JUST_DONE = datetime.timedelta(seconds=30)


@require_GET
@project_view(Action.VIEW)
def run_evaluations(request: ProjectRequest, run_id: int) -> HttpResponse:
    """The run page's evaluations, with the progress of one that is running: the page fetches
    this part when it loads and every 2 s while the run trains or an evaluation runs, so the
    evaluation and then its result appear without a reload."""
    project = request.project
    run = get_object_or_404(TrainingRun, pk=run_id, project=project)
    evaluations = list(run.evaluations.order_by("-created_at", "-id")[:EVALUATIONS_SHOWN])
    for evaluation in evaluations:
        evaluation.live = work_progress(evaluation)
    latest = next((e for e in evaluations if e.status == Evaluation.Status.DONE), None)
    # The run's own task queues its evaluation right after it is done (evaluate_when_possible):
    # keep asking a little while for one that has not appeared yet.
    just_done = run.finished_at is not None and timezone.now() - run.finished_at < JUST_DONE
    waiting = (
        not run.finished
        or any(not e.finished for e in evaluations)
        or (run.status == TrainingRun.Status.DONE and not evaluations and just_done)
    )
    ctx = {
        "project": project,
        "run": run,
        "evaluations": evaluations,
        "summary": latest
        and {
            "evaluation": latest,
            "columns": overall_columns(project.kind, latest),
            "rows": overall_rows(latest, project.kind),
        },
        "allowed": allowed_actions(request.role),
        "polled": True,
        "waiting": waiting,
    }
    return render(request, "training/evaluation/_run_evaluations.html", ctx)


@require_POST
@project_view(Action.LAUNCH_TRAINING)
def run_evaluate(request: ProjectRequest, run_id: int) -> HttpResponse:
    """Start (another) evaluation of a finished run."""
    project = request.project
    run = get_object_or_404(TrainingRun, pk=run_id, project=project)
    try:
        max_new_tokens = int(request.POST.get("max_new_tokens") or 128)
        few_shot = int(request.POST.get("few_shot") or 3)
    except ValueError:
        messages.error(request, _("Maximum tokens and few-shot examples must be whole numbers."))
        return redirect("run_detail", project.slug, run.pk)
    try:
        evaluation = evaluation_start(run=run, user=request.user, max_new_tokens=max_new_tokens, few_shot=few_shot)
    except TrainingRefused as refused:
        flash_service_error(request, refused)
        return redirect("run_detail", project.slug, run.pk)
    messages.success(request, _("The evaluation is queued."))
    return redirect("evaluation_detail", project.slug, evaluation.pk)
