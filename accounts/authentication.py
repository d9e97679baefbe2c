"""`Authorization: Token <key>`: knox's lookup by digest, then the checks it does not make."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.services import api_token_is_current, api_token_mark_used


class TokenAuthentication(KnoxTokenAuthentication):
    def validate_user(self, auth_token: Any) -> tuple[Any, Any]:
        user, token = super().validate_user(auth_token)
        if not api_token_is_current(token):
            # Made before the password changed: it will never work again.
            token.delete()
            raise AuthenticationFailed(_("This token stopped working when the password changed. Make a new one."))
        api_token_mark_used(token)
        return user, token


class TokenScheme(OpenApiAuthenticationExtension):
    """Describes the header in the OpenAPI schema, under the name the schema had before."""

    target_class = "accounts.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=self.target.authenticate_header(None)
        )
