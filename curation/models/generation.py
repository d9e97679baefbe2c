from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models.core import BackgroundWork, Example, Project


class GenerationJob(BackgroundWork):
    """Drafts made by a generation backend: synthetic examples, or paraphrases of chosen
    examples (augmentation). Drafts are examples with status draft that a reviewer approves,
    edits or rejects; each remembers its job and its key within the job."""

    class Kind(models.TextChoices):
        SYNTHETIC = "synthetic", _("Synthetic")
        AUGMENT = "augment", _("Augmentation")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        INTERRUPTED = "interrupted", _("Interrupted")

    FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)
    INTERRUPTED_MESSAGE = _(
        "The worker stopped during this job; the drafts it finished are kept. Start it again for the rest."
    )

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="generation_jobs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    template = models.ForeignKey(
        "PromptTemplate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jobs",
        help_text=_("The template version a synthetic job used."),
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    backend = models.CharField(max_length=300, blank=True)
    config = models.JSONField(default=dict, blank=True)
    created_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(
        default=list, blank=True, help_text=_("Per-draft problems: which source, what went wrong.")
    )
    cancel_requested = models.BooleanField(default=False)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk}"


class PromptTemplate(models.Model):
    """A prompt that asks a model for synthetic requests. Editing saves a new version, so each
    job keeps pointing at the exact text it used; the newest version of a name is the current one."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompt_templates")
    name = models.CharField(_("name"), max_length=100)
    version = models.PositiveIntegerField(default=1)
    text = models.TextField(
        _("template"),
        help_text=_(
            "What the model is asked, to write one user request. Placeholders: {topic}, {task_type}, "
            "{examples} (approved examples of this project), {label}, {system_prompt}, {guidelines}."
        ),
    )
    few_shot = models.PositiveSmallIntegerField(
        _("few-shot examples"), default=3, help_text=_("How many approved examples fill {examples}.")
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name", "version"], name="prompt_template_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Draft(models.Model):
    """The review side of a generated example: what the model was asked and wrote, the checks'
    flags, and the reviewer's decision. The example itself has status draft until decided."""

    class Decision(models.TextChoices):
        PENDING = "pending", _("Waiting for review")
        APPROVED = "approved", _("Approved")
        EDITED = "edited", _("Edited and approved")
        REJECTED = "rejected", _("Rejected")
        RANKED_LOWER = "ranked_lower", _("Ranked below another candidate")

    ACCEPTED = (Decision.APPROVED, Decision.EDITED)

    example = models.OneToOneField(Example, on_delete=models.CASCADE, related_name="draft")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="drafts")
    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="draft_reviews")
    template = models.ForeignKey(
        PromptTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="draft_reviews"
    )
    group = models.CharField(
        max_length=100, help_text=_("The prompt this draft answers; candidates for one prompt share it.")
    )
    candidate = models.PositiveSmallIntegerField(default=0)
    target = models.PositiveSmallIntegerField(help_text=_("Index of the message the model wrote."))
    request = models.TextField(blank=True, help_text=_("What the model was asked (the filled-in template)."))
    original = models.TextField(blank=True, help_text=_("The model's text as it wrote it."))
    first_answer = models.TextField(blank=True, help_text=_("Before the critique-and-rewrite step, if there was one."))
    critique = models.TextField(blank=True)
    document = models.ForeignKey(
        "SourceDocument",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="drafts",
        help_text=_("The source document the passage was drawn from ({document} templates)."),
    )
    passage = models.TextField(blank=True, help_text=_("The passage the draft was grounded in."))
    flags = models.JSONField(default=list, blank=True, help_text=_("Check findings: code, message."))
    decision = models.CharField(max_length=20, choices=Decision.choices, default=Decision.PENDING)
    reasons = models.JSONField(default=list, blank=True, help_text=_("Rejection reasons (codes)."))
    note = models.TextField(blank=True)
    rank = models.PositiveSmallIntegerField(null=True, blank=True, help_text=_("1 is best."))
    edit_distance = models.FloatField(
        null=True, blank=True, help_text=_("Characters changed by the reviewer, as a share of the longer text.")
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "decision", "id"]), models.Index(fields=["job", "group"])]

    def __str__(self) -> str:
        return f"draft {self.example_id} ({self.decision})"


class PreferencePair(models.Model):
    """A (prompt, chosen, rejected) triple for preference training (DPO), made by a review (a
    ranking of candidates, or an edit: the edited answer chosen over the model's) or imported
    from a preference file. Chosen and rejected are whole assistant messages of the canonical
    conversation (docs/data-model.md), so tool calls and reasoning are kept; `tools` are the
    example's tools, which the chat template lists when the pair is trained on."""

    class Origin(models.TextChoices):
        RANKING = "ranking", _("Ranking")
        EDIT = "edit", _("Edit")
        IMPORT = "import", _("Import")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="preference_pairs")
    example = models.ForeignKey(
        Example, null=True, blank=True, on_delete=models.SET_NULL, related_name="preference_pairs"
    )
    job = models.ForeignKey(GenerationJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    prompt = models.JSONField(help_text=_("The conversation up to the answer: canonical messages."))
    chosen = models.JSONField(help_text=_("The preferred assistant message (content, reasoning, tool calls)."))
    rejected = models.JSONField(help_text=_("The assistant message ranked lower, or the model's before an edit."))
    tools = models.JSONField(
        default=list, blank=True, help_text=_("The functions the conversation may call (the example's tools).")
    )
    origin = models.CharField(max_length=20, choices=Origin.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"preference pair {self.pk} ({self.origin})"
