"""Pages with a part that keeps itself up to date while a job runs.

The template marks the part with ``{% poll 'view_name' args until=job.finished %}`` (the
``shikomi`` tags): htmx fetches the page again every second or two and swaps the part in. The
view answers through ``render_polled``: the whole page, or to htmx the part alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from django.shortcuts import render
from django_htmx.http import HttpResponseClientRefresh, HttpResponseStopPolling

from curation.core.permissions import ProjectRequest


def render_polled(
    request: ProjectRequest,
    template: str,
    part: str,
    ctx: dict[str, Any],
    *,
    finished: bool,
    page_context: Callable[[], dict[str, Any]] | None = None,
    reload_when_finished: bool = False,
) -> HttpResponse:
    """The page, or to htmx's poll the partial ``part`` alone; once ``finished`` the answer is 286,
    which stops the polling. ``reload_when_finished``: reload the whole page instead, where more
    than the part changes at the end. ``page_context``: what only the whole page shows, not
    worked out for each poll."""
    if request.htmx:
        if finished and reload_when_finished:
            return HttpResponseClientRefresh()
        response = render(request, f"{template}#{part}", ctx)
        if finished:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, template, ctx | (page_context() if page_context else {}))
