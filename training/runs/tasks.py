"""Training runs in the background: the Huey task and what queues it. This module imports the
services, never the other way round. The task trains in a child process pinned to a device of
the consumer (training/runs/process.py), or in its own thread when SHIKOMI_RUN_IN_CHILD is off. A
run that is done sends `run_done`; evaluation (which sits above runs) answers it by queueing the
run's evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django_huey import db_task

from curation.core.progress import progress_info
from curation.models import Project
from training.models import TrainingRun
from training.runs.process import Ended, run_in_child, work_in_child
from training.runs.services import (
    DatabaseCallbacks,
    training_run_prepare,
    training_run_requeue,
    training_run_train,
)


@db_task(queue="heavy")
def training_run_task(run_id: int) -> None:
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None or run.status != TrainingRun.Status.QUEUED:
        return  # deleted, cancelled while queued, or a duplicate delivery
    training_run_execute(run=run)


# Sent with `run` when a training run is done, inside the task that trained it.
run_done = Signal()


def training_run_execute(*, run: TrainingRun) -> TrainingRun:
    """The Huey task's body: train (in a child process, unless SHIKOMI_RUN_IN_CHILD is off), and
    tell whoever listens (the evaluation) that the run is done."""
    run = _train_in_child(run) if run_in_child() else training_run_train(run=run)
    if run.status == TrainingRun.Status.DONE:
        run_done.send(sender=TrainingRun, run=run)
        run.refresh_from_db()
    return run


def training_run_child(run_id: int) -> None:
    """What the child process runs: train the run (it claims the row and records how it ended)."""
    if (run := TrainingRun.objects.filter(pk=run_id).first()) is not None:
        training_run_train(run=run)


def _train_in_child(run: TrainingRun) -> TrainingRun:
    """Train in a child process on a free device of this consumer, waiting for one if each is in
    use; a cancel stops the child at once (training/runs/process.py)."""

    def waits(devices: list[str]) -> None:
        DatabaseCallbacks(TrainingRun.objects.get(pk=run.pk)).on_message(
            f"waiting for a free device ({', '.join(devices)}: each is in use by another run)"
        )

    def starts(device: str) -> None:
        DatabaseCallbacks(TrainingRun.objects.get(pk=run.pk)).on_message(f"training in a new process on {device}")

    ended = work_in_child(
        model=TrainingRun,
        pk=run.pk,
        target="training.runs.tasks:training_run_child",
        cancellable=True,
        on_wait=waits,
        on_start=starts,
    )
    if ended is not None and ended.how == "cancelled":
        _record_cancel(run.pk, ended)
    run.refresh_from_db()
    return run


def _record_cancel(run_id: int, ended: Ended) -> None:
    """The run whose process was stopped on cancel ends cancelled, keeping the last checkpoint it
    recorded (each is complete before it is recorded), from which a resume continues."""
    run = TrainingRun.objects.get(pk=run_id)
    latest = run.progress or {}
    stopped = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING, worker=ended.worker).update(
        status=TrainingRun.Status.CANCELLED,
        device=run.device or ended.device,
        result={
            "how": "cancelled",
            "final_train_loss": latest.get("train_loss"),
            "final_val_loss": latest.get("val_loss"),
        },
        finished_at=timezone.now(),
    )
    if stopped:
        kept = f"its last checkpoint is {Path(run.checkpoint).name}" if run.checkpoint else "it had no checkpoint yet"
        DatabaseCallbacks(run).on_message(f"cancelled: process {ended.pid} stopped at step {run.step}; {kept}")


def run_progress(run: TrainingRun) -> dict[str, Any]:
    """The run's progress as every long task shows it (curation/core/progress.py): steps done of
    all, time since it started, and the trainer's own estimate of the time left (from its
    latest steps' speed), or the rate since the start where it has none yet."""
    eta = (run.progress or {}).get("eta_seconds")
    return progress_info(
        processed=run.step,
        total=run.total_steps,
        started_at=run.started_at,
        finished_at=run.finished_at,
        finished=run.finished,
        eta_seconds=eta if isinstance(eta, int | float) else None,
    )


def training_run_create(*, project: Project, user: Any, enqueue: bool = True, **settings: Any) -> TrainingRun:
    """Launch a run (the settings are `training_run_prepare`'s, which says what refuses it) and
    queue its training, unless `enqueue` is false."""
    run = training_run_prepare(project=project, user=user, **settings)
    if enqueue:
        transaction.on_commit(lambda: training_run_task(run.pk))
    return run


def training_run_resume(*, run: TrainingRun) -> TrainingRun:
    """Continue a cancelled, failed or interrupted run from its last checkpoint, with the same
    configuration and frozen data."""
    run = training_run_requeue(run=run)
    transaction.on_commit(lambda: training_run_task(run.pk))
    return run
