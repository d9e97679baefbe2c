from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from curation import selectors, tasks
from curation.dashboard import dashboard
from curation.exports import example_export
from curation.forms import ExportForm, ImportForm, int_or_none, messages_from_post
from curation.history import revision_history
from curation.imports import import_job_create
from curation.limits import LimitExceeded, bulk_ids_check
from curation.models import Example, ImportJob, Membership, Role, UserSettings
from curation.permissions import Action, allowed_actions, project_view, projects_for_user, signed_in
from curation.serializers import ExampleSerializer
from curation.services import (
    REVIEW_STATUSES,
    InvalidExample,
    StaleVersion,
    example_bulk_update,
    example_update,
)

PAGE_SIZE = 50


@require_POST
@signed_in
def language_choose(request: HttpRequest) -> HttpResponse:
    """Remember the person's language; back to the page they were on."""
    language = request.POST.get("language", "")
    if language in dict(settings.LANGUAGES):
        UserSettings.objects.update_or_create(user=request.user, defaults={"language": language})
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("home")
    return redirect(target)


@require_GET
@signed_in
def home(request: HttpRequest) -> HttpResponse:
    projects = projects_for_user(request.user).order_by("name")
    return render(request, "curation/home.html", {"projects": projects})


def _allowed(request: HttpRequest) -> dict[str, bool]:
    """What the page may offer this user (the server checks again on every action)."""
    return allowed_actions(request.role)  # type: ignore[attr-defined]


@require_GET
@project_view(Action.VIEW)
def project_detail(request: HttpRequest) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    ctx = {
        "project": project,
        "role": request.role,  # type: ignore[attr-defined]
        "role_name": Role(request.role).label,  # type: ignore[attr-defined]
        "counts": selectors.project_counts(project=project),
        "dashboard": dashboard(project=project),
        "total": project.examples.count(),
        "allowed": _allowed(request),
        "recent_imports": project.import_jobs.all()[:5],
    }
    from curation.quality.services import latest_scan
    from curation.views_quality import length_chart

    scan = latest_scan(project)
    ctx["lengths"] = scan.summary.get("lengths", {}) if scan else {}
    ctx["chart"] = length_chart(ctx["lengths"])
    return render(request, "curation/project_detail.html", ctx)


def _browse_filters(request: HttpRequest) -> dict[str, str]:
    return {name: request.GET.get(name, "") for name in selectors.BROWSE_FILTERS}


@require_GET
@project_view(Action.VIEW)
def example_list(request: HttpRequest) -> HttpResponse:
    return _example_list_page(request, _browse_filters(request))


