"""An example's revision history, and restoring an earlier version."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from curation.core import selectors as core_selectors
from curation.core.forms import (
    argument_problem,
    arguments_check,
    editor_context,
    field_in_words,
    int_or_none,
    messages_from_post,
)
from curation.core.history import example_restore, revision_history
from curation.core.limits import LimitExceeded, bulk_ids_check
from curation.core.permissions import (
    Action,
    ProjectRequest,
    allowed_actions,
    project_view,
    projects_for_user,
    role_allows,
    signed_in,
)
from curation.core.selectors import example_get
from curation.core.serializers import ExampleSerializer
from curation.core.services import (
    REVIEW_STATUSES,
    InvalidExample,
    StaleVersion,
    example_bulk_update,
    example_update,
    user_language_set,
)
from curation.models import Example, ExampleRevision, Membership, Role
from curation.workspace import navigation, selectors
from curation.workspace.dashboard import dashboard


def _history_page(request: ProjectRequest, example: Example, *, error: str = "", status: int = 200) -> HttpResponse:
    """The history section alone for htmx, else a page of its own."""
    ctx = {
        "project": request.project,
        "example": example,
        "history": revision_history(example=example),
        "allowed": allowed_actions(request.role),
        "error": error,
    }
    template = "curation/workspace/_history.html#history" if request.htmx else "curation/workspace/_history.html"
    return render(request, template, ctx, status=status)


@require_GET
@project_view(Action.VIEW)
def example_history(request: ProjectRequest, example_id: int) -> HttpResponse:
    project = request.project
    return _history_page(request, example_get(project=project, example_id=example_id))


@require_POST
@project_view(Action.REVIEW)
def revision_restore(request: ProjectRequest, example_id: int, revision_id: int) -> HttpResponse:
    example = example_get(project=request.project, example_id=example_id)
    revision = get_object_or_404(ExampleRevision, pk=revision_id, example=example)
    version = int_or_none(request.POST.get("version"))
    if version is None:
        error = _("The form did not say which version you were looking at. Reload the page and restore again.")
        return _history_page(request, example, error=error, status=400)
    try:
        example = example_restore(example=example, revision=revision, user=request.user, version=version)
    except StaleVersion as stale:
        error = _(
            "Nothing was restored: someone saved this example since you opened it. It is now at "
            "version %(current)s, not %(seen)s. Look at their change below, then restore again if "
            "you still want version %(wanted)s."
        ) % {"current": stale.current.version, "seen": version, "wanted": revision.version}
        return _history_page(request, stale.current, error=error, status=409)
    except InvalidExample as invalid:
        return _history_page(request, example, error=invalid.message, status=400)
    flash.success(
        request,
        _("Version %(wanted)s restored; the example is now at version %(now)s.")
        % {"wanted": revision.version, "now": example.version},
    )
    url = reverse("example_detail", args=[request.project.slug, example.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


PAGE_SIZE = 50


@require_POST
@signed_in
def language_choose(request: HttpRequest) -> HttpResponse:
    """Remember the person's language; back to the page they were on."""
    user_language_set(user=request.user, language=request.POST.get("language", ""))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("home")
    return redirect(target)


@require_GET
@signed_in
def home(request: HttpRequest) -> HttpResponse:
    from curation.projects.services import may_create_projects

    projects = projects_for_user(request.user).order_by("name")
    ctx = {"projects": projects, "may_create": may_create_projects(request.user)}
    return render(request, "curation/workspace/home.html", ctx)


def _allowed(request: ProjectRequest) -> dict[str, bool]:
    """What the page may offer this user (the server checks again on every action)."""
    return allowed_actions(request.role)


@require_GET
@project_view(Action.VIEW)
def project_detail(request: ProjectRequest) -> HttpResponse:
    project = request.project
    board = dashboard(project=project)
    total = board["total"]
    navigation.remember_attention(request, board["attention"])  # the menu's counts, not counted twice
    ctx = {
        "project": project,
        "role": request.role,
        "role_name": Role(request.role).label,
        "counts": board["counts"],
        "dashboard": board,
        "total": total,
        "allowed": _allowed(request),
        "recent_imports": project.import_jobs.all()[:5],
        "next_steps": navigation.next_steps(
            project=project,
            role=request.role,
            counts=board["attention"],
            total=total,
            queue=navigation.queue_left(request, project) if role_allows(request.role, Action.LABEL) else 0,
        ),
    }
    from curation.quality.services import latest_scan
    from curation.quality.views import length_chart

    scan = latest_scan(project)
    ctx["lengths"] = scan.summary.get("lengths", {}) if scan else {}
    ctx["chart"] = length_chart(ctx["lengths"])
    return render(request, "curation/workspace/project_detail.html", ctx)


def _browse_filters(request: ProjectRequest) -> dict[str, str]:
    return {name: request.GET.get(name, "") for name in core_selectors.BROWSE_FILTERS}


