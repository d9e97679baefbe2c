"""The API tokens page: make a named token (its key shown once), see and revoke your own."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors, services
from accounts.models import APIToken
from curation.core.permissions import signed_in


@never_cache  # the answer to the POST holds a key: no cache may keep it
@require_http_methods(["GET", "POST"])
@signed_in
def token_list(request: HttpRequest) -> HttpResponse:
    created, error, name = None, "", ""
    if request.method == "POST":
        name = request.POST.get("name", "")
        try:
            token, key = services.api_token_create(user=request.user, name=name)
        except services.InvalidToken as invalid:
            error = invalid.message
        else:
            created, name = {"token": token, "key": key}, ""
    ctx = {
        "tokens": selectors.api_tokens_for_user(user=request.user),
        "created": created,
        "error": error,
        "name": name,
        "name_max_length": services.NAME_MAX_LENGTH,
    }
    return render(request, "accounts/tokens.html", ctx, status=400 if error else 200)


@require_POST
@signed_in
def token_revoke(request: HttpRequest, token_id: str) -> HttpResponse:
    try:
        services.api_token_revoke(user=request.user, token_key=token_id)
    except APIToken.DoesNotExist:
        raise Http404(_("You have no token with this id.")) from None
    messages.success(request, _("Token revoked: programs that use it can no longer call the API."))
    return redirect("account_tokens")
