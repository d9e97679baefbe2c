"""Evaluations and LLM judges in the background: the Huey tasks, what queues them, and the
evaluation queued when a training run is done (`run_done`). This module imports the services,
never the other way round. An evaluation runs in a child process pinned to a device of the
consumer, as a training run does (training/runs/process.py)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver
from django_huey import db_task

from training.evaluation.llm_judge import judge_job_create, judge_job_execute
from training.evaluation.services import evaluation_create, evaluation_execute
from training.models import Evaluation, JudgeJob, TrainingRun
from training.runs.process import run_in_child, work_in_child
from training.runs.services import DatabaseCallbacks, TrainingRefused
from training.runs.tasks import run_done


# The judge is a model server: light work.
@db_task(queue="light")
def judge_job_task(job_id: int) -> None:
    job = JudgeJob.objects.filter(pk=job_id).select_related("evaluation").first()
    if job is None or job.status != JudgeJob.Status.QUEUED:
        return
    judge_job_execute(job=job)


def judge_job_start(*, evaluation: Evaluation, user: Any, backend: dict[str, Any], enqueue: bool = True) -> JudgeJob:
    """Queue an LLM judge over the evaluation's comparisons; JudgingError names the bad field."""
    job = judge_job_create(evaluation=evaluation, user=user, backend=backend)
    if enqueue:
        transaction.on_commit(lambda: judge_job_task(job.pk))
    return job


@db_task(queue="heavy")
def evaluation_task(evaluation_id: int) -> None:
    evaluation = Evaluation.objects.filter(pk=evaluation_id).select_related("run__project").first()
    if evaluation is None or evaluation.status != Evaluation.Status.QUEUED:
        return
    if run_in_child():
        work_in_child(model=Evaluation, pk=evaluation.pk, target="training.evaluation.tasks:evaluation_child")
    else:
        evaluation_execute(evaluation=evaluation)


def evaluation_child(evaluation_id: int) -> None:
    """What the child process runs: the evaluation (it claims the row and records how it ended)."""
    evaluation = Evaluation.objects.filter(pk=evaluation_id).select_related("run__project").first()
    if evaluation is not None:
        evaluation_execute(evaluation=evaluation)


def evaluation_start(*, run: TrainingRun, enqueue: bool = True, **settings: Any) -> Evaluation:
    """Freeze the test items and queue the evaluation (the settings are `evaluation_create`'s);
    TrainingRefused names what stops it."""
    evaluation = evaluation_create(run=run, **settings)
    if enqueue:
        transaction.on_commit(lambda: evaluation_task(evaluation.pk))
    return evaluation


@receiver(run_done, dispatch_uid="evaluate_when_possible")
def evaluate_when_possible(sender: Any, run: TrainingRun, **kwargs: Any) -> None:
    """A finished run is evaluated on the test split at once, unless it cannot be (no test split,
    a leak): then the log says why, and the run stays done."""
    callbacks = DatabaseCallbacks(run)
    try:
        evaluation = evaluation_start(run=run, user=run.created_by)
    except TrainingRefused as refusal:
        callbacks.on_message(f"not evaluated: {refusal.message}")
    else:
        callbacks.on_message(f"evaluation {evaluation.pk} queued on {evaluation.total} test examples")
