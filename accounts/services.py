"""API tokens: made, checked against the password, revoked. Only the owner manages theirs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from accounts.models import APIToken
from curation.core.errors import ServiceError

NAME_MAX_LENGTH = APIToken._meta.get_field("name").max_length
# Enough for every script and machine a person runs; a loop that makes a token per call
# hits this and is told what to do instead of filling the table.
MAX_TOKENS_PER_USER = 100
# Writing `last_used` on every API call would turn each read into a write.
LAST_USED_PRECISION = timedelta(minutes=1)


class InvalidToken(ServiceError):
    """A request a person can correct; ``field`` names what to change."""


def _password_stamp(user: Any, secret: str | None = None) -> str:
    return salted_hmac("accounts.APIToken.password_stamp", user.password, secret=secret, algorithm="sha256").hexdigest()


def api_token_is_current(token: APIToken) -> bool:
    """False once the owner's password has changed since the token was made (in any way:
    the page, Django admin, `changepassword`). Keys in SECRET_KEY_FALLBACKS still count, so
    rotating SECRET_KEY the documented way does not end every token at once."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return any(constant_time_compare(token.password_stamp, _password_stamp(token.user, s)) for s in secrets)


def api_token_create(*, user: Any, name: str) -> tuple[APIToken, str]:
    """A new token for `user`; returns it and its key, which is never stored and never
    shown again (the table holds a SHA-512 digest)."""
    name = name.strip()
    if not name:
        raise InvalidToken("name", _("Give the token a name, so you can tell it apart later."))
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidToken("name", _("The name is too long: at most %(max)d characters.") % {"max": NAME_MAX_LENGTH})
    # Tokens a password change ended are useless; clear them out when making a new one.
    for old in APIToken.objects.filter(user=user).select_related("user"):
        if not api_token_is_current(old):
            old.delete()
    if APIToken.objects.filter(user=user).count() >= MAX_TOKENS_PER_USER:
        raise InvalidToken(
            "name",
            _("You already have %(count)d API tokens. Revoke the ones you no longer use, then make a new one.")
            % {"count": MAX_TOKENS_PER_USER},
        )
    return APIToken.objects.create(user=user, name=name, password_stamp=_password_stamp(user))


def api_token_revoke(*, user: Any, token_key: str) -> None:
    """Delete one of `user`'s own tokens; someone else's is APIToken.DoesNotExist, as if it
    did not exist."""
    deleted, _rows = APIToken.objects.filter(user=user, token_key=token_key).delete()
    if not deleted:
        raise APIToken.DoesNotExist


def api_token_mark_used(token: APIToken) -> None:
    now = timezone.now()
    if token.last_used is None or now - token.last_used >= LAST_USED_PRECISION:
        APIToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now
