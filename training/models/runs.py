"""Training runs: the frozen data snapshot, the configuration, the quality gates an admin
overrode, live progress written by the Huey task, the loss curve points, and the artifacts."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models import Project, Work


class TrainingRun(Work):
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
    preference_count = models.PositiveIntegerField(default=0, help_text=_("DPO: preference pairs in the snapshot."))
    warnings = models.JSONField(default=list, blank=True)
    cancel_requested = models.BooleanField(default=False)
    device = models.CharField(max_length=200, blank=True, help_text=_("Where it trained: cpu float32, cuda:0 …"))
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    progress = models.JSONField(
        default=dict, blank=True, help_text=_("The latest step: epoch, losses, learning rate, tokens/s, ETA.")
    )
    result = models.JSONField(default=dict, blank=True, help_text=_("Final losses, tokens, seconds, how it ended."))
    output_dir = models.CharField(max_length=500, blank=True)
    checkpoint = models.CharField(max_length=500, blank=True, help_text=_("The last complete checkpoint."))
    log = models.TextField(blank=True, help_text=_("The last lines of the run's log."))
    resumed = models.PositiveIntegerField(default=0, help_text=_("How many times it was resumed."))
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="training_run_number_unique")]

    WAITING, RUNNING, INTERRUPTED = Status.QUEUED, Status.RUNNING, Status.INTERRUPTED
    FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)
    # It can be resumed from its last checkpoint.
    INTERRUPTED_MESSAGE = _("The worker stopped during this run. Resume it to continue from its last checkpoint.")

    def __str__(self) -> str:
        return f"training run {self.number} of {self.project_id}"

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def duration(self):
        if self.started_at is None:
            return None
        from django.utils import timezone

        return (self.finished_at or timezone.now()) - self.started_at


class TrainingPoint(models.Model):
    """One optimiser step's numbers, for the loss curves; validation loss on evaluation steps."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="points")
    step = models.PositiveIntegerField()
    epoch = models.FloatField(default=0.0)
    train_loss = models.FloatField(null=True, blank=True)
    val_loss = models.FloatField(null=True, blank=True)
    learning_rate = models.FloatField(default=0.0)
    tokens_per_second = models.FloatField(default=0.0)

    class Meta:
        ordering = ["step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="one_point_per_run_step")]

    def __str__(self) -> str:
        return f"run {self.run_id} step {self.step}"
