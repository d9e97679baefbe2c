"""Sign-in throttling (django-axes) for every sign-in that comes with a request.

Axes refuses `authenticate()` calls that carry no request, since it cannot tell who is
asking. Every sign-in from outside (the login page, the API token endpoint, Django admin)
carries one; the calls without one come from this process itself (management commands,
the test client's `login`), which have no address to lock out, so they go on to the next
backend unthrottled instead of failing.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class RequestThrottledBackend(AxesStandaloneBackend):
    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)
