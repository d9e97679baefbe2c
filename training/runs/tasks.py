"""Training runs in the background: the Huey task and what queues it. This module imports the
services, never the other way round. A run that is done sends `run_done`; evaluation (which
sits above runs) answers it by queueing the run's evaluation."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import Signal
from django_huey import db_task

from curation.core.progress import progress_info
from curation.models import Project
from training.models import TrainingRun
from training.runs.services import (
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
    """The Huey task's body: train, and tell whoever listens (the evaluation) that the run is done."""
    run = training_run_train(run=run)
    if run.status == TrainingRun.Status.DONE:
        run_done.send(sender=TrainingRun, run=run)
        run.refresh_from_db()
    return run


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
