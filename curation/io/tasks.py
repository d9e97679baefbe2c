"""Imports in the background: the Huey task and `import_start`, which the page and the API both
call to queue it. This module imports the service, never the other way round."""

from __future__ import annotations

from typing import IO, Any

from django.core.cache import cache
from django.db import transaction
from huey.contrib.djhuey import db_task

from curation.io.imports import example_import, import_job_create
from curation.models import ImportJob, Project


def progress_key(job_id: int) -> str:
    return f"import-progress:{job_id}"


@db_task()
def import_run(job_id: int) -> None:
    job = ImportJob.objects.filter(pk=job_id).first()
    # A retried or duplicated message must not import twice (example_import claims the job).
    if job is None or job.status != ImportJob.Status.PENDING:
        return

    def progress(fraction: float, rows: int) -> None:
        # The import writes inside one transaction; progress goes around it, to the cache.
        cache.set(progress_key(job_id), (fraction, rows), timeout=3600)

    try:
        example_import(job=job, progress=progress)
    finally:
        cache.delete(progress_key(job_id))


@transaction.atomic
def import_start(
    *,
    project: Project,
    user: Any,
    fileobj: IO[bytes] | Any,
    filename: str,
    format: str,
    options: dict[str, Any] | None = None,
) -> ImportJob:
    """Keep a copy of the upload and queue its import; InvalidExample names what is wrong
    (format, options, size), and then nothing is kept."""
    job = import_job_create(
        project=project, user=user, fileobj=fileobj, filename=filename, format=format, options=options
    )
    transaction.on_commit(lambda: import_run(job.pk))
    return job
