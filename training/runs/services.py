"""Launching training runs. The launch freezes the data (ids and content hashes of the train
and validation examples) and passes the quality gates; the trainer itself is plain Python
that never sees the database."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.core.errors import ServiceError
from curation.core.storage import reference
from curation.models import Example, PreferencePair, Project
from curation.quality.gates import LaunchBlocked, launch_blockers
from training.engine.checkpoints import checkpoint_step
from training.engine.config import TrainConfig, config_clean
from training.engine.interface import PreferenceExample, Progress, TrainExample, TrainResult
from training.models import TrainingPoint, TrainingRun
from training.runs.artifacts import (
    DATA,
    RunArtifacts,
    checkpoint_available,
    output_dir,
    run_dir,  # noqa: F401 - evaluation and the tests take the run's folder from here
    run_file_write,
    run_files_clear,
)

log = logging.getLogger(__name__)
LOG_CHARS = 20_000

# Below this, a run is allowed but warned about: the model mostly memorises.
SMALL_TRAIN = 200
TRAINABLE = ~Q(status__in=[Example.Status.REJECTED, Example.Status.DRAFT])


class TrainingRefused(ServiceError):
    """A run or evaluation that cannot start; `field` names why (a resume refused is a 409)."""


# The statuses a launch page counts, in the order of the work.
COUNTED_STATUSES = (
    Example.Status.APPROVED,
    Example.Status.NEEDS_REVIEW,
    Example.Status.DRAFT,
    Example.Status.REJECTED,
)
COUNTED_SPLITS = (Example.Split.TRAIN, Example.Split.VALIDATION)


def training_examples(project: Project, split: str, *, approved_only: bool = False):
    """The examples of `split` a run takes: the approved ones only, or every one that is neither
    rejected nor a draft still waiting for review."""
    examples = Example.objects.filter(project=project, split=split)
    examples = examples.filter(status=Example.Status.APPROVED) if approved_only else examples.filter(TRAINABLE)
    return examples.order_by("pk")


def uses_status(status: str, *, approved_only: bool) -> bool:
    """Whether a run takes examples of `status` (the rule `training_examples` applies)."""
    if approved_only:
        return status == Example.Status.APPROVED
    return status not in (Example.Status.REJECTED, Example.Status.DRAFT)


def status_counts(project: Project) -> dict[str, dict[str, int]]:
    """Examples per split (train, validation) and status, in one query: what the launch page
    shows a run would take and leave out."""
    counts = {split: dict.fromkeys(COUNTED_STATUSES, 0) for split in COUNTED_SPLITS}
    rows = (
        Example.objects.filter(project=project, split__in=COUNTED_SPLITS)
        .order_by()
        .values_list("split", "status")
        .annotate(n=Count("id"))
    )
    for split, status, n in rows:
        counts[split][status] = counts[split].get(status, 0) + n
    return counts


def _empty_train_refusal(project: Project, approved_only: bool) -> TrainingRefused:
    """Why there is nothing to train on: an empty split, or one whose examples are not approved."""
    if approved_only:
        waiting = training_examples(project, Example.Split.TRAIN).count()
        if waiting:
            return TrainingRefused(
                "approved_only",
                _(
                    "The training split has no approved examples (%(n)s are not reviewed yet): approve them in the "
                    "review queue, or launch with every example that is not rejected."
                )
                % {"n": waiting},
            )
    return TrainingRefused("split", _("The training split is empty: assign examples to it on the splits page."))


@transaction.atomic
def training_run_prepare(
    *,
    project: Project,
    user: Any,
    method: str | None = None,
    base_model: str | None = None,
    config: dict[str, Any] | None = None,
    preset: str | None = None,
    override_leakage: bool = False,
    override_reason: str = "",
    approved_only: bool = False,
) -> TrainingRun:
    """Validate the configuration, freeze the snapshot and create the queued run, or refuse: a
    setting that cannot work (ConfigInvalid, one message per field), an empty training split
    or no preference pairs for DPO (TrainingRefused), or a quality gate (LaunchBlocked) that
    was not overridden. The frozen data is written to the run's folder, so the run (and a
    resumed run) trains on exactly what was launched even if the examples change later.
    With `approved_only`, only approved examples are taken (else every one that is neither
    rejected nor a draft); the snapshot records which. training/runs/tasks.py queues it."""
    cleaned = _config(project, method=method, base_model=base_model, config=config, preset=preset)
    Project.objects.select_for_update().filter(pk=project.pk).first()
    columns = ("pk", "content_hash", "messages", "label__name", "tools")
    train_rows = list(
        training_examples(project, Example.Split.TRAIN, approved_only=approved_only).values_list(*columns)
    )
    validation_rows = list(
        training_examples(project, Example.Split.VALIDATION, approved_only=approved_only).values_list(*columns)
    )
    train = [(row[0], row[1]) for row in train_rows]
    validation = [(row[0], row[1]) for row in validation_rows]
    pairs = _preference_pairs(project, cleaned)
    if cleaned.method != "dpo" and not train:
        raise _empty_train_refusal(project, approved_only)
    overrides = _gates_passed(
        project, user, [pk for pk, _h in train + validation], override_leakage=override_leakage, reason=override_reason
    )
    number = (TrainingRun.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    snapshot: dict[str, Any] = {
        "train": [list(r) for r in train],
        "validation": [list(r) for r in validation],
        "approved_only": approved_only,
    }
    if pairs:
        snapshot["preference_pairs"] = [p["pk"] for p in pairs]
    run = TrainingRun.objects.create(
        project=project,
        number=number,
        method=cleaned.method,
        base_model=cleaned.base_model,
        config=cleaned.as_dict(),
        snapshot=snapshot,
        train_count=len(train),
        validation_count=len(validation),
        preference_count=len(pairs),
        gate_overrides=overrides,
        warnings=_warnings(train, validation),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    _freeze(
        run,
        {
            "train": [_frozen_row(*row) for row in train_rows],
            "validation": [_frozen_row(*row) for row in validation_rows],
            "preference_pairs": pairs,
        },
    )
    return run


def _frozen_row(pk: int, _digest: str, messages: list[Any], label: str | None, tools: list[Any] | None) -> dict:
    """One example as the run trains on it: the canonical conversation, its tools (when it has any) and label."""
    row: dict[str, Any] = {"id": pk, "messages": messages, "label": label}
    if tools:
        row["tools"] = tools
    return row


def _config(
    project: Project, *, method: str | None, base_model: str | None, config: dict[str, Any] | None, preset: str | None
) -> TrainConfig:
    """The run's configuration: the form's values over the preset, the project's base model and balance."""
    data = dict(config or {})
    if method is not None:
        data["method"] = method
    if base_model is not None:
        data["base_model"] = base_model
    data.setdefault("base_model", project.base_model)
    data.setdefault("balance", project.balance_strategy)
    return config_clean(data, preset=preset)


