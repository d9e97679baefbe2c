"""Training runs. The trainer, metric points, evaluations and judgments arrive with the
training and evaluation issues; what is here is what a launch needs: the frozen dataset
snapshot and the record of the quality gates an admin overrode."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models import Project


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        INTERRUPTED = "interrupted", _("Interrupted")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="training_runs")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    base_model = models.CharField(max_length=300, blank=True, help_text=_("Empty: the embedded SmolLM2."))
    method = models.CharField(max_length=20, default="lora")
    config = models.JSONField(default=dict, blank=True, help_text=_("Validated hyperparameters."))
    snapshot = models.JSONField(
        default=dict, help_text=_("Per split, the [id, content hash] of every example the run trains or validates on.")
    )
    train_count = models.PositiveIntegerField(default=0)
    validation_count = models.PositiveIntegerField(default=0)
    gate_overrides = models.JSONField(
        default=list, blank=True, help_text=_("Quality gates an admin chose to override at launch: who, why, what.")
    )
    warnings = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="training_run_number_unique")]

    def __str__(self) -> str:
        return f"training run {self.number} of {self.project_id}"
