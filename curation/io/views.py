from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from curation.connections.services import secret_names
from curation.core.errors import ServiceError, add_service_error, flash_service_error
from curation.core.permissions import Action, ProjectRequest, project_view, role_allows
from curation.core.polling import render_polled
from curation.core.services import InvalidExample
from curation.io import exports, hub, tasks
from curation.io.exports import SKIPPED_HEADER, example_export, skipped_header, skipped_text
from curation.io.forms import EXPORT_FORMATS, ExportForm, HubForm, ImportForm
from curation.models import Example, ImportJob, Project


@require_http_methods(["GET", "POST"])
@project_view(Action.IMPORT)
def import_upload(request: ProjectRequest) -> HttpResponse:
    project = request.project
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = tasks.import_start(
                project=project,
                user=request.user,
                fileobj=form.cleaned_data["file"],
                filename=form.cleaned_data["file"].name,
                format=form.cleaned_data["format"],
                options=form.import_options(),
            )
        except InvalidExample as exc:
            add_service_error(form, exc)
        else:
            url = job_url(job)
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return render(
        request,
        "curation/io/import.html",
        {"project": project, "form": form, "jobs": project.import_jobs.select_related("created_by")[:10]},
    )


def job_url(job: ImportJob) -> str:
    return reverse("import_job", args=[job.project.slug, job.pk])


@require_GET
@project_view(Action.IMPORT)
def import_job(request: ProjectRequest, job_id: int) -> HttpResponse:
    project = request.project
    job = get_object_or_404(ImportJob, pk=job_id, project=project)
    if not job.finished:
        live = cache.get(tasks.progress_key(job.pk))
        if live:
            job.progress, job.rows_read = live
    ctx = {"project": project, "job": job, "report": job.report or {}, "progress": tasks.import_progress(job)}
    return render_polled(request, "curation/io/import_job.html", "job-status", ctx, finished=job.finished)


@require_GET
@project_view(Action.EXPORT)
def export(request: ProjectRequest) -> HttpResponse:
    """The form, then the download. When the format cannot hold some of the chosen examples,
    the page first says how many and why, with a link that downloads the rest."""
    project = request.project
    label_names = list(project.labels.values_list("name", flat=True))
    form = ExportForm(request.GET or None, label_names=label_names)
    ctx = {"project": project, "form": form, "title": _("Export")}
    if request.GET and form.is_valid():
        try:
            export = example_export(
                project=project,
                per_split=form.cleaned_data["per_split"],
                card=form.cleaned_data["card"],
                **form.export_options(),
            )
        except InvalidExample as exc:
            flash_service_error(request, exc)
        else:
            if not export.skipped or request.GET.get("confirm"):
                response = StreamingHttpResponse(export.chunks, content_type=export.content_type)
                response["Content-Disposition"] = content_disposition_header(True, export.filename)
                if export.skipped:
                    response[SKIPPED_HEADER] = skipped_header(export.skipped)
                return response
            query = request.GET.copy()
            query["confirm"] = "1"
            ctx["skipped"] = skipped_text(export.skipped)
            ctx["skipped_total"] = export.skipped_total
            ctx["download"] = query.urlencode()
    ctx.update(_preview_context(project, form if request.GET else None, label_names))
    ctx.update(_hub_context(request, None))
    return render(request, "curation/io/export.html", ctx)


@require_POST
@project_view(Action.MANAGE_PROJECT)
def export_hub(request: ProjectRequest) -> HttpResponse:
    """Push the export chosen on the export page (its fields come along) to the Hugging Face Hub,
    with its data card; the push runs while the admin waits (curation/io/hub.py)."""
    project = request.project
    label_names = list(project.labels.values_list("name", flat=True))
    form = ExportForm(request.POST, label_names=label_names)
    hub_form = HubForm(request.POST, secrets=secret_names())
    if not form.is_valid():
        for name, found in form.errors.items():
            for message in found:
                hub_form.add_error(None, f"{_label(form, name)}: {message}")
    elif hub_form.is_valid():
        try:
            pushed = hub.hub_push(
                project=project,
                user=request.user,
                per_split=form.cleaned_data["per_split"],
                **hub_form.cleaned_data,
                **form.export_options(),
            )
        except ServiceError as exc:
            add_service_error(hub_form, exc)
        else:
            messages.success(
                request,
                _("Pushed %(files)s to %(repo)s on the Hub: %(url)s")
                % {"files": ", ".join(pushed.files), "repo": pushed.repo_id, "url": pushed.commit_url},
            )
            url = reverse("export", args=[project.slug])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    ctx = {"project": project, "form": form, "title": _("Export")}
    ctx.update(_preview_context(project, form, label_names))
    ctx.update(_hub_context(request, hub_form))
    return render(request, "curation/io/export.html", ctx)


def _hub_context(request: ProjectRequest, hub_form: HubForm | None) -> dict[str, Any]:
    """The push to the Hub: offered to admins only (the push view checks it again)."""
    if not role_allows(request.role, Action.MANAGE_PROJECT):
        return {"hub_form": None}
    secrets = secret_names()
    return {
        "hub_form": hub_form or HubForm(secrets=secrets),
        "hub_secrets": secrets,
        "hub_endpoint": settings.SHIKOMI_HUB_ENDPOINT,
    }


@require_GET
@project_view(Action.EXPORT)
def export_preview(request: ProjectRequest) -> HttpResponse:
    """The export page's preview for the options chosen: counts per split and status, what the
    format cannot hold and the first records (htmx swaps it in as the options change)."""
    project = request.project
    label_names = list(project.labels.values_list("name", flat=True))
    form = ExportForm(request.GET, label_names=label_names)
    ctx = {"project": project} | _preview_context(project, form, label_names)
    return render(request, "curation/io/export.html#export-preview", ctx)


def _preview_context(project: Project, form: ExportForm | None, label_names: list[str]) -> dict[str, Any]:
    """The preview for ``form``'s options; for the page's first view (no form sent), for the
    options the form starts with."""
    if form is None:
        form = ExportForm({"format": "openai"}, label_names=label_names)
    if not form.is_valid():
        errors = [(_label(form, name), e) for name, found in form.errors.items() for e in found]
        return {"preview": None, "preview_errors": errors}
    try:
        preview = exports.export_preview(project=project, **form.export_options())
    except InvalidExample as exc:
        return {"preview": None, "preview_errors": [(_label(form, exc.field), exc.message)]}
    statuses = dict(Example.Status.choices)
    taken = preview.statuses if preview.statuses is not None else list(statuses)
    rows = [
        (
            dict(Example.Split.choices)[split],
            [by_status.get(s, 0) for s in taken],
            sum(by_status.get(s, 0) for s in taken),
        )
        for split, by_status in preview.counts.items()
    ]
    return {
        "preview": preview,
        "preview_statuses": [statuses[s] for s in taken],
        "preview_rows": rows,
        "left_out": [(statuses[s], n) for s, n in preview.left_out().items() if n],
        "preview_skipped": skipped_text(preview.skipped),
        "preview_format": dict(EXPORT_FORMATS).get(form.cleaned_data["format"], ""),
    }


def _label(form: ExportForm, name: str) -> str:
    field = form.fields.get(name)
    return str(field.label) if field is not None else name