def _preference_pairs(project: Project, cleaned: TrainConfig) -> list[dict[str, Any]]:
    """A DPO run's pairs, in id order (refused when there are none); none for other methods."""
    if cleaned.method != "dpo":
        return []
    pairs = list(
        PreferencePair.objects.filter(project=project)
        .order_by("pk")
        .values("pk", "prompt", "chosen", "rejected", "tools")
    )
    if not pairs:
        raise TrainingRefused(
            "method",
            _(
                "DPO trains on preference pairs and this project has none: edit or rank synthetic drafts, or import "
                "a preference file, to make some."
            ),
        )
    return pairs


def _gates_passed(
    project: Project, user: Any, example_ids: list[int], *, override_leakage: bool, reason: str
) -> list[dict[str, Any]]:
    """The quality gates the snapshot must pass: LaunchBlocked names those that stop it. A leak an
    admin overrode (with a reason) is let through and returned, to be recorded on the run."""
    blockers = launch_blockers(project, examples=Example.objects.filter(pk__in=example_ids))
    if override_leakage and not reason.strip():
        raise TrainingRefused("override_reason", _("Say why the leakage is acceptable; it is recorded on the run."))
    overrides, remaining = [], []
    for blocker in blockers:
        if blocker.gate == "leakage" and override_leakage:
            overrides.append(
                {
                    "gate": blocker.gate,
                    "by": getattr(user, "username", None),
                    "at": timezone.now().isoformat(),
                    "reason": reason.strip(),
                    "message": blocker.message,
                    "ids": blocker.ids[:1000],
                }
            )
        else:
            remaining.append(blocker)
    if remaining:
        raise LaunchBlocked(remaining)
    return overrides


def _warnings(train: list[tuple[int, str]], validation: list[tuple[int, str]]) -> list[str]:
    """What the run page warns about: a run allowed, but unlikely to teach much."""
    warnings = []
    if len(train) < SMALL_TRAIN:
        warnings.append(
            _("Only %(n)s training examples: under a few hundred, a model mostly memorises them.") % {"n": len(train)}
        )
    if not validation:
        warnings.append(_("No validation split: no validation loss and no early stopping."))
    return warnings


def _freeze(run: TrainingRun, frozen: dict[str, Any]) -> None:
    """Write what the run trains on to its folder (data.json), and store it with the artifacts."""
    run_files_clear(run)  # left by a run whose launch was rolled back (SQLite reuses ids)
    run_file_write(run, DATA, frozen)


