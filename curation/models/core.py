from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ANNOTATOR = "annotator", _("Annotator")
    REVIEWER = "reviewer", _("Reviewer")
    ADMIN = "admin", _("Admin")


class Project(models.Model):
    class Kind(models.TextChoices):
        CHAT = "chat", _("Chat / instruction")
        CLASSIFICATION = "classification", _("Classification")
        STRUCTURED = "structured", _("Structured output")
        STYLE = "style", _("Style")

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.CHAT)
    description = models.TextField(_("description"), blank=True)
    guidelines = models.TextField(_("guidelines"), blank=True, help_text=_("Markdown."))
    system_prompt = models.TextField(_("system prompt"), blank=True)
    json_schema = models.JSONField(_("JSON schema"), null=True, blank=True)
    balance_strategy = models.CharField(
        _("class balance for training"),
        max_length=20,
        default="none",
        choices=[
            ("none", _("Use the data as it is")),
            ("oversample", _("Oversample minority labels")),
            ("undersample", _("Undersample majority labels")),
            ("class_weights", _("Weight the loss by class")),
        ],
        help_text=_("Recorded for the trainer; the data itself is not changed."),
    )
    split_config = models.JSONField(
        default=dict, blank=True, help_text=_("How the splits were last assigned: method, ratios, seed, group key.")
    )
    annotations_per_example = models.PositiveSmallIntegerField(
        _("annotations per example"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_("How many annotators label each example; more than one measures agreement."),
    )

    class QueueOrder(models.TextChoices):
        OLDEST = "oldest", _("Oldest first")
        UNCERTAIN = "uncertain", _("Least certain weak labels first")

    queue_order = models.CharField(
        _("annotation queue order"),
        max_length=20,
        choices=QueueOrder.choices,
        default=QueueOrder.OLDEST,
        help_text=_(
            "Least certain first sends the examples whose rules conflict or whose weak label is least "
            "confident (in the latest rule run) to annotators first."
        ),
    )

    class LabelSuggestions(models.TextChoices):
        HIDDEN = "hidden", _("Hidden")
        SUGGESTION = "suggestion", _("Shown as a suggestion")

    label_suggestions = models.CharField(
        _("current label on the labeling page"),
        max_length=20,
        choices=LabelSuggestions.choices,
        default=LabelSuggestions.HIDDEN,
        help_text=_(
            "Hidden: annotators label without seeing the example's current label. Shown as a suggestion: "
            "the current label is shown with its source (a person, or the rules and their confidence), "
            "never pre-selected. Hidden keeps agreement meaningful."
        ),
    )

    class StructuredFormat(models.TextChoices):
        JSON = "json", _("JSON")
        SQL = "sql", _("SQL")

    structured_format = models.CharField(
        _("structured answers are"),
        max_length=10,
        choices=StructuredFormat.choices,
        default=StructuredFormat.JSON,
        help_text=_("For structured-output projects: what every assistant answer must parse as."),
    )
    base_model = models.CharField(
        _("base model"),
        max_length=300,
        blank=True,
        help_text=_(
            "A Hugging Face model id or a folder on the server; empty means the embedded "
            "SmolLM2-135M-Instruct. Its tokenizer counts the tokens of each example."
        ),
    )
    max_seq_length = models.PositiveIntegerField(
        _("training sequence length"),
        default=2048,
        validators=[MinValueValidator(16), MaxValueValidator(1_048_576)],
        help_text=_("Tokens per example in training; longer examples would be truncated."),
    )
    dedupe_threshold = models.FloatField(
        _("near-duplicate threshold"),
        default=0.8,
        validators=[MinValueValidator(0.3), MaxValueValidator(1.0)],
        help_text=_("Jaccard similarity of word 3-grams (MinHash) at which two examples count as near duplicates."),
    )
    semantic_dedupe = models.BooleanField(
        _("also find semantic duplicates"),
        default=False,
        help_text=_("Compare MiniLM sentence embeddings too (slower; up to 20,000 examples)."),
    )
    semantic_threshold = models.FloatField(
        _("semantic duplicate threshold"),
        default=0.95,
        validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        help_text=_("Cosine similarity of the embeddings."),
    )
    block_on_pii = models.BooleanField(
        _("block export and training while personal data remains"),
        default=False,
        help_text=_("Refuse exports and training runs while the latest check finds unredacted personal data."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="projects")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("role"), max_length=20, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project}"


class ProjectChange(models.Model):
    """One change to a project's settings, labels or members, by whom and when: the settings
    and members pages write one per change, so admins can see who changed what."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="changes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=40, help_text=_("What was changed, e.g. settings, label_add, member_role."))
    detail = models.JSONField(default=dict, blank=True, help_text=_("Before and after, as plain data."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="project_change_recent")]

    def __str__(self) -> str:
        return f"{self.action} in {self.project_id} by {self.user_id}"


class Label(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    colour = models.CharField(_("colour"), max_length=7, default="#64748b")
    shortcut = models.CharField(_("keyboard shortcut"), max_length=1, blank=True)
    retired = models.BooleanField(
        _("retired"),
        default=False,
        help_text=_("Kept on the examples and in their history, but no longer offered for labeling."),
    )

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_label_name")]

    def __str__(self) -> str:
        return self.name


class Example(models.Model):
    class Source(models.TextChoices):
        IMPORTED = "imported", _("Imported")
        HUMAN = "human", _("Written by a person")
        RULE = "rule", _("Labeled by rules")
        SYNTHETIC = "synthetic", _("Synthetic")
        AUGMENTED = "augmented", _("Augmented")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        NEEDS_REVIEW = "needs_review", _("Needs review")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    class Split(models.TextChoices):
        UNASSIGNED = "unassigned", _("Unassigned")
        TRAIN = "train", _("Train")
        VALIDATION = "validation", _("Validation")
        TEST = "test", _("Test")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="examples")
    messages = models.JSONField(help_text=_("OpenAI chat shape: a list of {role, content}."))
    label = models.ForeignKey(Label, null=True, blank=True, on_delete=models.PROTECT, related_name="examples")
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.HUMAN)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEEDS_REVIEW)
    split = models.CharField(max_length=20, choices=Split.choices, default=Split.UNASSIGNED)
    metadata = models.JSONField(default=dict, blank=True)
    tools = models.JSONField(
        default=list, blank=True, help_text=_("Function schemas the conversation may call (OpenAI's tools shape).")
    )
    search_text = models.TextField(
        blank=True, editable=False, help_text=_("The messages' text, NFKC-normalised and lower-cased, for search.")
    )
    content_hash = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    annotation_count = models.PositiveSmallIntegerField(
        default=0, help_text=_("Submitted annotations; the labeling queue reads it.")
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    import_job = models.ForeignKey(
        "ImportJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="examples"
    )
    source_line = models.PositiveIntegerField(null=True, blank=True, help_text=_("Line (or row) of the imported file."))
    source_object = models.CharField(
        max_length=1000,
        blank=True,
        help_text=_("Which object, page or query of the import's source the row came from."),
    )
    generation_job = models.ForeignKey(
        "GenerationJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="drafts"
    )
    generation_key = models.CharField(
        max_length=100, blank=True, help_text=_("Which draft of its job this is; a retried job never makes it twice.")
    )
    weak_label = models.ForeignKey(
        "WeakLabel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Set when the label was accepted from the rules' label model; cleared when a person changes it."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["project", "content_hash"]),
            models.Index(fields=["project", "split", "status"]),
            models.Index(fields=["project", "annotation_count", "id"]),
            # The dashboard at 100,000 examples (migration 0017, docs/benchmarks.md).
            models.Index(fields=["project", "status", "source", "split", "label", "weak_label"], name="example_tally"),
            models.Index(
                fields=["project", "annotation_count", "id"],
                condition=models.Q(resolved_at__isnull=True),
                name="example_open_answered",
            ),
            models.Index(fields=["project", "-updated_at", "id"], name="example_recent"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["generation_job", "generation_key"],
                condition=models.Q(generation_job__isnull=False),
                name="one_draft_per_generation_key",
            )
        ]

    def __str__(self) -> str:
        return f"Example {self.pk}"

    @property
    def first_user_text(self) -> str:
        return next((m.get("content") or "" for m in self.messages if m.get("role") == "user"), "")


class ExampleRevision(models.Model):
    """Every change to an example: who, when, before and after."""

    class Action(models.TextChoices):
        CREATE = "create", _("Created")
        UPDATE = "update", _("Updated")
        RESTORE = "restore", _("Restored")
        REDACT = "redact", _("Personal data redacted")
        MERGE = "merge", _("Duplicates merged")
        DELETE = "delete", _("Deleted")

    example = models.ForeignKey(Example, null=True, on_delete=models.SET_NULL, related_name="revisions")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=20, choices=Action.choices)
    version = models.PositiveIntegerField(help_text=_("The example's version after the change."))
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} of example {self.example_id} (v{self.version})"


class UserSettings(models.Model):
    """Per-person preferences that follow them from browser to browser."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shikomi_settings")
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, default="en")

    def __str__(self) -> str:
        return f"{self.user} ({self.language})"


