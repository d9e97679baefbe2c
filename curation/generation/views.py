"""Quality gates in the browser: the readiness report, the quality check and its settings,
duplicate groups, leaks between splits, and personal data with its redaction."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from curation.connections.services import backend_choices, connection_name, spec_from_choice
from curation.core.errors import add_service_error, flash_service_error
from curation.core.permissions import Action, ProjectRequest, project_view
from curation.core.polling import render_polled
from curation.core.progress import work_progress
from curation.generation import ConfigError, augment, jobs, templates
from curation.generation import jobs as generation_jobs
from curation.generation import stats as draft_stats
from curation.generation import tasks as generation_tasks
from curation.generation.checks import flag_message
from curation.generation.forms import JobForm, TemplateForm, placeholder_help
from curation.generation.grounding import document_sources
from curation.generation.tasks import generation_job_resume, synthetic_start
from curation.generation.tools import project_tools
from curation.models import Draft, GenerationJob, Project, PromptTemplate


class AugmentForm(forms.Form):
    ids = forms.CharField(widget=forms.HiddenInput)
    per_example = forms.IntegerField(
        label=gettext_lazy("Rewrites per example"), min_value=1, max_value=augment.MAX_PER_EXAMPLE, initial=1
    )
    temperature = forms.FloatField(
        label=gettext_lazy("Temperature"),
        min_value=0.0,
        max_value=2.0,
        initial=0.7,
        help_text=gettext_lazy("Higher gives more varied wording; 0 always gives the same rewrite."),
    )
    max_new_tokens = forms.IntegerField(
        label=gettext_lazy("Maximum tokens per rewrite"), min_value=16, max_value=2048, initial=128
    )
    backend = forms.ChoiceField(
        label=gettext_lazy("Which model rewrites"),
        help_text=gettext_lazy("A connection an admin set up, or the model tuned by a finished training run."),
    )

    def __init__(self, *args: Any, backends: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["backend"].choices = backends

    def clean_ids(self) -> list[int]:
        ids = [int(part) for part in self.cleaned_data["ids"].split(",") if part.strip().isdigit()]
        if not ids:
            raise forms.ValidationError(_("Choose at least one example on the examples page."))
        return ids


@require_http_methods(["GET", "POST"])
@project_view(Action.REVIEW)
def augment_new(request: ProjectRequest) -> HttpResponse:
    """From the example list's selection (POST ids) to a confirmation form, then a job."""
    project = request.project
    if request.method == "POST" and "per_example" not in request.POST:
        ids = ",".join(i for i in request.POST.getlist("ids") if i.isdigit())
        form = AugmentForm(initial={"ids": ids}, backends=backend_choices(project))
    else:
        form = AugmentForm(request.POST or None, backends=backend_choices(project))
    if request.method == "POST" and form.is_bound and form.is_valid():
        d = form.cleaned_data
        try:
            job = generation_tasks.augment_start(
                project=project,
                user=request.user,
                example_ids=d["ids"],
                per_example=d["per_example"],
                temperature=d["temperature"],
                max_new_tokens=d["max_new_tokens"],
                backend=spec_from_choice(d["backend"]),
            )
        except augment.AugmentError as exc:
            add_service_error(form, exc)  # the ids are chosen on the examples page: above the form
        else:
            return redirect("quality_augment_job", project.slug, job.pk)
    chosen = form["ids"].value() or ""
    count = len([p for p in str(chosen).split(",") if p.strip().isdigit()])
    jobs = project.generation_jobs.filter(kind=GenerationJob.Kind.AUGMENT).select_related("created_by")[:10]
    return render(
        request,
        "curation/generation/augment.html",
        {"project": project, "form": form, "count": count, "jobs": jobs, "title": _("Augment")},
    )


@require_GET
@project_view(Action.REVIEW)
def augment_job(request: ProjectRequest, job_id: int) -> HttpResponse:
    project = request.project
    job = get_object_or_404(GenerationJob.objects.select_related("created_by"), pk=job_id, project=project)
    drafts = job.drafts.order_by("id")[:50]
    ctx = {"project": project, "job": job, "drafts": drafts, "progress": work_progress(job)}
    ctx["title"] = _("Augmentation job")
    return render_polled(request, "curation/generation/augment_job.html", "job-body", ctx, finished=job.finished)


@require_POST
@project_view(Action.REVIEW)
def augment_job_action(request: ProjectRequest, job_id: int) -> HttpResponse:
    project = request.project
    job = get_object_or_404(GenerationJob, pk=job_id, project=project, kind=GenerationJob.Kind.AUGMENT)
    if request.POST.get("action") == "cancel":
        generation_jobs.generation_job_cancel(job=job)
        messages.success(request, _("The job stops after its current batch; its drafts stay."))
    else:
        try:
            generation_tasks.generation_job_resume(job=job)
        except augment.AugmentError as exc:
            flash_service_error(request, exc)
    return redirect("quality_augment_job", project.slug, job.pk)


