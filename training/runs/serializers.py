"""Input and output shapes of the training API, and the loss curve points that the run page's
chart reads too (the same JSON in the browser and in the API)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from curation.core.progress import waiting_place
from training.models import TrainingPoint, TrainingRun
from training.runs.artifacts import checkpoint_available, output_available

LOG_TAIL_LINES = 80


def _values(choices: Any) -> str:
    return ", ".join(str(value) for value in choices)


def log_tail(run: TrainingRun, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(run.log.splitlines()[-lines:])


def parse_after(value: str | None) -> int:
    """The ?after= of a points request: a step number, 0 when left out; ValueError otherwise."""
    if value in (None, ""):
        return 0
    if not value.isdigit():
        raise ValueError(_("Give a step number (0 or more)."))
    return int(value)


def points_payload(run: TrainingRun, after: int = 0) -> dict[str, Any]:
    """The points after step `after`, and whether more can come. `run` is read just before
    (as the views do): a run read as finished has written every point it will write."""
    points = TrainingPoint.objects.filter(run=run, step__gt=after).order_by("step")
    return {
        "points": TrainingPointSerializer(points, many=True).data,
        "finished": run.finished,
        "status": run.status,
        "step": run.step,
        "total_steps": run.total_steps,
    }


class TrainingPointSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingPoint
        fields = ["step", "epoch", "train_loss", "val_loss", "learning_rate", "tokens_per_second"]


class TrainingPointsSerializer(serializers.Serializer):
    points = TrainingPointSerializer(many=True)
    finished = serializers.BooleanField(help_text=gettext_lazy("True once the run ended: no more points will come."))
    status = serializers.CharField(help_text=_values(TrainingRun.Status.values))
    step = serializers.IntegerField()
    total_steps = serializers.IntegerField()


class TrainingRunSerializer(serializers.ModelSerializer):
    status = serializers.CharField(help_text=_values(TrainingRun.Status.values))
    base_model = serializers.CharField(help_text=gettext_lazy("Empty: the embedded SmolLM2-135M-Instruct."))
    config = serializers.JSONField(help_text=gettext_lazy("Every setting of the run, as validated at launch."))
    fraction = serializers.FloatField(help_text=gettext_lazy("step / total_steps (0 before the first step)."))
    result = serializers.JSONField(
        help_text=gettext_lazy(
            "After the run: how (done, early_stopped, cancelled), final_train_loss, final_val_loss, best_val_loss, "
            "tokens, seconds."
        )
    )
    duration_seconds = serializers.SerializerMethodField()
    approved_only = serializers.SerializerMethodField(
        help_text=gettext_lazy("Whether the run took approved examples only (false: also those that need review).")
    )
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "number",
            "status",
            "method",
            "base_model",
            "config",
            "train_count",
            "validation_count",
            "preference_count",
            "approved_only",
            "step",
            "total_steps",
            "fraction",
            "result",
            "device",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
        ]

    def get_approved_only(self, run: TrainingRun) -> bool:
        return bool((run.snapshot or {}).get("approved_only", False))

    def get_duration_seconds(self, run: TrainingRun) -> float | None:
        duration = run.duration
        return round(duration.total_seconds(), 1) if duration is not None else None


class TrainingRunDetailSerializer(TrainingRunSerializer):
    progress = serializers.JSONField(
        help_text=gettext_lazy(
            "The latest step: epoch, train_loss, val_loss, learning_rate, tokens_per_second, eta_seconds, "
            "tokens_seen, at."
        )
    )
    warnings = serializers.ListField(child=serializers.CharField())
    gate_overrides = serializers.JSONField(
        help_text=gettext_lazy("Quality gates overridden at launch: gate, by, at, reason, message, ids.")
    )
    log_tail = serializers.SerializerMethodField(help_text=gettext_lazy("The last lines of the run's log."))
    can_resume = serializers.SerializerMethodField(
        help_text=gettext_lazy("Stopped with a checkpoint to continue from.")
    )
    has_artifact = serializers.SerializerMethodField(
        help_text=gettext_lazy("The trained adapter (or weights) can be downloaded from artifact/.")
    )
    queue = serializers.SerializerMethodField(
        help_text=gettext_lazy(
            "For a queued run: the heavy queue, the jobs ahead of it there and those running, as {queue, ahead, "
            "running}; null once it has started."
        )
    )

    class Meta(TrainingRunSerializer.Meta):
        fields = [
            *TrainingRunSerializer.Meta.fields,
            "queue",
            "progress",
            "warnings",
            "gate_overrides",
            "error",
            "cancel_requested",
            "resumed",
            "log_tail",
            "can_resume",
            "has_artifact",
        ]

    def get_log_tail(self, run: TrainingRun) -> str:
        return log_tail(run)

    def get_queue(self, run: TrainingRun) -> dict[str, Any] | None:
        return waiting_place(run)

    def get_can_resume(self, run: TrainingRun) -> bool:
        return can_resume(run)

    def get_has_artifact(self, run: TrainingRun) -> bool:
        return has_artifact(run)


def can_resume(run: TrainingRun) -> bool:
    stopped = (TrainingRun.Status.CANCELLED, TrainingRun.Status.FAILED, TrainingRun.Status.INTERRUPTED)
    return run.status in stopped and checkpoint_available(run)


def has_artifact(run: TrainingRun) -> bool:
    return output_available(run)


class TrainingRunCreateSerializer(serializers.Serializer):
    preset = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text=gettext_lazy("A preset key (see training-options/); its values come first, `config` over them."),
    )
    config = serializers.DictField(
        default=dict,
        help_text=gettext_lazy(
            "Settings by name (see training-options/ for names, bounds and defaults); a setting left out keeps "
            "the preset's value or the default. base_model and balance default to the project's. The GPU "
            "settings (precision, attention, gradient_checkpointing, packing, liger, optimizer, fsdp, "
            "merge_adapter) are refused, one message per setting, where this server cannot honour them."
        ),
    )
    approved_only = serializers.BooleanField(
        default=True,
        help_text=gettext_lazy(
            "Train and validate on approved examples only (the default); false also takes examples that need "
            "review. Rejected examples and drafts are never taken."
        ),
    )
    override_leakage = serializers.BooleanField(
        default=False, help_text=gettext_lazy("Launch although validation or test examples leak from training.")
    )
    override_reason = serializers.CharField(
        allow_blank=True,
        default="",
        help_text=gettext_lazy("Needed with override_leakage: why the leakage is acceptable; kept on the run."),
    )


class LaunchBlockerSerializer(serializers.Serializer):
    gate = serializers.CharField(help_text="leakage, pii")
    message = serializers.CharField()
    ids = serializers.ListField(child=serializers.IntegerField(), help_text=gettext_lazy("The examples concerned."))


class LaunchBlockedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    blockers = LaunchBlockerSerializer(many=True, help_text=gettext_lazy("Only the leakage gate can be overridden."))


class TrainingConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()


class TrainingChoiceSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()


class TrainingPresetSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    values = serializers.JSONField(help_text=gettext_lazy("The settings the preset sets."))


class TrainingSettingSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    default = serializers.JSONField()
    low = serializers.FloatField(allow_null=True, help_text=gettext_lazy("Smallest accepted value (numbers only)."))
    high = serializers.FloatField(allow_null=True, help_text=gettext_lazy("Largest accepted value (numbers only)."))
    help = serializers.CharField()
    choices = TrainingChoiceSerializer(
        many=True,
        required=False,
        help_text=gettext_lazy(
            "The accepted values of a setting that takes one of a list (method, precision, attention, optimizer, "
            "fsdp...)."
        ),
    )


class TrainingOptionsSerializer(serializers.Serializer):
    methods = TrainingChoiceSerializer(many=True)
    presets = TrainingPresetSerializer(many=True)
    fields = TrainingSettingSerializer(many=True)
    schedulers = serializers.ListField(child=serializers.CharField())
    balance = TrainingChoiceSerializer(many=True)
    target_modules = serializers.ListField(
        child=serializers.CharField(),
        help_text=gettext_lazy("Linear layers of Llama-like models such as SmolLM2; other names may be given."),
    )
    cuda = serializers.BooleanField(
        help_text=gettext_lazy(
            "Whether this server has a CUDA GPU; without one QLoRA, fp16, flash_attention_2, packing, Liger, "
            "8-bit optimisers and FSDP are refused."
        )
    )
