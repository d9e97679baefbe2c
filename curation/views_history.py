"""An example's revision history, and restoring an earlier version."""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from curation.forms import int_or_none
from curation.history import example_restore, revision_history
from curation.models import Example, ExampleRevision
from curation.permissions import Action, allowed_actions, project_view
from curation.selectors import example_get
from curation.services import InvalidExample, StaleVersion


def _history_page(request: HttpRequest, example: Example, *, error: str = "", status: int = 200) -> HttpResponse:
    """The history section alone for htmx, else a page of its own."""
    ctx = {
        "project": request.project,  # type: ignore[attr-defined]
        "example": example,
        "history": revision_history(example=example),
        "allowed": allowed_actions(request.role),  # type: ignore[attr-defined]
        "error": error,
    }
    template = "curation/_history.html#history" if request.htmx else "curation/_history.html"  # type: ignore[attr-defined]
    return render(request, template, ctx, status=status)


@require_GET
@project_view(Action.VIEW)
def example_history(request: HttpRequest, example_id: int) -> HttpResponse:
    project = request.project  # type: ignore[attr-defined]
    return _history_page(request, example_get(project=project, example_id=example_id))


@require_POST
@project_view(Action.REVIEW)
def revision_restore(request: HttpRequest, example_id: int, revision_id: int) -> HttpResponse:
    example = example_get(project=request.project, example_id=example_id)  # type: ignore[attr-defined]
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
    url = reverse("example_detail", args=[request.project.slug, example.pk])  # type: ignore[attr-defined]
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)  # type: ignore[attr-defined]
