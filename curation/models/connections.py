from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models.core import Project


class Connection(models.Model):
    """A model that generation, augmentation and the LLM judge may use, defined by an admin
    (or, without a project, by the instance's operator for every project). Reviewers choose a
    connection by name; they never type an address, a path or a secret's name.

    `secret` is the NAME of one of the operator's secrets (environment variables with the
    SHIKOMI_SECRET_PREFIX); its value is read from the environment only when a request is sent."""

    class Kind(models.TextChoices):
        EMBEDDED = "embedded", _("Embedded model (SmolLM2, on this server)")
        FOLDER = "folder", _("Model folder on this server")
        OPENAI = "openai", _("OpenAI-compatible server")

    project = models.ForeignKey(
        Project,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="connections",
        help_text=_("Empty: the operator's connection, offered to every project."),
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    folder = models.CharField(
        max_length=500, blank=True, help_text=_("A model folder, relative to the operator's models directory.")
    )
    base_url = models.CharField(max_length=500, blank=True)
    model = models.CharField(max_length=300, blank=True, help_text=_("The model name the server serves."))
    timeout = models.FloatField(default=60)
    secret = models.CharField(max_length=200, blank=True, help_text=_("The name of the secret sent as the API key."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="connection_name_unique_in_project"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(project__isnull=True), name="connection_name_unique_instance_wide"
            ),
        ]

    def __str__(self) -> str:
        return self.name
