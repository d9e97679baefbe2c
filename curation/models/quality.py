from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models.core import BackgroundWork, Example, Project


class QualityScan(BackgroundWork):
    """One pass of the quality checks over a project: duplicates, leakage, personal data,
    token lengths, format and facts. Its findings replace the previous scan's when it ends."""

    INTERRUPTED_MESSAGE = _("The worker stopped during this check; nothing was written. Run the check again.")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="quality_scans")
    number = models.PositiveIntegerField()
    config = models.JSONField(default=dict, help_text=_("Thresholds, base model and sequence length used."))
    stage = models.CharField(max_length=40, blank=True)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="quality_scan_number_unique")]

    def __str__(self) -> str:
        return f"quality scan {self.number} of {self.project_id}"


class DuplicateCluster(models.Model):
    """Examples that are (near) duplicates of each other, linked through verified pairs."""

    scan = models.ForeignKey(QualityScan, on_delete=models.CASCADE, related_name="clusters")
    size = models.PositiveIntegerField()
    similarity = models.FloatField(help_text=_("The lowest similarity of a pair inside the cluster."))
    splits = models.JSONField(default=list)
    resolution = models.CharField(max_length=20, blank=True)
    kept = models.ForeignKey(Example, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-size", "id"]

    def __str__(self) -> str:
        return f"duplicate cluster {self.pk} ({self.size})"


class DuplicatePair(models.Model):
    class Kind(models.TextChoices):
        EXACT = "exact", _("Exact")
        NEAR = "near", _("Near")
        SEMANTIC = "semantic", _("Semantic")

    scan = models.ForeignKey(QualityScan, on_delete=models.CASCADE, related_name="pairs")
    cluster = models.ForeignKey(DuplicateCluster, on_delete=models.CASCADE, related_name="pairs")
    a = models.ForeignKey(Example, on_delete=models.CASCADE, related_name="+")
    b = models.ForeignKey(Example, on_delete=models.CASCADE, related_name="+")
    a_hash = models.CharField(max_length=64)
    b_hash = models.CharField(max_length=64)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    similarity = models.FloatField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.a_id} ~ {self.b_id} ({self.similarity})"


class ExampleCheck(models.Model):
    """What a scan found in one example; only examples with something to report get a row."""

    scan = models.ForeignKey(QualityScan, on_delete=models.CASCADE, related_name="checks")
    example = models.ForeignKey(Example, on_delete=models.CASCADE, related_name="checks")
    content_hash = models.CharField(max_length=64, help_text=_("The example's content when it was checked."))
    tokens = models.PositiveIntegerField(null=True)
    truncated = models.BooleanField(default=False)
    over_context = models.BooleanField(default=False)
    pii = models.JSONField(default=list, blank=True)
    pii_count = models.PositiveIntegerField(default=0)
    format_problems = models.JSONField(default=list, blank=True)
    new_facts = models.JSONField(default=list, blank=True)
    brings_facts = models.BooleanField(default=False)
    cluster = models.ForeignKey(DuplicateCluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["example_id"]
        constraints = [models.UniqueConstraint(fields=["scan", "example"], name="one_check_per_scan_example")]

    def __str__(self) -> str:
        return f"check of example {self.example_id} in scan {self.scan_id}"


class FindingDismissal(models.Model):
    """A reviewer's decision that a quality finding is not a problem (the shop's own address
    is not personal data; two examples are meant to be alike). Later scans leave the finding
    out while the example's content is the one that was dismissed."""

    class Kind(models.TextChoices):
        PII = "pii", _("Personal data")
        DUPLICATE = "duplicate", _("Duplicate")
        LEAKAGE = "leakage", _("Leakage between splits")
        FORMAT = "format", _("Format")
        FACTS = "facts", _("New facts")
        LENGTH = "length", _("Length")

    class Reason(models.TextChoices):
        NOT_PERSONAL = "not_personal", _("Not personal data")
        INTENDED_DUPLICATE = "intended_duplicate", _("Intended duplicate")
        FALSE_ALARM = "false_alarm", _("Not a problem")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="finding_dismissals")
    example = models.ForeignKey(Example, on_delete=models.CASCADE, related_name="finding_dismissals")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(
        max_length=200,
        blank=True,
        help_text=_("Which finding on the example: the matched text's hash, the other example's id, or blank."),
    )
    content_hash = models.CharField(max_length=64, help_text=_("The example's content when it was dismissed."))
    reason = models.CharField(max_length=30, choices=Reason.choices)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["example", "kind", "key"], name="one_dismissal_per_finding"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on example {self.example_id} dismissed ({self.reason})"
