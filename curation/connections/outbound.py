"""The operator's outbound allow-list (`SHIKOMI_OUTBOUND_ALLOW`), read from the settings and
passed to `llm.outbound`, which checks every address a connection would reach against it."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from llm import outbound


def parse_allow_list(entries: list[str]) -> outbound.AllowList:
    """`llm.outbound.parse_allow_list`, with an entry that is neither a network nor a host name
    reported as the configuration error it is."""
    try:
        return outbound.parse_allow_list(entries)
    except ValueError as error:
        raise ImproperlyConfigured(f"SHIKOMI_OUTBOUND_ALLOW: {error}") from None


def allow_list() -> outbound.AllowList:
    """The networks and host names the operator allows besides public addresses, as set now."""
    return parse_allow_list(list(getattr(settings, "SHIKOMI_OUTBOUND_ALLOW", [])))


def check_url(url: str) -> None:
    """OutboundRefused unless every address the host of `url` resolves to is allowed now."""
    outbound.check_url(url, allow_list())
