from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models.core import BackgroundWork, Example, Label, Project


class LabelingRule(models.Model):
    """A weak-supervision rule: data (a kind and checked parameters), never code."""

    class Kind(models.TextChoices):
        KEYWORDS = "keywords", _("Keywords")
        REGEX = "regex", _("Regular expression")
        LENGTH = "length", _("Length")
        METADATA = "metadata", _("Metadata field")
        SIMILARITY = "similarity", _("Similar to labeled examples")
        ZERO_SHOT = "llm", _("LLM zero-shot")
        COMBINE = "combine", _("Combination of rules")

    class Target(models.TextChoices):
        USER = "user", _("User text")
        ASSISTANT = "assistant", _("Assistant text")
        BOTH = "both", _("Both")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="rules", verbose_name=_("votes for"))
    target = models.CharField(_("reads"), max_length=20, choices=Target.choices, default=Target.USER)
    active = models.BooleanField(_("active"), default=True)
    version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="rule_name_unique_in_project")]

    def __str__(self) -> str:
        return self.name


class RuleRevision(models.Model):
    """One version of a rule, with how it did when it was saved and in each run since."""

    rule = models.ForeignKey(LabelingRule, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    spec = models.JSONField(help_text=_("name, kind, params, label, target, active at this version"))
    stats = models.JSONField(default=dict, blank=True, help_text=_("Hits, coverage and accuracy on human labels."))
    edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["rule", "version"], name="one_revision_per_rule_version")]

    def __str__(self) -> str:
        return f"{self.rule_id} v{self.version}"


class RuleRun(BackgroundWork):
    """Applying the active rules to every example and fitting the label model: a rule set version."""

    INTERRUPTED_MESSAGE = _("The worker stopped during this run; no weak labels were written. Apply the rules again.")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rule_runs")
    number = models.PositiveIntegerField(help_text=_("The rule set version, counted per project."))
    rules = models.JSONField(default=list, help_text=_("The rules as they were applied: id, version, spec."))
    label_names = models.JSONField(default=list, help_text=_("Label index → name, as in the matrix."))
    analysis = models.JSONField(default=list, blank=True, help_text=_("Per rule: Snorkel's LF analysis."))
    metrics = models.JSONField(default=dict, blank=True, help_text=_("Label model and majority vote on human labels."))

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="rule_run_number_unique")]

    def __str__(self) -> str:
        return f"rule set v{self.number} of {self.project_id}"


class WeakLabel(models.Model):
    """What the rules said about one example in one run, and what the label model and majority
    vote made of it."""

    class Source(models.TextChoices):
        LABEL_MODEL = "label_model", _("Label model")
        MAJORITY = "majority", _("Majority vote")

    run = models.ForeignKey(RuleRun, on_delete=models.CASCADE, related_name="weak_labels")
    example = models.ForeignKey(Example, on_delete=models.CASCADE, related_name="weak_labels")
    votes = models.JSONField(default=dict, help_text=_("rule id → label name, for the rules that voted"))
    probabilities = models.JSONField(default=dict, help_text=_("label name → probability"))
    label = models.ForeignKey(Label, null=True, on_delete=models.SET_NULL, related_name="+")
    confidence = models.FloatField(default=0.0)
    conflict = models.BooleanField(default=False)
    majority_label = models.ForeignKey(
        Label,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The label most rules voted for; none on a tie or without votes."),
    )
    majority_confidence = models.FloatField(
        default=0.0, help_text=_("The majority label's share of the votes cast (0 without a decision).")
    )
    accepted_from = models.CharField(
        max_length=20,
        choices=Source.choices,
        blank=True,
        help_text=_("Which model's label an example took when this weak label was last accepted."),
    )

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "example"], name="one_weak_label_per_run")]
        indexes = [models.Index(fields=["run", "conflict", "confidence"])]

    def __str__(self) -> str:
        return f"weak label of example {self.example_id} in run {self.run_id}"

    @property
    def accepted_confidence(self) -> float:
        """The confidence of the label an example took from this weak label."""
        return self.majority_confidence if self.accepted_from == self.Source.MAJORITY else self.confidence
