from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from accounts.models import APIToken
from accounts.services import api_token_is_current


def api_tokens_for_user(*, user: Any) -> list[APIToken]:
    """The user's working tokens, newest first: expired ones and those a password change
    ended are left out (they no longer authenticate anything)."""
    tokens = APIToken.objects.filter(user=user).filter(Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()))
    return [t for t in tokens.select_related("user") if api_token_is_current(t)]
