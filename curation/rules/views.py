"""Weak supervision for project admins: rules, their live preview, runs, accepting and
withdrawing weak labels."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from curation.core.errors import add_service_error, flash_service_error
from curation.core.permissions import Action, ProjectRequest, project_view
from curation.core.polling import render_polled
from curation.core.progress import work_progress
from curation.models import LabelingRule, Project, RuleRevision, RuleRun, WeakLabel
from curation.rules import accepting, choosing, tasks
from curation.rules import services as svc
from curation.rules import spec as S
from curation.rules.analysis import MIN_GOLD_PER_CLASS
from curation.rules.embeddings import EmbeddingError
from curation.rules.forms import PARAMS, RULE_FIELDS, RuleForm
from curation.rules.selectors import llm_model_names
from curation.rules.spec import RuleError
from llm.interface import GenerationError

DEFAULT_THRESHOLD = 0.9
RECENT_RUNS = 10
# Long stretches of a sample without a match are shortened around the matches.
CONTEXT = 80
WHOLE = 240


# --- the rules page -------------------------------------------------------------------


@require_GET
@project_view(Action.MANAGE_RULES)
def rule_list(request: ProjectRequest) -> HttpResponse:
    project = request.project
    rules = list(project.rules.select_related("label").order_by("id"))
    latest = svc.latest_run(project)
    previous = (
        project.rule_runs.filter(status=RuleRun.Status.DONE, number__lt=latest.number).order_by("-number").first()
        if latest
        else None
    )
    now = {row["id"]: row for row in latest.analysis} if latest else {}
    before = {row["id"]: row for row in previous.analysis} if previous else {}
    runs = accepting.with_labels_in_use(project.rule_runs.defer("rules", "analysis", "metrics"))
    runs = runs.order_by("-number")[:RECENT_RUNS]
    # Before any run (or for a rule written since), the figures measured when it was saved.
    saved = {
        (rule_id, version): stats.get("saved")
        for rule_id, version, stats in RuleRevision.objects.filter(rule__in=rules).values_list(
            "rule_id", "version", "stats"
        )
    }
    models = llm_model_names(project, [(rule.pk, rule.kind, rule.params) for rule in rules])
    return render(
        request,
        "curation/rules/rules.html",
        {
            "project": project,
            "rows": [
                {
                    "rule": rule,
                    "run": now.get(rule.pk),
                    "previous": before.get(rule.pk),
                    "saved": saved.get((rule.pk, rule.version)),
                    "model": models.get(rule.pk),
                }
                for rule in rules
            ],
            "latest": latest,
            "previous": previous,
            "runs": runs,
            "queue_orders": Project.QueueOrder.choices,
        },
    )


@require_POST
@project_view(Action.MANAGE_RULES)
def rule_run_create(request: ProjectRequest) -> HttpResponse:
    """Apply the active rules: a new rule set version, run in the background."""
    project = request.project
    try:
        run = tasks.rule_run_start(project=project, user=request.user)
    except RuleError as error:
        flash_service_error(request, error)
        return redirect("rule_list", project.slug)
    return redirect("rule_run_detail", project.slug, run.pk)


@require_POST
@project_view(Action.MANAGE_RULES)
def queue_order(request: ProjectRequest) -> HttpResponse:
    project = request.project
    try:
        project = svc.queue_order_set(project=project, user=request.user, order=request.POST.get("queue_order", ""))
    except RuleError as error:
        flash_service_error(request, error, {"queue_order": _("Annotation queue")})
    else:
        messages.success(
            request, _("Annotation queue: %(order)s.") % {"order": project.get_queue_order_display().lower()}
        )
    return redirect("rule_list", project.slug)


# --- the editor -----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@project_view(Action.MANAGE_RULES)
def rule_new(request: ProjectRequest) -> HttpResponse:
    project = request.project
    form = RuleForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        try:
            rule = svc.rule_create(project=project, user=request.user, **form.rule_fields())
        except RuleError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Rule %(name)s saved.") % {"name": rule.name})
            return redirect("rule_edit", project.slug, rule.pk)
    return _editor(request, form, status=400 if request.method == "POST" else 200)


@require_http_methods(["GET", "POST"])
@project_view(Action.MANAGE_RULES)
def rule_edit(request: ProjectRequest, rule_id: int) -> HttpResponse:
    """Change a rule. A stale version is refused: what the person typed is kept, with the
    other person's version shown, and saving again replaces it."""
    project = request.project
    rule = _rule(project, rule_id)
    form = RuleForm(request.POST or None, initial=RuleForm.initial_for(rule), project=project)
    if request.method == "GET" or not form.is_valid():
        return _editor(request, form, rule=rule, status=200 if request.method == "GET" else 400)
    try:
        version = form.cleaned_data["version"] or rule.version
        saved = svc.rule_update(rule=rule, user=request.user, version=version, **form.rule_fields())
    except svc.StaleRule as stale:
        data = request.POST.copy()
        data["version"] = str(stale.current.version)
        form = RuleForm(data, project=project)
        form.is_valid()
        return _editor(request, form, rule=stale.current, stale=stale.current, status=409)
    except RuleError as error:
        add_service_error(form, error)
        return _editor(request, form, rule=rule, status=400)
    messages.success(request, _("Rule %(name)s saved as version %(v)d.") % {"name": saved.name, "v": saved.version})
    return redirect("rule_edit", project.slug, saved.pk)


