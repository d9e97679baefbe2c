"""Generation jobs (synthetic and augmentation) in the background: the Huey task and what queues
it. This module imports the services, never the other way round."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django_huey import db_task

from curation.core.queues import HEAVY, backend_queue
from curation.generation.augment import augment_create, augment_execute
from curation.generation.jobs import counting_backend, generation_job_requeue
from curation.generation.synthetic import synthetic_create, synthetic_execute
from curation.models import GenerationJob, Project


def generation_job_run(job_id: int) -> None:
    """The tasks' body: make the job's drafts."""
    job = GenerationJob.objects.filter(pk=job_id).first()
    if job is None or job.status != GenerationJob.Status.QUEUED:
        return  # deleted, or a duplicate delivery
    execute = synthetic_execute if job.kind == GenerationJob.Kind.SYNTHETIC else augment_execute
    # Run through a backend that counts each reply as it comes back: the page and the API see
    # items done (and so an estimate) within a batch, not only at its end.
    backend = counting_backend(job)
    try:
        execute(job=job, backend=backend)
    except Exception:  # noqa: BLE001 - the job already records the error for the page
        pass
    finally:
        if backend is not None:
            backend.progress.recorder.flush()


# A job on a local model waits in the heavy queue, one on a model server in the light queue.
generation_job_task = db_task(queue="light")(generation_job_run)
generation_job_task_heavy = db_task(queue="heavy")(generation_job_run)


def _queued(job: GenerationJob) -> GenerationJob:
    heavy = backend_queue((job.config or {}).get("backend")) == HEAVY
    task = generation_job_task_heavy if heavy else generation_job_task
    transaction.on_commit(lambda: task(job.pk))
    return job


def synthetic_start(*, project: Project, user: Any, **settings: Any) -> GenerationJob:
    """Queue a synthetic job (the settings are `synthetic_create`'s); ConfigError names the
    setting that cannot work."""
    return _queued(synthetic_create(project=project, user=user, **settings))


def augment_start(*, project: Project, user: Any, **settings: Any) -> GenerationJob:
    """Queue an augmentation job (the settings are `augment_create`'s); AugmentError names the
    setting that cannot work."""
    return _queued(augment_create(project=project, user=user, **settings))


def generation_job_resume(*, job: GenerationJob) -> GenerationJob:
    """Run an interrupted, failed or cancelled job again: it makes only the drafts it lacks."""
    return _queued(generation_job_requeue(job=job))
