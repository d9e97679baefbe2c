"""API tokens: django-rest-knox's hashed tokens, with a name and the password they belong to.

Knox keeps only a SHA-512 digest of each token and the first characters (``token_key``) to
find the row; the token itself is shown once, when it is made. This model swaps in for
knox's own (``KNOX_TOKEN_MODEL``) to add what a person needs to manage their tokens.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from knox.models import AbstractAuthToken


class APIToken(AbstractAuthToken):
    name = models.CharField(_("name"), max_length=100)
    last_used = models.DateTimeField(_("last used"), null=True, blank=True)
    # An HMAC of the user's password hash when the token was made, as Django does for
    # sessions: whatever changes the password (the page, the admin site, `changepassword`,
    # a reset), the stamp stops matching and the token stops working.
    password_stamp = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["-created"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key[:8]}…)"
