"""The review queue for examples that need review (imported, labeled by rules, edited after
approval), one at a time: the whole conversation, its label and where the label came from,
its source, and why it waits. A reviewer approves (after relabeling or editing it, if need
be), rejects, or skips it. Every decision is one example_update with the version the page
showed (curation/review/example_services.py), so it is in the example's history.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from curation.core import selectors as core_selectors
from curation.core.forms import editor_context, field_in_words, int_or_none, messages_from_post
from curation.core.permissions import Action, ProjectRequest, project_view
from curation.core.services import InvalidExample, StaleVersion
from curation.models import Example, Project
from curation.review import example_selectors as selectors
from curation.review import example_services as services
from curation.review.views import turn_of


def _filters(data: Any) -> tuple[dict[str, str], selectors.FilterError | None]:
    """The filters of the request; a bad one is dropped and returned as the error to show."""
    try:
        return selectors.clean_filters(data.get("source"), data.get("label_source")), None
    except selectors.FilterError as error:
        return {}, error


def queue_url(project: Project, filters: dict[str, str], after: int | None = None) -> str:
    query = {**filters, **({"after": after} if after else {})}
    url = reverse("example_review_queue", args=[project.slug])
    return f"{url}?{urlencode(query)}" if query else url


def _page(
    request: ProjectRequest,
    filters: dict[str, str],
    after: int | None,
    *,
    example: Example | None = None,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    project = request.project
    if example is None:
        example = selectors.next_example(project, filters, after=after)
    item = selectors.waiting(example) if example is not None else None
    remaining = selectors.waiting_examples(project, filters).count()
    ctx: dict[str, Any] = {
        "project": project,
        "title": _("Review examples"),
        "filters": filters,
        "after": after,
        "item": item,
        "remaining": remaining,
        "waiting": selectors.waiting_examples(project).count() if filters else remaining,
        "sources": Example.Source.choices,
        "label_sources": list(selectors.LABEL_SOURCE_NAMES.items()),
        "first_url": queue_url(project, filters),
        **extra,
    }
    if item is not None:
        previous = selectors.previous_id(project, filters, example.pk)
        ctx.update(
            shown_turns=[turn_of(m) for m in example.messages],
            labels=selectors.label_keys(project, example.label),
            chosen_label=extra.get("chosen_label", example.label.name if example.label_id else ""),
            skip_url=queue_url(project, filters, example.pk),
            previous_url=queue_url(project, filters, previous - 1) if previous is not None else "",
            example=example,
            **editor_context(extra.get("edited") or example.messages, example.tools),
        )
    return render(request, "curation/review/examples.html", ctx, status=status)


@require_GET
@project_view(Action.REVIEW)
def example_review_queue(request: ProjectRequest) -> HttpResponse:
    filters, error = _filters(request.GET)
    if error is not None:
        messages.error(request, f"{field_in_words(error.field)}: {error.message}")
    return _page(request, filters, int_or_none(request.GET.get("after")))


@require_POST
@project_view(Action.REVIEW)
def example_review_decide(request: ProjectRequest, example_id: int) -> HttpResponse:
    project = request.project
    example = core_selectors.example_get(project=project, example_id=example_id)
    filters, _error = _filters(request.POST)
    after = int_or_none(request.POST.get("after"))
    version = int_or_none(request.POST.get("version"))
    action = request.POST.get("action") or ""
    edited = messages_from_post(request.POST) if "role" in request.POST else None
    label = request.POST["label"] if "label" in request.POST else services.KEEP
    try:
        if version is None:
            raise InvalidExample("version", _("The form did not say which version of the example you saw; reload."))
        example = services.example_review_decide(
            example=example, user=request.user, version=version, action=action, label=label, messages=edited
        )
    except StaleVersion as stale:
        messages.error(
            request,
            _("Someone changed example %(id)s since you opened it (it is now at version %(version)s); look again.")
            % {"id": example.pk, "version": stale.current.version},
        )
        return redirect(queue_url(project, filters, after))
    except services.NotWaiting as conflict:
        messages.error(request, conflict.message)
        return redirect(queue_url(project, filters, after))
    except InvalidExample as error:
        # The reviewer's edit is kept in the form, with what is wrong with it.
        return _page(
            request,
            filters,
            after,
            example=example,
            status=400,
            error=error,
            error_where=field_in_words(error.field),
            edited=edited,
            edit_open=edited is not None,
            chosen_label=label if isinstance(label, str) else None,
        )
    if example.status == Example.Status.REJECTED:
        messages.success(request, _("Example %(id)s rejected.") % {"id": example.pk})
    else:
        messages.success(request, _("Example %(id)s approved.") % {"id": example.pk})
    return redirect(queue_url(project, filters, after))
