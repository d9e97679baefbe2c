"""Huey tasks of the training app: thin wrappers that take ids and call a service."""

from __future__ import annotations

from huey.contrib.djhuey import db_task


@db_task()
def training_run_task(run_id: int) -> None:
    from training.models import TrainingRun
    from training.services import training_run_execute

    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None or run.status != TrainingRun.Status.QUEUED:
        return  # deleted, cancelled while queued, or a duplicate delivery
    training_run_execute(run=run)


@db_task()
def evaluation_task(evaluation_id: int) -> None:
    from training.evaluations import evaluation_execute
    from training.models import Evaluation

    evaluation = Evaluation.objects.filter(pk=evaluation_id).select_related("run__project").first()
    if evaluation is None or evaluation.status != Evaluation.Status.QUEUED:
        return
    evaluation_execute(evaluation=evaluation)


@db_task()
def judge_job_task(job_id: int) -> None:
    from training.judge_llm import judge_job_execute
    from training.models import JudgeJob

    job = JudgeJob.objects.filter(pk=job_id).select_related("evaluation").first()
    if job is None or job.status != JudgeJob.Status.QUEUED:
        return
    judge_job_execute(job=job)
