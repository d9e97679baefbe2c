"""An evaluation's page (metrics, the judges' verdict, the LLM judge) and blind judging.

The judging page is reached by a comparison's random key. Neither the page, its form nor the
address it posts to or goes to next names the models or says which side is which: sides come
from training.judging.sides on the server.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from curation.connections import backend_choices, spec_from_choice
from curation.models import Connection
from curation.permissions import Action, allowed_actions, project_view
from training.evaluations import evaluation_start
from training.judge_llm import judge_job_start
from training.judging import (
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
from training.models import Evaluation, TrainingRun
from training.services import TrainingRefused
from training.views_samples import (
    SYSTEM_NAMES,
    compare_columns,
    compare_values,
    loss_gap_text,
    overall_columns,
    overall_rows,
)


def get_evaluation(project: Any, evaluation_id: int) -> Evaluation:
    return get_object_or_404(Evaluation.objects.select_related("run"), pk=evaluation_id, run__project=project)


def group_tables(evaluation: Evaluation, kind: str) -> list[tuple[str, list[str], list[tuple[str, str, list[str]]]]]:
    """The metrics per label and per source: [(title, columns, [(value, system name, cells)])]."""
    columns = [str(c) for c in compare_columns(kind)]
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
def evaluation_detail(request: HttpRequest, evaluation_id: int) -> HttpResponse:
    """Metrics of base, few-shot base and tuned; the judges' verdict; the LLM judge. While the
    evaluation runs, htmx polls its status part."""
    project = request.project  # type: ignore[attr-defined]
    evaluation = get_evaluation(project, evaluation_id)
    run = evaluation.run
    ctx: dict[str, Any] = {"project": project, "evaluation": evaluation, "run": run}
    if request.htmx and request.GET.get("part") == "status":  # type: ignore[attr-defined]
        response = render(request, "training/evaluation_detail.html#evaluation-status", ctx)
        if evaluation.finished:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    ctx.update(
        {
            "columns": overall_columns(project.kind),
            "rows": overall_rows(evaluation, project.kind),
            "group_tables": group_tables(evaluation, project.kind),
            "loss_gap": loss_gap_text(run.result),
            "results": judging_results(evaluation) if evaluation.status == Evaluation.Status.DONE else None,
            "judge_jobs": evaluation.judge_jobs.all()[:5],
            "judge_connections": backend_choices(project, kinds=(Connection.Kind.OPENAI,), runs=False),
            "allowed": allowed_actions(request.role),  # type: ignore[attr-defined]
            "title": _("Evaluation of run %(n)s") % {"n": run.number},
        }
    )
    return render(request, "training/evaluation_detail.html", ctx)


@require_POST
@project_view(Action.LAUNCH_TRAINING)
def run_evaluate(request: HttpRequest, run_id: int) -> HttpResponse:
    """Start (another) evaluation of a finished run."""
    project = request.project  # type: ignore[attr-defined]
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
        messages.error(request, refused.message)
        return redirect("run_detail", project.slug, run.pk)
    messages.success(request, _("The evaluation is queued."))
    return redirect("evaluation_detail", project.slug, evaluation.pk)


@require_POST
@project_view(Action.REVIEW)
def evaluation_llm_judge(request: HttpRequest, evaluation_id: int) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    evaluation = get_evaluation(project, evaluation_id)
    # Only the name of a connection an admin defined is read; a posted address or key name is ignored.
    backend = spec_from_choice(request.POST.get("connection", ""))
    try:
        judge_job_start(evaluation=evaluation, user=request.user, backend=backend or {"connection": ""})
    except JudgingError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("The LLM judge is queued; its verdicts appear below as they come."))
    return redirect(reverse("evaluation_detail", args=[project.slug, evaluation.pk]) + "#llm-judge")


# --- Blind judging -------------------------------------------------------------------------------


@require_GET
@project_view(Action.REVIEW)
def judge_home(request: HttpRequest) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    rows = evaluations_to_judge(project, request.user)
    return render(request, "training/judge_home.html", {"project": project, "rows": rows, "title": _("Judge")})


@require_GET
@project_view(Action.REVIEW)
def judge_next(request: HttpRequest) -> HttpResponse:
    """Go to the next pair this reviewer has not judged (?evaluation= keeps to one evaluation)."""
    project = request.project  # type: ignore[attr-defined]
    try:
        raw = request.GET.get("evaluation", "")
        evaluation = finished_evaluation(project, raw) if raw else None
    except JudgingError as error:
        ctx = {"project": project, "rows": evaluations_to_judge(project, request.user), "error": error.message}
        return render(request, "training/judge_home.html", ctx | {"title": _("Judge")}, status=400)
    comparison = next_comparison(project, request.user, evaluation, after=request.GET.get("after") or None)
    if comparison is None:
        messages.info(request, _("You have judged every pair there is. Thank you."))
        return redirect("judge_home", project.slug)
    return redirect("judge_pair", project.slug, comparison.key)


def _scores_from_post(data: Any) -> dict[str, dict[str, Any]]:
    return {key: {"a": data.get(f"{key}_a", ""), "b": data.get(f"{key}_b", "")} for key in CRITERIA}


@require_http_methods(["GET", "POST"])
@project_view(Action.REVIEW)
def judge_pair(request: HttpRequest, key: str) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
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
    criteria = [
        {
            "key": key,
            "name": name,
            "a": str((earlier or {}).get("scores", {}).get(key, {}).get("a") or ""),
            "b": str((earlier or {}).get("scores", {}).get(key, {}).get("b") or ""),
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
    return render(request, "training/judge_pair.html", ctx, status=400 if error else 200)
