"""Synthetic generation in the browser: prompt templates and their versions, generation jobs
with their progress, and how the drafts of each job and template version fared in review.

The role is checked before anything else, whatever the method, so a person outside the
project learns nothing from these addresses.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from curation.connections import backend_choices, connection_name
from curation.forms_generation import JobForm, TemplateForm, placeholder_help
from curation.generation import ConfigError, jobs, review, templates
from curation.generation.checks import flag_message
from curation.generation.synthetic import synthetic_start
from curation.models import Draft, GenerationJob, Project, PromptTemplate
from curation.permissions import Action, project_view

JOBS_SHOWN = 50
DRAFTS_SHOWN = 50
ANSWER_EXCERPT = 600


def _job_rows(project: Project) -> list[dict[str, Any]]:
    stats = review.job_stats(project)
    shown = project.generation_jobs.select_related("template").order_by("-id")[:JOBS_SHOWN]
    return [{"job": job, "stats": stats.get(job.pk)} for job in shown]


@project_view(Action.REVIEW)
@require_GET
def generate_home(request: HttpRequest) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    return render(
        request,
        "curation/generate_home.html",
        {
            "project": project,
            "rows": _job_rows(project),
            "template_rows": review.template_stats(project),
            "templates": templates.templates_current(project),
            "title": _("Synthetic drafts"),
        },
    )


# --- templates -------------------------------------------------------------------------


def _newest_pk(project: Project, name: str) -> int | None:
    return (
        PromptTemplate.objects.filter(project=project, name=name.strip())
        .order_by("-version")
        .values_list("pk", flat=True)
        .first()
    )


def _template_page(
    request: HttpRequest, form: TemplateForm, template: PromptTemplate | None, *, status: int = 200
) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    history: list[dict[str, Any]] = []
    newest = None
    if template is not None:
        stats = {t.pk: s for t, s in review.template_stats(project)}
        versions = PromptTemplate.objects.filter(project=project, name=template.name).select_related("created_by")
        history = [{"template": t, "stats": stats.get(t.pk)} for t in versions.order_by("-version")]
        newest = history[0]["template"] if history else None
    return render(
        request,
        "curation/generate_template.html",
        {
            "project": project,
            "form": form,
            "template": template,
            "newest": newest,
            "history": history,
            "placeholders": placeholder_help(),
            "title": _("Prompt template"),
        },
        status=status,
    )


@project_view(Action.REVIEW)
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, template_id: int | None = None) -> HttpResponse:
    """Edit a template: saving a changed text makes a new version, the old ones stay as they are."""
    project = request.project  # type: ignore[attr-defined]
    template = None
    if template_id is not None:
        template = get_object_or_404(PromptTemplate, pk=template_id, project=project)
    if request.method == "GET":
        form = TemplateForm(initial=TemplateForm.initial_for(template, templates.DEFAULT_TEXT))
        return _template_page(request, form, template)
    form = TemplateForm(request.POST)
    if not form.is_valid():
        return _template_page(request, form, template, status=400)
    d = form.cleaned_data
    before = _newest_pk(project, d["name"])
    try:
        saved = templates.template_save(
            project=project, user=request.user, name=d["name"], text=d["text"], few_shot=d["few_shot"]
        )
    except ConfigError as error:
        form.add_error(error.field if error.field in form.fields else None, error.message)
        return _template_page(request, form, template, status=400)
    if saved.pk == before:
        messages.info(request, _("Nothing changed; still version %(version)s.") % {"version": saved.version})
    else:
        messages.success(
            request, _("Saved %(name)s as version %(version)s.") % {"name": saved.name, "version": saved.version}
        )
    return redirect("generate_template_edit", project.slug, saved.pk)


# --- jobs --------------------------------------------------------------------------------


@project_view(Action.REVIEW)
@require_http_methods(["GET", "POST"])
def job_new(request: HttpRequest) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    if request.method == "GET" and not PromptTemplate.objects.filter(project=project).exists():
        # A first job should not need a template written first.
        templates.template_default(project, request.user)
    current = templates.templates_current(project)
    status = 200
    if request.method == "POST":
        form = JobForm(request.POST, templates=current, backends=backend_choices(project))
        if form.is_valid():
            try:
                job = synthetic_start(project=project, user=request.user, **form.job_settings())
            except ConfigError as error:
                field = "backend" if error.field.startswith("backend_") else error.field
                form.add_error(field if field in form.fields else None, error.message)
            else:
                messages.success(request, _("Generation job %(number)s queued.") % {"number": job.pk})
                return redirect("generate_job", project.slug, job.pk)
        status = 400
    else:
        last = (
            project.generation_jobs.filter(kind=GenerationJob.Kind.SYNTHETIC)
            .select_related("template")
            .order_by("-id")
            .first()
        )
        form = JobForm(
            initial=JobForm.initial_from(last, current), templates=current, backends=backend_choices(project)
        )
    return render(
        request,
        "curation/generate_job_new.html",
        {"project": project, "form": form, "title": _("New generation job")},
        status=status,
    )


def _text(messages: Any, index: int) -> str:
    if not isinstance(messages, list) or not 0 <= index < len(messages) or not isinstance(messages[index], dict):
        return ""
    return str(messages[index].get("content") or "")


def _draft_rows(job: GenerationJob) -> list[dict[str, Any]]:
    rows = []
    for draft in Draft.objects.filter(job=job).select_related("example").order_by("id")[:DRAFTS_SHOWN]:
        turns = draft.example.messages if isinstance(draft.example.messages, list) else []
        user_at = next((i for i, m in enumerate(turns) if isinstance(m, dict) and m.get("role") == "user"), -1)
        answer = _text(turns, draft.target) if draft.target != user_at else ""
        rows.append(
            {
                "draft": draft,
                "request": _text(turns, user_at),
                "answer": answer,
                "flags": [flag_message(flag) for flag in draft.flags if isinstance(flag, dict)],
            }
        )
    return rows


@project_view(Action.REVIEW)
@require_GET
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    job = get_object_or_404(GenerationJob.objects.select_related("template", "created_by"), pk=job_id, project=project)
    if job.kind == GenerationJob.Kind.AUGMENT:
        return redirect("quality_augment_job", project.slug, job.pk)
    cfg = job.config or {}
    ctx = {
        "project": project,
        "job": job,
        "cfg": cfg,
        "connection": connection_name(cfg.get("backend")),
        "task_types": [str(templates.TASK_TYPES.get(t, t)) for t in cfg.get("task_types") or []],
        "stats": review.job_stats(project).get(job.pk),
        "rows": _draft_rows(job),
        "title": _("Generation job"),
    }
    if request.htmx:
        response = render(request, "curation/generate_job.html#job-body", ctx)
        if job.finished:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "curation/generate_job.html", ctx)


@project_view(Action.REVIEW)
@require_POST
def job_action(request: HttpRequest, job_id: int) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    job = get_object_or_404(GenerationJob, pk=job_id, project=project)
    action = request.POST.get("action")
    if action == "cancel":
        jobs.generation_job_cancel(job=job)
        messages.success(request, _("The job stops after its current batch; the drafts it made stay."))
    elif action == "resume":
        try:
            jobs.generation_job_resume(job=job)
        except ConfigError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Started again; it makes only the drafts it lacks."))
    else:
        messages.error(request, _("Choose cancel or resume."))
    return redirect("generate_job", project.slug, job.pk)
