"""Imports in the background: the Huey task and `import_start`, which the page and the API both
call to queue it. This module imports the service, never the other way round."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

from django.core.cache import cache
from django.db import transaction
from django_huey import db_task

from curation.core.progress import progress_info
from curation.io.imports import Progress, example_import, import_job_create
from curation.models import ImportJob, Project


def progress_key(job_id: int) -> str:
    """(fraction of the file read, rows read), while the import runs."""
    return f"import-progress:{job_id}"


def started_key(job_id: int) -> str:
    """When the worker began the import (a Unix time), while it runs."""
    return f"import-started:{job_id}"


def import_progress(job: ImportJob) -> dict[str, Any]:
    """The import's progress (curation/core/progress.py): rows read, the fraction of the file
    read, the time since the worker began it and an estimate of the time left. An import runs
    in one transaction, so while it runs these come from the cache, not the row (the row's
    `progress` and `rows_read` are set from it here)."""
    started_at = job.created_at
    if not job.finished:
        if live := cache.get(progress_key(job.pk)):
            job.progress, job.rows_read = live
        if started := cache.get(started_key(job.pk)):
            started_at = datetime.fromtimestamp(started, tz=UTC)
        elif job.status != ImportJob.Status.RUNNING:
            started_at = None  # still waiting for a worker
    return progress_info(
        processed=job.rows_read,
        total=0,
        fraction=1.0 if job.status == ImportJob.Status.SUCCEEDED else job.progress,
        started_at=started_at,
        finished_at=job.finished_at,
        finished=job.finished,
    )


@db_task(queue="light")
def import_run(job_id: int) -> None:
    job = ImportJob.objects.filter(pk=job_id).first()
    # A retried or duplicated message must not import twice (example_import claims the job).
    if job is None or job.status != ImportJob.Status.PENDING:
        return
    with import_progress_kept(job.pk) as progress:
        example_import(job=job, progress=progress)


@contextmanager
def import_progress_kept(job_id: int) -> Iterator[Progress]:
    """The progress callback of a running import (a file's, or a source's: curation/sources/
    tasks.py), which keeps the progress in the cache while the import's transaction is open."""

    def progress(fraction: float, rows: int) -> None:
        # The import writes inside one transaction; progress goes around it, to the cache.
        cache.set(progress_key(job_id), (fraction, rows), timeout=3600)

    cache.set(started_key(job_id), time.time(), timeout=3600 * 24)
    try:
        yield progress
    finally:
        cache.delete_many([progress_key(job_id), started_key(job_id)])


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
