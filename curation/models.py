from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
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


class Label(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    colour = models.CharField(_("colour"), max_length=7, default="#64748b")
    shortcut = models.CharField(_("keyboard shortcut"), max_length=1, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="unique_label_name")]

    def __str__(self) -> str:
        return self.name


class ImportJob(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
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
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


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
    import_job = models.ForeignKey(ImportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="examples")
    source_line = models.PositiveIntegerField(null=True, blank=True, help_text=_("Line (or row) of the imported file."))
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


class Annotation(models.Model):
    """One annotator's answer for one example: a label, edited messages, a rating, a note."""

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


class UserSettings(models.Model):
    """Per-person preferences that follow them from browser to browser."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shikomi_settings")
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, default="en")

    def __str__(self) -> str:
        return f"{self.user} ({self.language})"


class LabelingRule(models.Model):
    """A weak-supervision rule: data (a kind and checked parameters), never code."""

    class Kind(models.TextChoices):
        KEYWORDS = "keywords", _("Keywords")
        REGEX = "regex", _("Regular expression")
        LENGTH = "length", _("Length")
        METADATA = "metadata", _("Metadata field")
        SIMILARITY = "similarity", _("Similar to labeled examples")
        ZERO_SHOT = "llm", _("LLM zero-shot")

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


class BackgroundWork(models.Model):
    """What every piece of work a Huey task does records: status, progress, error, who, when."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")
        INTERRUPTED = "interrupted", _("Interrupted")

    FINISHED: tuple[str, ...] = (Status.DONE, Status.FAILED, Status.INTERRUPTED)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def progress(self) -> float:
        return self.processed / self.total if self.total else 0.0


class RuleRun(BackgroundWork):
    """Applying the active rules to every example and fitting the label model: a rule set version."""

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
    """What the rules said about one example in one run, and what the label model made of it."""

    run = models.ForeignKey(RuleRun, on_delete=models.CASCADE, related_name="weak_labels")
    example = models.ForeignKey(Example, on_delete=models.CASCADE, related_name="weak_labels")
    votes = models.JSONField(default=dict, help_text=_("rule id → label name, for the rules that voted"))
    probabilities = models.JSONField(default=dict, help_text=_("label name → probability"))
    label = models.ForeignKey(Label, null=True, on_delete=models.SET_NULL, related_name="+")
    confidence = models.FloatField(default=0.0)
    conflict = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "example"], name="one_weak_label_per_run")]
        indexes = [models.Index(fields=["run", "conflict", "confidence"])]

    def __str__(self) -> str:
        return f"weak label of example {self.example_id} in run {self.run_id}"


class QualityScan(BackgroundWork):
    """One pass of the quality checks over a project: duplicates, leakage, personal data,
    token lengths, format and facts. Its findings replace the previous scan's when it ends."""

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
    """A (prompt, chosen, rejected) triple for preference training (DPO), made by a review:
    a ranking of candidates, or an edit (the edited answer chosen over the model's)."""

    class Origin(models.TextChoices):
        RANKING = "ranking", _("Ranking")
        EDIT = "edit", _("Edit")

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="preference_pairs")
    example = models.ForeignKey(
        Example, null=True, blank=True, on_delete=models.SET_NULL, related_name="preference_pairs"
    )
    job = models.ForeignKey(GenerationJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    prompt = models.JSONField(help_text=_("The conversation up to the answer, in OpenAI chat shape."))
    chosen = models.TextField()
    rejected = models.TextField()
    origin = models.CharField(max_length=20, choices=Origin.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"preference pair {self.pk} ({self.origin})"


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
