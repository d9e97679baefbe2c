"""Sources in the browser: admins define where the project's data lives (a database query, a
bucket, web pages, documents), preview a query, and import from a source again and again; the
import's own page is the file import's (curation/io/views.py `import_job`)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from curation.core.errors import add_service_error, flash_service_error
from curation.core.permissions import Action, ProjectRequest, allowed_actions, project_view
from curation.models import Source
from curation.sources import selectors, tasks
from curation.sources.forms import SourceForm, SourceImportForm, mapping_text
from curation.sources.services import SourceInvalid, source_create, source_delete, source_update


def _own(request: ProjectRequest, source_id: int) -> Source:
    return get_object_or_404(Source, pk=source_id, project=request.project)


def _editor(request: ProjectRequest, form: SourceForm, source: Source | None, status: int) -> HttpResponse:
    ctx = {
        "project": request.project,
        "form": form,
        "source": source,
        "title": _("Source") if source else _("New source"),
    }
    return render(request, "curation/sources/edit.html", ctx, status=status)


@require_GET
@project_view(Action.IMPORT)
def source_list(request: ProjectRequest) -> HttpResponse:
    project = request.project
    ctx = {
        "project": project,
        "sources": selectors.sources_for(project),
        "allowed": allowed_actions(request.role),
        "title": _("Sources"),
    }
    return render(request, "curation/sources/list.html", ctx)


@require_http_methods(["GET", "POST"])
@project_view(Action.MANAGE_PROJECT)
def source_new(request: ProjectRequest) -> HttpResponse:
    form = SourceForm(request.POST or None, initial={"kind": Source.Kind.SQL, "json_format": "openai"})
    if request.method == "GET" or not form.is_valid():
        return _editor(request, form, None, 200 if request.method == "GET" else 400)
    try:
        source = source_create(project=request.project, user=request.user, **form.source_fields())
    except SourceInvalid as error:
        add_service_error(form, error)
        return _editor(request, form, None, 400)
    messages.success(request, _("Source %(name)s saved.") % {"name": source.name})
    return redirect("source_detail", request.project.slug, source.pk)


@require_http_methods(["GET", "POST"])
@project_view(Action.MANAGE_PROJECT)
def source_edit(request: ProjectRequest, source_id: int) -> HttpResponse:
    source = _own(request, source_id)
    form = SourceForm(request.POST or None, initial=SourceForm.initial_for(source))
    if request.method == "GET" or not form.is_valid():
        return _editor(request, form, source, 200 if request.method == "GET" else 400)
    try:
        source_update(source=source, **form.source_fields())
    except SourceInvalid as error:
        add_service_error(form, error)
        return _editor(request, form, source, 400)
    messages.success(request, _("Source %(name)s saved.") % {"name": source.name})
    return redirect("source_detail", request.project.slug, source.pk)


@require_POST
@project_view(Action.MANAGE_PROJECT)
def source_remove(request: ProjectRequest, source_id: int) -> HttpResponse:
    source = _own(request, source_id)
    name = source.name
    source_delete(source=source)
    messages.success(request, _("Source %(name)s deleted; the examples it brought in stay.") % {"name": name})
    return redirect("source_list", request.project.slug)


@require_GET
@project_view(Action.IMPORT)
def source_detail(request: ProjectRequest, source_id: int) -> HttpResponse:
    source = _own(request, source_id)
    return _detail(request, source, SourceImportForm(), 200)


def _detail(request: ProjectRequest, source: Source, form: SourceImportForm, status: int) -> HttpResponse:
    jobs = list(selectors.source_jobs(source))
    ctx = {
        "project": request.project,
        "source": source,
        "form": form,
        "jobs": jobs,
        "last": jobs[0] if jobs else None,
        "mapping": mapping_text(source.options.get("mapping")),
        "documents": source.documents.count() if source.kind in (Source.Kind.WEB, Source.Kind.DOCUMENTS) else None,
        "allowed": allowed_actions(request.role),
        "title": source.name,
    }
    return render(request, "curation/sources/detail.html", ctx, status=status)


@require_POST
@project_view(Action.IMPORT)
def source_import(request: ProjectRequest, source_id: int) -> HttpResponse:
    source = _own(request, source_id)
    form = SourceImportForm(request.POST)
    if not form.is_valid():
        return _detail(request, source, form, 400)
    try:
        job = tasks.source_import_start(
            source=source,
            user=request.user,
            skip_bad_rows=form.cleaned_data["skip_bad_rows"],
            update_changed=form.cleaned_data["update_changed"],
            files=request.FILES.getlist("files") or None,
        )
    except SourceInvalid as error:
        flash_service_error(request, error)
        return _detail(request, source, form, 400)
    return redirect(reverse("import_job", args=[request.project.slug, job.pk]))


@require_GET
@project_view(Action.IMPORT)
def source_preview(request: ProjectRequest, source_id: int) -> HttpResponse:
    """The first rows of a SQL source's query, mapped as they would be imported, with their
    errors; the objects an S3 source's import would read (nothing downloaded)."""
    source = _own(request, source_id)
    preview = selectors.sql_preview(source) if source.kind == Source.Kind.SQL else None
    rows = [(row, selectors.message_text(row.messages)) for row in preview.rows] if preview else []
    objects = selectors.s3_preview(source) if source.kind == Source.Kind.S3 else None
    ctx = {"project": request.project, "source": source, "preview": preview, "rows": rows, "objects": objects}
    template = "curation/sources/preview.html"
    return render(request, f"{template}#preview" if request.htmx else template, ctx)