JOBS_SHOWN = 50


DRAFTS_SHOWN = 50


def _job_rows(project: Project) -> list[dict[str, Any]]:
    stats = draft_stats.job_stats(project)
    shown = project.generation_jobs.select_related("template").order_by("-id")[:JOBS_SHOWN]
    return [{"job": job, "stats": stats.get(job.pk)} for job in shown]


@project_view(Action.REVIEW)
@require_GET
def generate_home(request: ProjectRequest) -> HttpResponse:
    project = request.project
    return render(
        request,
        "curation/generation/home.html",
        {
            "project": project,
            "rows": _job_rows(project),
            "template_rows": draft_stats.template_stats(project),
            "templates": templates.templates_current(project),
            "title": _("Synthetic drafts"),
        },
    )


def _newest_pk(project: Project, name: str) -> int | None:
    return (
        PromptTemplate.objects.filter(project=project, name=name.strip())
        .order_by("-version")
        .values_list("pk", flat=True)
        .first()
    )


def _template_page(
    request: ProjectRequest, form: TemplateForm, template: PromptTemplate | None, *, status: int = 200
) -> HttpResponse:
    project = request.project
    history: list[dict[str, Any]] = []
    newest = None
    if template is not None:
        stats = {t.pk: s for t, s in draft_stats.template_stats(project)}
        versions = PromptTemplate.objects.filter(project=project, name=template.name).select_related("created_by")
        history = [{"template": t, "stats": stats.get(t.pk)} for t in versions.order_by("-version")]
        newest = history[0]["template"] if history else None
    return render(
        request,
        "curation/generation/template.html",
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
def template_edit(request: ProjectRequest, template_id: int | None = None) -> HttpResponse:
    """Edit a template: saving a changed text makes a new version, the old ones stay as they are."""
    project = request.project
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
        add_service_error(form, error)
        return _template_page(request, form, template, status=400)
    if saved.pk == before:
        messages.info(request, _("Nothing changed; still version %(version)s.") % {"version": saved.version})
    else:
        messages.success(
            request, _("Saved %(name)s as version %(version)s.") % {"name": saved.name, "version": saved.version}
        )
    return redirect("generate_template_edit", project.slug, saved.pk)


@project_view(Action.REVIEW)
@require_http_methods(["GET", "POST"])
def job_new(request: ProjectRequest) -> HttpResponse:
    project = request.project
    if request.method == "GET" and not PromptTemplate.objects.filter(project=project).exists():
        # A first job should not need a template written first.
        templates.template_default(project, request.user)
    current = templates.templates_current(project)
    sources = document_sources(project)
    status = 200
    if request.method == "POST":
        form = JobForm(request.POST, templates=current, backends=backend_choices(project), sources=sources)
        if form.is_valid():
            try:
                job = synthetic_start(project=project, user=request.user, **form.job_settings())
            except ConfigError as error:
                add_service_error(form, error)
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
            initial=JobForm.initial_from(last, current),
            templates=current,
            backends=backend_choices(project),
            sources=sources,
        )
    return render(
        request,
        "curation/generation/job_new.html",
        {
            "project": project,
            "form": form,
            "tools": [tool["function"]["name"] for tool in project_tools(project)],
            "classification": project.kind == Project.Kind.CLASSIFICATION,
            "document_sources": "sources" in form.fields,
            "title": _("New generation job"),
        },
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
def job_detail(request: ProjectRequest, job_id: int) -> HttpResponse:
    project = request.project
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
        "stats": draft_stats.job_stats(project).get(job.pk),
        "rows": _draft_rows(job),
        "progress": work_progress(job),
        "title": _("Generation job"),
    }
    return render_polled(request, "curation/generation/job.html", "job-body", ctx, finished=job.finished)


@project_view(Action.REVIEW)
@require_POST
def job_action(request: ProjectRequest, job_id: int) -> HttpResponse:
    project = request.project
    job = get_object_or_404(GenerationJob, pk=job_id, project=project)
    action = request.POST.get("action")
    if action == "cancel":
        jobs.generation_job_cancel(job=job)
        messages.success(request, _("The job stops after its current batch; the drafts it made stay."))
    elif action == "resume":
        try:
            generation_job_resume(job=job)
        except ConfigError as error:
            flash_service_error(request, error)
        else:
            messages.success(request, _("Started again; it makes only the drafts it lacks."))
    else:
        messages.error(request, _("Choose cancel or resume."))
    return redirect("generate_job", project.slug, job.pk)
