from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models.core import Project, Work


class ImportJob(Work):
    """An upload being imported. Its statuses and its progress (a fraction) are the ones its
    pages and API clients know; a worker that dies leaves it failed (there is no interrupted)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    WAITING, RUNNING, INTERRUPTED = Status.PENDING, Status.RUNNING, Status.FAILED
    FINISHED = (Status.SUCCEEDED, Status.FAILED)
    # Its rows were never committed (an import is one transaction): nothing to clean up.
    INTERRUPTED_MESSAGE = _("The worker stopped during this import; nothing was written. Upload the file again.")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    format = models.CharField(max_length=30)
    filename = models.CharField(max_length=255)
    path = models.CharField(max_length=500, help_text=_("Where the uploaded file is kept."))
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    progress = models.FloatField(default=0.0)
    rows_read = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    rows_duplicate = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    source = models.ForeignKey(
        "Source",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="import_jobs",
        help_text=_("The source this job imported from (empty: an uploaded file)."),
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_status_display()})"
