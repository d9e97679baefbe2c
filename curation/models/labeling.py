from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models.core import Example, Label


class Annotation(models.Model):
    """One annotator's answer for one example: a label, edited messages, a rating (of the whole
    example and of single assistant turns), a note."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted")
        SKIPPED = "skipped", _("Skipped")

    example = models.ForeignKey(Example, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    label = models.ForeignKey(Label, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    messages = models.JSONField(
        null=True, blank=True, help_text=_("The annotator's edit of the messages; empty when unchanged.")
    )
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    turn_ratings = models.JSONField(
        default=dict,
        blank=True,
        help_text=_('Ratings of single assistant turns, 1 to 5: {"<message index>": rating}.'),
    )
    note = models.TextField(blank=True)
    based_on_version = models.PositiveIntegerField(help_text=_("The example version the annotator saw."))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["example", "annotator"], name="one_annotation_per_annotator")]
        indexes = [models.Index(fields=["annotator", "status", "updated_at"])]

    def __str__(self) -> str:
        return f"{self.annotator} on example {self.example_id} ({self.status})"