@require_POST
@project_view(Action.MANAGE_RULES)
def rule_delete(request: ProjectRequest, rule_id: int) -> HttpResponse:
    project = request.project
    rule = _rule(project, rule_id)
    name = rule.name
    try:
        svc.rule_delete(rule=rule, user=request.user)
    except RuleError as error:
        flash_service_error(request, error)
        return redirect("rule_edit", project.slug, rule.pk)
    messages.success(request, _("Rule %(name)s deleted.") % {"name": name})
    return redirect("rule_list", project.slug)


@require_POST
@project_view(Action.MANAGE_RULES)
def rule_preview(request: ProjectRequest) -> HttpResponse:
    """The editor's live preview: hits, accuracy on human labels and highlighted samples."""
    project = request.project
    form = RuleForm(request.POST, project=project)
    preview = None
    if form.is_valid():
        try:
            data = svc.rule_clean(project=project, require_name=False, **form.rule_fields())
            preview = svc.rule_preview(project=project, rule=data)
        except RuleError as error:
            add_service_error(form, error)
        except (GenerationError, EmbeddingError) as error:
            form.add_error(None, str(error))
    ctx: dict[str, Any] = {"project": project, "form": form, "preview": preview}
    if preview is not None:
        for item in preview.sample:
            item["parts"] = clip(item["parts"])
        if preview.model:
            ctx["took"] = duration(preview.seconds)
            ctx["each"] = duration(preview.seconds_per_example or 0.0)
            ctx["estimate"] = duration(preview.estimate_seconds or 0.0)
    return render(request, "curation/rules/_preview.html", ctx)