def _example_list_page(request: HttpRequest, filters: dict[str, str], status: int = 200) -> HttpResponse:
    """The browser; a search beyond the limits is answered 400 with the reason, no rows."""
    project = request.project  # type: ignore[attr-defined]
    try:
        qs = selectors.example_list(project=project, filters=filters)
    except InvalidExample as exc:
        messages.error(request, f"{exc.field}: {exc.message}")
        qs, status = Example.objects.none(), 400
    # Page through ids alone, then load the page's rows: a late page's OFFSET then skips
    # index entries, not rows joined to their labels.
    page = Paginator(qs.values_list("pk", flat=True), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = qs.in_bulk(list(page.object_list))
    page.object_list = [rows[pk] for pk in page.object_list]
    query = urlencode({k: v for k, v in filters.items() if v})
    annotators = Membership.objects.filter(project=project).select_related("user").order_by("user__username")
    ctx = {
        "project": project,
        "page": page,
        "filters": filters,
        "query": query,
        "labels": project.labels.all(),
        "annotators": [m.user.username for m in annotators],
        "statuses": Example.Status.choices,
        "sources": Example.Source.choices,
        "splits": Example.Split.choices,
        "sorts": SORT_CHOICES,
        "checks": CHECK_CHOICES,
        "allowed": _allowed(request),
    }
    template = "curation/example_list.html"
    if request.htmx and request.htmx.target == "example-table":
        template += "#example-table"
    return render(request, template, ctx, status=status)


CHECK_CHOICES = [
    ("duplicate", gettext_lazy("In a duplicate group")),
    ("leak", gettext_lazy("Leaks a training example")),
    ("pii", gettext_lazy("Holds personal data")),
    ("truncated", gettext_lazy("Longer than the sequence length")),
    ("over_context", gettext_lazy("Longer than the model's context")),
    ("format", gettext_lazy("Format problems")),
    ("facts", gettext_lazy("Answer brings new facts")),
    ("drafts", gettext_lazy("Unreviewed generated drafts")),
]
SORT_CHOICES = [
    ("id", gettext_lazy("Oldest first")),
    ("-id", gettext_lazy("Newest first")),
    ("-updated", gettext_lazy("Recently changed")),
    ("label", gettext_lazy("Label")),
    ("status", gettext_lazy("Status")),
    ("-annotations", gettext_lazy("Most annotations")),
]


@require_POST
@project_view(Action.EDIT)
def example_bulk(request: HttpRequest) -> HttpResponse:
    """Set label, split or status on the selected examples, or on all that match the filters."""
    project = request.project  # type: ignore[attr-defined]
    field, value = request.POST.get("field", ""), request.POST.get("value", "")
    filters = {name: request.POST.get(name, "") for name in selectors.BROWSE_FILTERS}
    examples, ids = None, None
    try:
        if request.POST.get("scope") == "filtered":
            examples = selectors.example_list(project=project, filters=filters)
        else:
            ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
            bulk_ids_check(ids)
        changed = example_bulk_update(
            project=project, user=request.user, examples=examples, ids=ids, changes={field: value or None}
        )
    except LimitExceeded as exc:
        if exc.field != "q":  # a search beyond the limits is reported by the page itself
            messages.error(request, f"{exc.field}: {exc.message}")
        return _example_list_page(request, filters, status=400)
    except InvalidExample as exc:
        messages.error(request, f"{exc.field}: {exc.message}")
    else:
        messages.success(
            request,
            ngettext("%(n)d example changed.", "%(n)d examples changed.", changed) % {"n": changed},
        )
    query = urlencode({k: v for k, v in filters.items() if v})
    return redirect(reverse("example_list", args=[project.slug]) + (f"?{query}" if query else ""))


def _example_page(request: HttpRequest, example: Example, status: int = 200, **extra) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    allowed = _allowed(request)
    ctx = {
        "project": project,
        "example": example,
        "history": revision_history(example=example),
        "allowed": allowed,
        "labels": project.labels.all(),
        "roles": ["system", "user", "assistant"],
        "turns": example.messages,
        "chosen_label": example.label.name if example.label_id else None,
        "version": example.version,
        "statuses": [(v, n) for v, n in Example.Status.choices if allowed["review"] or v not in REVIEW_STATUSES],
        "splits": Example.Split.choices,
        **extra,
    }
    return render(request, "curation/example_detail.html", ctx, status=status)


@require_GET
@project_view(Action.VIEW)
def example_detail(request: HttpRequest, example_id: int) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    return _example_page(request, selectors.example_get(project=project, example_id=example_id))


@require_POST
@project_view(Action.EDIT)
def example_edit(request: HttpRequest, example_id: int) -> HttpResponse:
    """Save an edit made on the example page. A stale version is refused with the other
    person's change shown and this person's text kept in the form."""
    example = selectors.example_get(project=request.project, example_id=example_id)  # type: ignore[attr-defined]
    turns = messages_from_post(request.POST)
    changes = {
        "messages": turns,
        "label": request.POST.get("label") or None,
        "split": request.POST.get("split") or example.split,
        "status": request.POST.get("status") or example.status,
    }
    kept = {"turns": turns, "chosen_label": changes["label"], "edit_open": True}
    version = int_or_none(request.POST.get("version")) or example.version
    try:
        example_update(example=example, user=request.user, version=version, **changes)
    except StaleVersion as stale:
        current = selectors.example_get(project=request.project, example_id=example_id)  # type: ignore[attr-defined]
        return _example_page(
            request,
            current,
            status=409,
            conflict=ExampleSerializer(stale.current).data,
            version=stale.current.version,
            **kept,
        )
    except InvalidExample as error:
        return _example_page(request, example, status=400, error=error, version=version, **kept)
    messages.success(request, _("Saved."))
    return redirect("example_detail", request.project.slug, example.pk)  # type: ignore[attr-defined]


@require_http_methods(["GET", "POST"])
@project_view(Action.IMPORT)
def import_upload(request: HttpRequest) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                job = import_job_create(
                    project=project,
                    user=request.user,
                    fileobj=form.cleaned_data["file"],
                    filename=form.cleaned_data["file"].name,
                    format=form.cleaned_data["format"],
                    options=form.import_options(),
                )
                transaction.on_commit(lambda: tasks.import_run(job.pk))
        except InvalidExample as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            url = job_url(job)
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return render(
        request,
        "curation/import.html",
        {"project": project, "form": form, "jobs": project.import_jobs.select_related("created_by")[:10]},
    )


def job_url(job: ImportJob) -> str:
    return reverse("import_job", args=[job.project.slug, job.pk])


@require_GET
@project_view(Action.IMPORT)
def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    job = get_object_or_404(ImportJob, pk=job_id, project=project)
    if not job.is_finished:
        live = cache.get(tasks.progress_key(job.pk))
        if live:
            job.progress, job.rows_read = live
    ctx = {"project": project, "job": job, "report": job.report or {}}
    if request.htmx:
        response = render(request, "curation/import_job.html#job-status", ctx)
        if job.is_finished:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "curation/import_job.html", ctx)


@require_GET
@project_view(Action.EXPORT)
def export(request: HttpRequest) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    label_names = list(project.labels.values_list("name", flat=True))
    form = ExportForm(request.GET or None, label_names=label_names)
    if request.GET and form.is_valid():
        data = form.cleaned_data
        try:
            content_type, filename, chunks = example_export(
                project=project,
                format=data["format"],
                split=data["split"] or None,
                status=data["status"] or None,
                source=data["source"] or None,
                label=data["label"] or None,
                formulas="raw" if data["raw_formulas"] else "escaped",
            )
        except InvalidExample as exc:
            messages.error(request, exc.message)
        else:
            response = StreamingHttpResponse(chunks, content_type=content_type)
            response["Content-Disposition"] = content_disposition_header(True, filename)
            return response
    return render(request, "curation/export.html", {"project": project, "form": form, "title": _("Export")})
