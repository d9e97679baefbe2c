"""Dismissing quality findings in the browser (reviewers and admins): a personal data finding
that is not personal data, a duplicate group meant to be alike, a leak that is not one; the
list of what was dismissed, by whom and why; and undoing a dismissal."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from curation.core.errors import flash_service_error
from curation.core.permissions import Action, ProjectRequest, allowed_actions, project_view
from curation.models import DuplicateCluster, Example, FindingDismissal, Project
from curation.quality import dismissals

DISMISSALS_PER_PAGE = 50
FIELDS = {
    "reason": _("Reason"),
    "note": _("Note"),
    "key": _("Finding"),
    "kind": _("Kind"),
    "ids": _("Dismissals"),
    "trained": _("Training example"),
}
BACK = {
    "pii": "quality_pii",
    "duplicates": "quality_duplicates",
    "leakage": "quality_leakage",
    "dismissals": "quality_dismissals",
}


def _back(request: ProjectRequest, default: str) -> str:
    """The list the action came from, on the same page (never a URL taken from the request)."""
    project: Project = request.project
    name = BACK.get(request.POST.get("back", ""), BACK[default])
    query = {k: v for k in ("page", "show") if (v := request.POST.get(k, "")) and (v.isdigit() or k == "show")}
    if query.get("show") not in (None, "open", "leaks", "all"):
        query.pop("show")
    url = reverse(name, args=[project.slug])
    return f"{url}?{urlencode(query)}" if query else url


def _fields(request: ProjectRequest) -> dict[str, str]:
    return {"reason": request.POST.get("reason", ""), "note": request.POST.get("note", "")}


@require_POST
@project_view(Action.REVIEW)
def pii_dismiss(request: ProjectRequest, example_id: int) -> HttpResponse:
    example = get_object_or_404(Example.objects.select_related("project"), pk=example_id, project=request.project)
    everywhere = bool(request.POST.get("everywhere"))
    try:
        n = dismissals.pii_dismiss(
            example=example,
            user=request.user,
            key=request.POST.get("key", ""),
            everywhere=everywhere,
            **_fields(request),
        )
    except dismissals.DismissError as error:
        flash_service_error(request, error, FIELDS)
    else:
        if n == 1:
            text = _("Finding dismissed in example %(id)s; later checks leave it out while the example is unchanged.")
        else:
            text = _("Finding dismissed in %(n)s examples; later checks leave it out while they are unchanged.")
        messages.success(request, text % {"n": n, "id": example.pk})
    return redirect(_back(request, "pii"))


@require_POST
@project_view(Action.REVIEW)
def cluster_dismiss(request: ProjectRequest, cluster_id: int) -> HttpResponse:
    cluster = get_object_or_404(
        DuplicateCluster.objects.select_related("scan__project"), pk=cluster_id, scan__project=request.project
    )
    try:
        dismissals.cluster_dismiss(cluster=cluster, user=request.user, **_fields(request))
    except dismissals.DismissError as error:
        flash_service_error(request, error, FIELDS)
    else:
        messages.success(request, _("Group dismissed: its examples are meant to be alike."))
    return redirect(_back(request, "duplicates"))


@require_POST
@project_view(Action.REVIEW)
def cluster_restore(request: ProjectRequest, cluster_id: int) -> HttpResponse:
    cluster = get_object_or_404(
        DuplicateCluster.objects.select_related("scan__project"), pk=cluster_id, scan__project=request.project
    )
    try:
        dismissals.cluster_restore(cluster=cluster, user=request.user)
    except dismissals.DismissError as error:
        flash_service_error(request, error, FIELDS)
    else:
        messages.success(request, _("The group counts as duplicates again."))
    return redirect(_back(request, "duplicates"))


@require_POST
@project_view(Action.REVIEW)
def leak_dismiss(request: ProjectRequest, example_id: int) -> HttpResponse:
    project = request.project
    evaluated = get_object_or_404(Example.objects.select_related("project"), pk=example_id, project=project)
    trained_id = request.POST.get("trained", "")
    trained = Example.objects.filter(
        project=project, pk=int(trained_id) if trained_id.isdigit() else 0, split=Example.Split.TRAIN
    ).first()
    try:
        if trained is None:
            raise dismissals.DismissError("trained", _("Choose the training example this one duplicates."))
        dismissals.leak_dismiss(evaluated=evaluated, trained=trained, user=request.user, **_fields(request))
    except dismissals.DismissError as error:
        flash_service_error(request, error, FIELDS)
    else:
        messages.success(request, _("Leak dismissed: example %(e)s and %(t)s.") % {"e": evaluated.pk, "t": trained.pk})
    return redirect(_back(request, "leakage"))


@require_POST
@project_view(Action.REVIEW)
def dismissal_restore(request: ProjectRequest) -> HttpResponse:
    ids = [int(i) for i in request.POST.getlist("id") if i.isdigit()]
    try:
        if not ids:
            raise dismissals.DismissError("ids", _("Choose a dismissal to undo."))
        n = dismissals.dismissals_restore(project=request.project, user=request.user, ids=ids)
    except dismissals.DismissError as error:
        flash_service_error(request, error, FIELDS)
    else:
        messages.success(
            request,
            ngettext(
                "%(n)s dismissal undone: the finding counts again.",
                "%(n)s dismissals undone: the findings count again.",
                n,
            )
            % {"n": n},
        )
    return redirect(_back(request, "dismissals"))


@require_GET
@project_view(Action.VIEW)
def dismissal_list(request: ProjectRequest) -> HttpResponse:
    """What was dismissed, by whom, when and why; the newest first. A dismissal whose example
    has changed since no longer applies, and says so."""
    project = request.project
    kind = request.GET.get("kind", "")
    found = FindingDismissal.objects.filter(project=project).select_related("created_by", "example")
    if kind in FindingDismissal.Kind.values:
        found = found.filter(kind=kind)
    page = Paginator(found.order_by("-created_at", "-id"), DISMISSALS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {"dismissal": d, "applies": d.example.content_hash == d.content_hash, "what": _what(d)}
        for d in page.object_list
    ]
    return render(
        request,
        "curation/quality/dismissals.html",
        {
            "project": project,
            "page": page,
            "rows": rows,
            "kind": kind,
            "kinds": FindingDismissal.Kind.choices,
            "allowed": allowed_actions(request.role),
            "title": _("Dismissed findings"),
        },
    )


def _what(dismissal: FindingDismissal) -> str:
    """The finding in words, without repeating personal data the dismissal does not hold."""
    if dismissal.kind in (FindingDismissal.Kind.DUPLICATE, FindingDismissal.Kind.LEAKAGE):
        other = dismissal.key.split(":", 1)[0]
        return _("alike to example #%(id)s") % {"id": other}
    if dismissal.kind == FindingDismissal.Kind.PII:
        from curation.quality import pii

        for finding in dismissals.pii_findings(dismissal.example):
            if finding["key"] == dismissal.key:
                return f"{pii.KIND_LABELS.get(finding['kind'], finding['kind'])}: {finding['text']}"
        return _("%(kind)s no longer in the example's text") % {"kind": dismissal.get_kind_display()}
    return dismissal.get_kind_display()