# --- running -------------------------------------------------------------------------------


class DatabaseCallbacks:
    """What the trainer reports, written to the run: progress, points, checkpoints (stored with
    the artifacts before they are recorded), log, cancel."""

    def __init__(self, run: TrainingRun, artifacts: RunArtifacts | None = None) -> None:
        self.run_id = run.pk
        self.lines: list[str] = [run.log] if run.log else []
        self.artifacts = artifacts or RunArtifacts(run)

    def on_log(self, progress: Progress) -> None:
        point = {
            "epoch": round(progress.epoch, 4),
            "learning_rate": progress.learning_rate,
            "tokens_per_second": round(progress.tokens_per_second, 1),
        }
        if progress.train_loss is not None:
            point["train_loss"] = progress.train_loss
        if progress.val_loss is not None:
            point["val_loss"] = progress.val_loss
        TrainingPoint.objects.update_or_create(run_id=self.run_id, step=progress.step, defaults=point)
        latest = {
            "epoch": progress.epoch,
            "train_loss": progress.train_loss,
            "val_loss": progress.val_loss,
            "learning_rate": progress.learning_rate,
            "tokens_per_second": progress.tokens_per_second,
            "eta_seconds": progress.eta_seconds,
            "tokens_seen": progress.tokens_seen,
            "at": timezone.now().isoformat(),
        }
        fields: dict[str, Any] = {"step": progress.step, "total_steps": progress.total_steps}
        current = TrainingRun.objects.filter(pk=self.run_id).values_list("progress", flat=True).first() or {}
        if progress.val_loss is None and current.get("val_loss") is not None:
            latest["val_loss"] = current["val_loss"]  # keep the last evaluation on show
        fields["progress"] = latest
        TrainingRun.objects.filter(pk=self.run_id).update(**fields)

    def on_checkpoint(self, path: Path, step: int) -> None:
        checkpoint = self.artifacts.checkpoint_saved(path)
        TrainingRun.objects.filter(pk=self.run_id).update(checkpoint=checkpoint)
        self.on_message(f"checkpoint saved at step {step}")

    def on_message(self, line: str) -> None:
        stamp = timezone.now().strftime("%H:%M:%S")
        self.lines.append(f"{stamp} {line}")
        text = "\n".join(self.lines)[-LOG_CHARS:]
        self.lines = [text]
        TrainingRun.objects.filter(pk=self.run_id).update(log=text)

    def should_stop(self) -> bool:
        return TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()


def _examples(rows: list[dict[str, Any]], balance: str) -> list[TrainExample]:
    examples = [TrainExample(messages=r["messages"], label=r.get("label"), tools=r.get("tools") or None) for r in rows]
    if balance == "class_weights":
        counts: dict[str | None, int] = {}
        for example in examples:
            counts[example.label] = counts.get(example.label, 0) + 1
        labelled = {label: n for label, n in counts.items() if label is not None}
        if labelled:
            mean = sum(labelled.values()) / len(labelled)
            for example in examples:
                if example.label is not None:
                    example.weight = mean / labelled[example.label]
    return examples


def training_run_train(*, run: TrainingRun) -> TrainingRun:
    """Train a queued run, reporting to the run; every way it can end is recorded. (The Huey
    task's body, `training_run_execute` in training/runs/tasks.py, then queues its evaluation.)"""
    if not TrainingRun.claim(run.pk, started_at=run.started_at or timezone.now(), error=""):
        run.refresh_from_db()
        return run
    run.refresh_from_db()
    callbacks = DatabaseCallbacks(run)
    try:
        resume_from = _resume_point(run, callbacks)
        result = _train(run, TrainConfig(**run.config), callbacks, resume_from)
        callbacks.artifacts.finished()
    except Exception as exc:  # noqa: BLE001 - every failure ends the run with its reason
        log.exception("training run %s failed", run.pk)
        callbacks.on_message("".join(traceback.format_exception_only(exc)).strip())
        _publish_logs(callbacks.artifacts)
        TrainingRun.objects.filter(pk=run.pk).update(
            status=TrainingRun.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}" if not isinstance(exc, (RuntimeError, ValueError)) else str(exc),
            finished_at=timezone.now(),
        )
        run.refresh_from_db()
        return run
    _record_result(run, result)
    callbacks.on_message(
        f"finished: {result.status} after {result.steps} of {result.total_steps} steps on {result.device}"
    )
    run.refresh_from_db()
    return run


def _publish_logs(artifacts: RunArtifacts) -> None:
    """What a failed run leaves (its logs) goes to the storage too, if the storage answers."""
    try:
        artifacts.finished()
    except Exception:  # noqa: BLE001 - the run's own failure is the one to report
        log.exception("the artifacts of failed run %s could not be stored", artifacts.run.pk)


