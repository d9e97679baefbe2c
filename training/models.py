"""Training runs: the frozen data snapshot, the configuration, the quality gates an admin
overrode, live progress written by the Huey task, the loss curve points, and the artifacts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models import BackgroundWork, Example, Project


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
    preference_count = models.PositiveIntegerField(default=0, help_text=_("DPO: preference pairs in the snapshot."))
    warnings = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
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
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["project", "number"], name="training_run_number_unique")]

    FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)

    def __str__(self) -> str:
        return f"training run {self.number} of {self.project_id}"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

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


class Evaluation(BackgroundWork):
    """A finished run evaluated on the project's test split: base model, base model with a
    few-shot prompt, and the tuned model, with the same decoding settings."""

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


def comparison_key() -> str:
    import secrets

    return secrets.token_urlsafe(12)


class Comparison(models.Model):
    """The tuned model's answer to one test prompt against a baseline's, for blind judging.

    Judges reach it by `key`, a random token: nothing in its address or its page says which
    answer is which model. Which side each judge sees on the left is decided on the server
    (training/judging.py) and recorded with the judgment."""

    class Opponent(models.TextChoices):
        BASE = "base", _("base model")
        FEW_SHOT = "few_shot", _("few-shot base model")

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="comparisons")
    sample = models.ForeignKey(EvalSample, on_delete=models.CASCADE, related_name="comparisons")
    opponent = models.CharField(max_length=20, choices=Opponent.choices)
    key = models.CharField(max_length=32, unique=True, default=comparison_key)
    identical = models.BooleanField(
        default=False, help_text=_("Both answers are the same text: nothing to judge, so judges are not shown it.")
    )

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["sample", "opponent"], name="one_comparison_per_opponent")]

    def __str__(self) -> str:
        return f"comparison {self.key}"


class Judgment(models.Model):
    """One judge's verdict on a comparison: left (A), right (B) or tie, rubric scores per side, a note.

    `left` records which system the judge saw on the left, so the verdict is kept both as the
    judge gave it (`choice`, for the position-bias check) and as what it means (`winner`).
    Human judgments have a reviewer; an LLM judge's have `judge_model` and no reviewer."""

    class Choice(models.TextChoices):
        A = "a", _("A is better")
        B = "b", _("B is better")
        TIE = "tie", _("Tie")

    class Winner(models.TextChoices):
        TUNED = "tuned", _("tuned model")
        OPPONENT = "opponent", _("baseline")
        TIE = "tie", _("tie")

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="judgments")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="judgments"
    )
    judge_model = models.CharField(max_length=300, blank=True, help_text=_("An LLM judge: the backend's name."))
    left = models.CharField(max_length=20, help_text=_("The system shown on the left (A)."))
    choice = models.CharField(max_length=5, choices=Choice.choices)
    winner = models.CharField(max_length=10, choices=Winner.choices)
    scores = models.JSONField(
        default=dict, blank=True, help_text=_("Criterion -> {tuned: 1-5, opponent: 1-5}; criteria left out unscored.")
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "reviewer"],
                condition=models.Q(reviewer__isnull=False),
                name="one_judgment_per_reviewer",
            ),
            models.UniqueConstraint(
                fields=["comparison", "judge_model"],
                condition=models.Q(reviewer__isnull=True),
                name="one_judgment_per_llm_judge",
            ),
            models.CheckConstraint(
                condition=models.Q(reviewer__isnull=False) | ~models.Q(judge_model=""), name="judgment_has_a_judge"
            ),
        ]

    def __str__(self) -> str:
        return f"judgment of {self.comparison_id} by {self.reviewer_id or self.judge_model}"


class JudgeJob(BackgroundWork):
    """An LLM judging an evaluation's comparisons through an OpenAI-compatible server."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="judge_jobs")
    backend = models.JSONField(default=dict, help_text=_("The server: base URL, model, key variable name, timeout."))
    judge_model = models.CharField(max_length=300, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text=_("Comparisons whose answer could not be parsed."))

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"LLM judging {self.pk} of evaluation {self.evaluation_id}"