def duration(seconds: float) -> str:
    """A time for people: "0.25 s", "42 s", "12 min", "3 h 20 min"."""
    if seconds < 10:
        return _("%(s)s s") % {"s": f"{seconds:.2g}" if seconds < 1 else f"{seconds:.1f}"}
    if seconds < 60:
        return _("%(s)d s") % {"s": round(seconds)}
    minutes = round(seconds / 60)
    if minutes < 60:
        return _("%(m)d min") % {"m": minutes}
    return _("%(h)d h %(m)d min") % {"h": minutes // 60, "m": minutes % 60}


def _rule(project: Project, rule_id: int) -> LabelingRule:
    return get_object_or_404(LabelingRule.objects.select_related("label"), pk=rule_id, project=project)


def _editor(
    request: ProjectRequest,
    form: RuleForm,
    *,
    rule: LabelingRule | None = None,
    stale: LabelingRule | None = None,
    status: int = 200,
) -> HttpResponse:
    ctx: dict[str, Any] = {
        "project": request.project,
        "form": form,
        "rule": rule,
        "stale": stale,
        "stale_spec": stale and _spec_lines(stale),
        "history": rule and _history(rule),
    }
    return render(request, "curation/rules/edit.html", ctx, status=status)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def _field_name(name: str, kind: str | None = None) -> str:
    field = RuleForm.base_fields.get(name) or RuleForm.base_fields.get(f"{kind}_{name}")
    return str(field.label) if field is not None else name


def _changes(project: Project, before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, before, after) for what one version changed."""
    changes = [
        (_field_name(name), _show(before.get(name)), _show(after.get(name)))
        for name in RULE_FIELDS
        if before.get(name) != after.get(name)
    ]
    old, new = before.get("params") or {}, after.get("params") or {}
    kind = after.get("kind")
    for name in PARAMS.get(kind or "", tuple(new)):
        if old.get(name) != new.get(name) or before.get("kind") != kind:
            changes.append(
                (_field_name(name, kind), _param(project, kind, name, old), _param(project, kind, name, new))
            )
    return changes


def _param(project: Project, kind: str | None, name: str, params: dict[str, Any]) -> str:
    if kind == S.ZERO_SHOT and name == "backend":
        return llm_model_names(project, [(0, kind, params)])[0]  # the model's name, not its id
    return _show(params.get(name))


def _history(rule: LabelingRule) -> list[dict[str, Any]]:
    """The rule's versions, newest first, each with its changes and figures."""
    revisions: list[RuleRevision] = list(rule.revisions.select_related("edited_by").order_by("version"))
    rows = []
    previous: RuleRevision | None = None
    for revision in revisions:
        rows.append(
            {
                "revision": revision,
                "changes": _changes(rule.project, previous.spec, revision.spec) if previous else None,
                "saved": revision.stats.get("saved"),
                "run": revision.stats.get("run"),
            }
        )
        previous = revision
    return rows[::-1]


def _spec_lines(rule: LabelingRule) -> list[tuple[str, str]]:
    """A saved rule as (field, value) lines, for the stale-edit notice."""
    lines = [
        (_field_name("name"), rule.name),
        (_field_name("kind"), rule.get_kind_display()),
        (_field_name("label"), rule.label.name),
        (_field_name("target"), rule.get_target_display()),
        (_field_name("active"), _show(rule.active)),
    ]
    lines += [
        (_field_name(name, rule.kind), _param(rule.project, rule.kind, name, rule.params))
        for name in PARAMS.get(rule.kind, ())
    ]
    return lines


def clip(parts: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """A sample's (piece, matched) parts with long unmatched stretches shortened."""
    last = len(parts) - 1
    clipped = []
    for i, (piece, matched) in enumerate(parts):
        if not matched:
            if i == 0 and i == last and len(piece) > WHOLE:
                piece = piece[:WHOLE] + "…"
            elif i == 0 and len(piece) > CONTEXT:
                piece = "…" + piece[-CONTEXT:]
            elif i == last and len(piece) > CONTEXT:
                piece = piece[:CONTEXT] + "…"
            elif len(piece) > 2 * CONTEXT:
                piece = piece[:CONTEXT] + " … " + piece[-CONTEXT:]
        clipped.append((piece, matched))
    return clipped


# --- runs and weak labels -------------------------------------------------------------


@require_GET
@project_view(Action.MANAGE_RULES)
def rule_run_detail(request: ProjectRequest, run_id: int) -> HttpResponse:
    """A run's progress (polled while it works), then its analysis and the two models."""
    project = request.project
    run = get_object_or_404(RuleRun.objects.select_related("created_by"), pk=run_id, project=project)
    ctx = _run_context(run, request.GET.get("threshold"), request.GET.get("source"), request.GET.get("page"))
    ctx["run_progress"] = work_progress(run)
    return render_polled(request, "curation/rules/run.html", "run-body", ctx, finished=run.finished)


@require_http_methods(["GET", "POST"])
@project_view(Action.MANAGE_RULES)
def weak_accept(request: ProjectRequest, run_id: int) -> HttpResponse:
    """GET: what accepting from a source at a threshold would do (coverage and accuracy on
    people's labels, a curve, the first examples). POST: do it; a run older than the newest
    asks first, saying how many labels would change."""
    project = request.project
    run = get_object_or_404(RuleRun, pk=run_id, project=project)
    back = reverse("rule_run_detail", args=[project.slug, run.pk])
    params = request.GET if request.method == "GET" else request.POST
    if request.method == "GET":
        if not request.htmx:
            query = request.GET.urlencode()
            return redirect(back + (f"?{query}" if query else ""))
        ctx = _accept_context(run, params.get("threshold"), params.get("source"))
        return render(request, "curation/rules/_accept_summary.html", ctx)
    try:
        threshold = _threshold(params.get("threshold"))
        source = accepting.source_clean(run, params.get("source"))
        changed = accepting.weak_labels_accept(
            run=run,
            user=request.user,
            threshold=threshold,
            source=source,
            confirm=bool(params.get("confirm")),
            choice=choosing.form_choice(params),
        )
    except accepting.NeedsConfirmation as question:
        # The confirm step: the run page again, saying what would change, with a button that says yes.
        ctx = _run_context(run, params.get("threshold"), params.get("source"))
        ctx["confirm"] = question
        return render(request, "curation/rules/run.html", ctx, status=409)
    except RuleError as error:
        fields = {"threshold": _("Threshold"), "source": _("Source"), "only": _("Chosen examples")}
        flash_service_error(request, error, fields | {"except": _("Examples left out"), "mode": _("Chosen examples")})
        return redirect(back)
    model = _("majority vote") if source == accepting.MAJORITY else _("the label model")
    messages.success(
        request,
        ngettext(
            "%(n)d example labeled from rule set v%(v)d. Source: %(model)s.",
            "%(n)d examples labeled from rule set v%(v)d. Source: %(model)s.",
            changed,
        )
        % {"n": changed, "v": run.number, "model": model},
    )
    return redirect(back)


@require_GET
@project_view(Action.MANAGE_RULES)
def weak_accept_rows(request: ProjectRequest, run_id: int) -> HttpResponse:
    """A page of the examples accepting would label (htmx swaps it into the run page)."""
    project = request.project
    run = get_object_or_404(RuleRun, pk=run_id, project=project)
    if not request.htmx:
        query = request.GET.urlencode()
        return redirect(reverse("rule_run_detail", args=[project.slug, run.pk]) + (f"?{query}" if query else ""))
    ctx = _accept_context(run, request.GET.get("threshold"), request.GET.get("source"), request.GET.get("page"))
    return render(request, "curation/rules/_accept_rows.html", ctx)


@require_http_methods(["GET", "POST"])
@project_view(Action.MANAGE_RULES)
def weak_withdraw(request: ProjectRequest, run_id: int) -> HttpResponse:
    """GET: what withdrawing the run's labels would do. POST: withdraw them; labels a person
    has set since are kept and listed."""
    project = request.project
    run = get_object_or_404(RuleRun, pk=run_id, project=project)
    if request.method == "GET":
        ctx = {"project": project, "run": run, "plan": accepting.withdrawal_plan(run=run)}
        if request.htmx:
            return render(request, "curation/rules/_withdraw.html", ctx)
        return render(request, "curation/rules/run.html", _run_context(run, None, None) | ctx)
    done = accepting.weak_labels_withdraw(run=run, user=request.user)
    ctx = {"project": project, "run": run, "done": done}
    if request.htmx:
        return render(request, "curation/rules/_withdraw.html", ctx)
    messages.success(
        request,
        ngettext(
            "%(n)d label of rule set v%(v)d withdrawn.", "%(n)d labels of rule set v%(v)d withdrawn.", done.withdrawn
        )
        % {"n": done.withdrawn, "v": run.number},
    )
    return render(request, "curation/rules/run.html", _run_context(run, None, None) | ctx)


def _threshold(value: str | None) -> float:
    if value is None or value == "":
        return DEFAULT_THRESHOLD
    return accepting.threshold_clean(value)


def _accept_context(run: RuleRun, value: str | None, source: str | None, page: str | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {"project": run.project, "run": run, "threshold": value, "source": source}
    try:
        threshold = _threshold(value)
        source = accepting.source_clean(run, source) if source else accepting.better_source(run)
    except RuleError as error:
        return ctx | {"summary": None, "accept_error": error}
    number = int(page) if page and page.isdigit() and int(page) > 0 else 1  # a page past the last shows the last
    summary = accepting.accept_summary(run=run, source=source, threshold=threshold, page=number)
    return ctx | {"threshold": threshold, "source": source, "summary": summary, "acceptable": summary.acceptable}


def _run_context(run: RuleRun, threshold: str | None, source: str | None, page: str | None = None) -> dict[str, Any]:
    metrics = run.metrics or {}
    label_model, majority = metrics.get("label_model") or {}, metrics.get("majority") or {}
    balance = metrics.get("class_balance")
    ctx: dict[str, Any] = {
        "project": run.project,
        "run": run,
        "metrics": metrics,
        "label_model": label_model,
        "majority": majority,
        "f1_rows": [
            (name, (label_model.get("f1") or {}).get(name), (majority.get("f1") or {}).get(name))
            for name in run.label_names
        ],
        "balance": list(zip(run.label_names, balance, strict=False)) if balance else None,
        "min_gold": MIN_GOLD_PER_CLASS,
    }
    models = llm_model_names(run.project, [(r["id"], r["kind"], r.get("params")) for r in run.rules or ()])
    ctx["analysis"] = [row | {"model": models.get(row["id"])} for row in run.analysis or ()]
    if run.status == RuleRun.Status.DONE:
        ctx.update(_accept_context(run, threshold, source, page))
        ctx["sources"] = [
            (value, label) for value, label in WeakLabel.Source.choices if value in accepting.sources_of(run)
        ]
        ctx["in_use"] = accepting.with_labels_in_use(RuleRun.objects.filter(pk=run.pk)).values_list(
            "in_use", flat=True
        )[0]
    return ctx