def _resume_point(run: TrainingRun, callbacks: DatabaseCallbacks) -> Path | None:
    """The checkpoint a resumed run continues from, fetched to this machine (None for a fresh
    run; RuntimeError when its checkpoint is gone); the loss points past it go, as the steps
    after it are trained again."""
    resume_from = callbacks.artifacts.resume_point(run.checkpoint)
    if resume_from is not None:
        if (step := checkpoint_step(resume_from)) is not None:
            TrainingPoint.objects.filter(run=run, step__gt=step).delete()
        callbacks.on_message(f"resuming from {resume_from.name}")
    return resume_from


def _train(
    run: TrainingRun, config: TrainConfig, callbacks: DatabaseCallbacks, resume_from: Path | None
) -> TrainResult:
    """The engine's trainer (or DPO trainer) on the run's frozen data."""
    data = callbacks.artifacts.frozen()
    output = output_dir(run)
    if config.method == "dpo":
        from training.engine.dpo import train_dpo

        # Answers are assistant messages with the pair's tools (text in runs frozen before that).
        pairs = [
            PreferenceExample(p["prompt"], p["chosen"], p["rejected"], p.get("tools") or None)
            for p in data["preference_pairs"]
        ]
        held = dpo_validation_size(len(pairs))
        # The last pairs (they are in id order) hold out for validation loss and early stopping.
        return train_dpo(
            config,
            pairs[: len(pairs) - held],
            pairs[len(pairs) - held :],
            output,
            callbacks=callbacks,
            resume_from=resume_from,
            **_tracking(run),
        )
    from training.engine.trainer import train

    return train(
        config,
        _examples(data["train"], config.balance),
        _examples(data["validation"], "none"),
        output,
        callbacks=callbacks,
        resume_from=resume_from,
        **_tracking(run),
    )


def _tracking(run: TrainingRun) -> dict[str, Any]:
    """How TensorBoard and MLflow name and tag the run (training/engine/tracking.py)."""
    slug = run.project.slug
    return {"run_name": f"{slug} run {run.number}", "tags": {"shikomi.project": slug, "shikomi.run": str(run.number)}}


def _record_result(run: TrainingRun, result: TrainResult) -> None:
    """How the training ended (done, or cancelled at a checkpoint), on the run."""
    status = TrainingRun.Status.CANCELLED if result.status == "cancelled" else TrainingRun.Status.DONE
    TrainingRun.objects.filter(pk=run.pk).update(
        status=status,
        device=result.device,
        step=result.steps,
        total_steps=result.total_steps,
        output_dir=reference(result.output_dir) if status == TrainingRun.Status.DONE else "",
        checkpoint=reference(result.checkpoint) if result.checkpoint else run_checkpoint(run.pk),
        result={
            "how": result.status,
            "final_train_loss": result.final_train_loss,
            "final_val_loss": result.final_val_loss,
            "best_val_loss": result.best_val_loss,
            "tokens": result.tokens,
            "seconds": round(result.seconds, 1),
            **result.extra,
        },
        finished_at=timezone.now(),
    )


def dpo_validation_size(pairs: int) -> int:
    """Pairs held out for validation in a DPO run: a tenth, once there are at least 20."""
    return pairs // 10 if pairs >= 20 else 0


def run_checkpoint(run_id: int) -> str:
    return TrainingRun.objects.filter(pk=run_id).values_list("checkpoint", flat=True).first() or ""


def training_run_cancel(*, run: TrainingRun) -> None:
    """Stop the run: a consumer stops its process within seconds (training/runs/process.py),
    keeping its last complete checkpoint; run in the caller's thread (SHIKOMI_RUN_IN_CHILD off),
    the trainer stops after its step, checkpointing first. A queued run never starts."""
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.CANCELLED, finished_at=timezone.now()
    )


@transaction.atomic
def training_run_requeue(*, run: TrainingRun) -> TrainingRun:
    """A cancelled, failed or interrupted run queued again, to continue from its last checkpoint
    with the same configuration and frozen data (training/runs/tasks.py queues it)."""
    stopped = (TrainingRun.Status.CANCELLED, TrainingRun.Status.FAILED, TrainingRun.Status.INTERRUPTED)
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in stopped:
        raise TrainingRefused("status", _("Only a cancelled, failed or interrupted run can be resumed."), status=409)
    if not checkpoint_available(run):
        raise TrainingRefused(
            "checkpoint", _("This run has no checkpoint to resume from; launch it again as a new run."), status=409
        )
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.QUEUED, cancel_requested=False, error="", finished_at=None, resumed=run.resumed + 1
    )
    run.refresh_from_db()
    return run
