"""Training runs: the frozen data snapshot, the configuration, the quality gates an admin
overrode, live progress written by the Huey task, the loss curve points, and the artifacts."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models import BackgroundWork, Example
from training.models.runs import TrainingRun


class Evaluation(BackgroundWork):
    """A finished run evaluated on the project's test split: base model, base model with a
    few-shot prompt, and the tuned model, with the same decoding settings."""

    INTERRUPTED_MESSAGE = _("The worker stopped during this evaluation; nothing was stored. Start it again.")

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="evaluations")
    config = models.JSONField(default=dict, blank=True, help_text=_("Decoding settings, few-shot count, test ids."))
    overall = models.JSONField(default=dict, blank=True, help_text=_("Metrics per system over all samples."))
    by_label = models.JSONField(default=dict, blank=True)
    by_source = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"evaluation {self.pk} of run {self.run_id}"


class EvalSample(models.Model):
    """One test example: its prompt, the reference, each system's output and per-sample metrics."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="samples")
    example = models.ForeignKey(Example, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    prompt = models.TextField()
    context = models.JSONField(
        default=list, blank=True, help_text=_("The messages before the prompt (system, earlier turns), oldest first.")
    )
    reference = models.TextField(blank=True)
    label = models.CharField(max_length=100, blank=True)
    source = models.CharField(max_length=20, blank=True)
    outputs = models.JSONField(default=dict, help_text=_("System (base, few_shot, tuned) -> output text."))
    metrics = models.JSONField(default=dict, blank=True, help_text=_("System -> per-sample metrics."))

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["evaluation", "example"], name="one_sample_per_example")]

    def __str__(self) -> str:
        return f"sample of example {self.example_id} in evaluation {self.evaluation_id}"
