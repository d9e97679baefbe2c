"""Sign-in throttling (django-axes) for every sign-in that comes with a request.

Axes refuses `authenticate()` calls that carry no request, since it cannot tell who is
asking. Every sign-in from outside (the login page, the API token endpoint, Django admin)
carries one; the calls without one come from this process itself (management commands,
the test client's `login`), which have no address to lock out, so they go on to the next
backend unthrottled instead of failing.

Axes counts failures per username and address (settings, "Accounts"); once locked, even
the right password is refused until the cool-off ends or an admin runs
`manage.py axes_reset_username <name>`.
"""

from __future__ import annotations

import math
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import ngettext


class RequestThrottledBackend(AxesStandaloneBackend):
    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


def client_ip(request: HttpRequest) -> str:
    """The address failures are counted against (AXES_CLIENT_IP_CALLABLE).

    Behind n reverse proxies (SHIKOMI_PROXY_COUNT) the peer is our own proxy; each proxy
    appends the address it received from to X-Forwarded-For, so the n-th entry from the end
    is the one the outermost proxy saw. Entries before it are whatever the client sent, and
    are never trusted.
    """
    proxies = settings.SHIKOMI_PROXY_COUNT
    if proxies > 0:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """429 with when to try again: JSON for the API, a page for people (AXES_LOCKOUT_CALLABLE)."""
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    minutes = max(1, math.ceil(seconds / 60))
    # Each refused attempt starts the cool-off again (axes' default), so "from now" is right.
    message = ngettext(
        "Too many failed sign-ins for this account from your address. Try again in %(minutes)d minute, "
        "or ask an admin to unlock the account.",
        "Too many failed sign-ins for this account from your address. Try again in %(minutes)d minutes, "
        "or ask an admin to unlock the account.",
        minutes,
    ) % {"minutes": minutes}
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
