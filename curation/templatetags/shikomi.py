from typing import Any

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from curation.core.background import queue_position
from curation.core.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    return render_markdown(text)


@register.simple_tag
def poll(view_name: str, *args: Any, until: Any = False, every: str = "1s") -> SafeString:
    """The htmx attributes of a part that fetches itself again ``every`` so often until ``until``
    is true; its view answers through ``render_polled`` (curation/core/polling.py)."""
    if until:
        return SafeString("")
    return format_html('hx-get="{}" hx-trigger="every {}" hx-swap="outerHTML"', reverse(view_name, args=args), every)


@register.inclusion_tag("curation/core/_waiting.html")
def waiting(row: Any) -> dict[str, Any]:
    """For background work still waiting for a worker: which queue it waits in and what is ahead
    of it (curation/core/background.py `queue_position`); nothing once it has started."""
    return {"place": queue_position(row)}