class Work(models.Model):
    """What background work of every kind shares: who started it, when it ended, why it failed,
    and what is done to it: is it finished, one worker claims it, a worker that died leaves it
    interrupted (curation/core/background.py). Each kind names its own statuses, so ImportJob
    keeps the ones its pages and API clients know (pending, succeeded)."""

    WAITING: ClassVar[str]
    RUNNING: ClassVar[str]
    INTERRUPTED: ClassVar[str]
    FINISHED: ClassVar[tuple[str, ...]]
    INTERRUPTED_MESSAGE: ClassVar[str | Promise]  # the error a worker that died leaves

    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The lease (curation/models/leases.py): which process runs it, and when it last said so.
    worker = models.CharField(max_length=200, blank=True, help_text=_("host:pid of the process running it."))
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @classmethod
    def claim(cls, pk: int, **fields: Any) -> bool:
        """Waiting to running in one UPDATE: of two deliveries of the same task, two consumers, or
        a task and a cancel, only one gets it. The claiming process holds the lease: it renews the
        heartbeat while it works (curation/models/leases.py)."""
        from curation.models import leases

        claimed = cls._default_manager.filter(pk=pk, status=cls.WAITING).update(
            status=cls.RUNNING, worker=leases.worker_id(), heartbeat_at=timezone.now(), **fields
        )
        if claimed:
            leases.hold(cls, pk)
        return bool(claimed)

    @classmethod
    def lease_lost(cls, pk: int) -> bool:
        """This process's lease on the row went (it was marked interrupted after a missed
        heartbeat, and perhaps claimed by another worker since): stop working on it."""
        from curation.models import leases

        return leases.lost(cls, pk)


class BackgroundWork(Work):
    """What the Huey tasks that count their items record: status, items done of total, started."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        INTERRUPTED = "interrupted", _("Interrupted")

    WAITING, RUNNING, INTERRUPTED = Status.QUEUED, Status.RUNNING, Status.INTERRUPTED
    FINISHED: tuple[str, ...] = (Status.DONE, Status.FAILED, Status.INTERRUPTED)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def progress(self) -> float:
        return self.processed / self.total if self.total else 0.0