@require_GET
@project_view(Action.VIEW)
def example_list(request: ProjectRequest) -> HttpResponse:
    return _example_list_page(request, _browse_filters(request))


def _example_list_page(request: ProjectRequest, filters: dict[str, str], status: int = 200) -> HttpResponse:
    """The browser; a search beyond the limits is answered 400 with the reason, no rows."""
    project = request.project
    try:
        qs = selectors.example_list(project=project, filters=filters)
    except InvalidExample as exc:
        messages.error(request, str(exc))  # "field: message"
        qs, status = Example.objects.none(), 400
    # Page through ids alone and load the page's rows in the same query (the ids are its
    # subquery): a late page's OFFSET then skips index entries, not rows joined to their labels.
    page = Paginator(qs.values_list("pk", flat=True), PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(qs.filter(pk__in=page.object_list))
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
        "label_sources": [("person", _("A person")), ("rules", _("Rules")), ("none", _("No label"))],
        "allowed": _allowed(request),
    }
    template = "curation/workspace/example_list.html"
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
def example_bulk(request: ProjectRequest) -> HttpResponse:
    """Set label, split or status on the selected examples, or on all that match the filters."""
    project = request.project
    field, value = request.POST.get("field", ""), request.POST.get("value", "")
    filters = {name: request.POST.get(name, "") for name in core_selectors.BROWSE_FILTERS}
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
            messages.error(request, str(exc))  # "field: message"
        return _example_list_page(request, filters, status=400)
    except InvalidExample as exc:
        messages.error(request, str(exc))  # "field: message"
    else:
        messages.success(
            request,
            ngettext("%(n)d example changed.", "%(n)d examples changed.", changed) % {"n": changed},
        )
    query = urlencode({k: v for k, v in filters.items() if v})
    return redirect(reverse("example_list", args=[project.slug]) + (f"?{query}" if query else ""))


def _example_page(request: ProjectRequest, example: Example, status: int = 200, **extra) -> HttpResponse:
    project = request.project
    allowed = _allowed(request)
    ctx = {
        "project": project,
        "example": example,
        "history": revision_history(example=example),
        "allowed": allowed,
        "labels": project.labels.all(),
        "chosen_label": example.label.name if example.label_id else None,
        "version": example.version,
        "statuses": [(v, n) for v, n in Example.Status.choices if allowed["review"] or v not in REVIEW_STATUSES],
        "splits": Example.Split.choices,
        **extra,
        **editor_context(extra.get("turns", example.messages), example.tools),
    }
    if "error" in extra:
        ctx["error_where"] = field_in_words(extra["error"].field)
    return render(request, "curation/workspace/example_detail.html", ctx, status=status)


@require_GET
@project_view(Action.VIEW)
def example_detail(request: ProjectRequest, example_id: int) -> HttpResponse:
    project = request.project
    return _example_page(request, core_selectors.example_get(project=project, example_id=example_id))


@require_POST
@project_view(Action.EDIT)
def example_edit(request: ProjectRequest, example_id: int) -> HttpResponse:
    """Save an edit made on the example page. A stale version is refused with the other
    person's change shown and this person's text kept in the form."""
    example = core_selectors.example_get(project=request.project, example_id=example_id)
    turns = messages_from_post(request.POST)
    changes = {
        "messages": turns,
        "label": request.POST.get("label") or None,
        "split": request.POST.get("split") or example.split,
        "status": request.POST.get("status") or example.status,
    }
    kept = {"turns": turns, "chosen_label": changes["label"], "edit_open": True}
    version = int_or_none(request.POST.get("version")) or example.version
    if _unchanged(example, changes):
        messages.info(request, _("Nothing changed."))
        return redirect("example_detail", request.project.slug, example.pk)
    try:
        if turns != example.messages:
            arguments_check(turns, example.tools)
        example_update(example=example, user=request.user, version=version, **changes)
    except StaleVersion as stale:
        current = core_selectors.example_get(project=request.project, example_id=example_id)
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
    return redirect("example_detail", request.project.slug, example.pk)


def _unchanged(example: Example, changes: dict) -> bool:
    """Saving what the page showed, untouched, makes no new version."""
    return (
        changes["messages"] == example.messages
        and changes["label"] == (example.label.name if example.label_id else None)
        and changes["split"] == example.split
        and changes["status"] == example.status
    )


@require_POST
@project_view(Action.EDIT)
def tool_arguments_check(request: ProjectRequest, example_id: int) -> HttpResponse:
    """The chat editor's check of a call as its arguments are typed: what is wrong with the
    function and its arguments against the example's tools, escaped; nothing when all is well."""
    example = core_selectors.example_get(project=request.project, example_id=example_id)
    problem = argument_problem(request.POST.get("function", ""), request.POST.get("arguments", ""), example.tools)
    return HttpResponse(escape(problem), content_type="text/html; charset=utf-8")
