"""Tokens through the API: sign in for a new token; list and revoke your own."""

from __future__ import annotations

from django.contrib.auth import authenticate, user_logged_in
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, serializers, services
from accounts.models import APIToken
from curation.core.api import SignedInAPIMixin


class TokenObtain(SignedInAPIMixin, APIView):
    """POST username and password (and a name), get a new token for `Authorization: Token <key>`.

    The key is in this answer only; the server keeps a digest of it."""

    required_access = "public"
    # The credentials are in the body: no session, so no CSRF check either.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(request=serializers.TokenRequestSerializer, responses=serializers.TokenCreatedSerializer)
    def post(self, request: Request) -> Response:
        data = serializers.TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # Django's own request, not DRF's wrapper: django-axes counts the failure against it
        # and marks a locked-out sign-in there, and its middleware then answers 429.
        http_request = request._request
        user = authenticate(
            http_request, username=data.validated_data["username"], password=data.validated_data["password"]
        )
        if user is None:
            return Response(
                {"non_field_errors": [_("That username and password do not match.")]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        name = data.validated_data.get("name") or _("API token")
        token, key = services.api_token_create(user=user, name=name)  # InvalidToken: 400 naming the field
        # A signed-in event like the login page's: last_login is kept and axes clears the count.
        user_logged_in.send(sender=user.__class__, request=http_request, user=user)
        # 200, as the single-token endpoint this replaces answered.
        return Response({**serializers.TokenSerializer(token).data, "token": key})


class TokenList(SignedInAPIMixin, APIView):
    required_access = "authenticated"

    @extend_schema(responses=serializers.TokenSerializer(many=True))
    def get(self, request: Request) -> Response:
        tokens = selectors.api_tokens_for_user(user=request.user)
        return Response(serializers.TokenSerializer(tokens, many=True).data)


class TokenDetail(SignedInAPIMixin, APIView):
    required_access = "authenticated"

    @extend_schema(responses={204: None})
    def delete(self, request: Request, token_id: str) -> Response:
        try:
            services.api_token_revoke(user=request.user, token_key=token_id)
        except APIToken.DoesNotExist:
            raise NotFound(_("You have no token with this id.")) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
