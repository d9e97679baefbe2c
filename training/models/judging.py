"""Training runs: the frozen data snapshot, the configuration, the quality gates an admin
overrode, live progress written by the Huey task, the loss curve points, and the artifacts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from curation.models import BackgroundWork
from training.models.evaluation import EvalSample, Evaluation


def comparison_key() -> str:
    import secrets

    return secrets.token_urlsafe(12)


class Comparison(models.Model):
    """The tuned model's answer to one test prompt against a baseline's, for blind judging.

    Judges reach it by `key`, a random token: nothing in its address or its page says which
    answer is which model. Which side each judge sees on the left is decided on the server
    (training/evaluation/judging.py) and recorded with the judgment."""

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

    INTERRUPTED_MESSAGE = _("The worker stopped during this job; the judgments saved so far are kept. Start it again.")

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="judge_jobs")
    backend = models.JSONField(default=dict, help_text=_("The server: base URL, model, key variable name, timeout."))
    judge_model = models.CharField(max_length=300, blank=True)
    failures = models.PositiveIntegerField(default=0, help_text=_("Comparisons whose answer could not be parsed."))

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"LLM judging {self.pk} of evaluation {self.evaluation_id}"
