"""Huey tasks: thin wrappers that take ids and call a service."""

from __future__ import annotations

from django.core.cache import cache
from huey.contrib.djhuey import db_task

from curation.imports import example_import
from curation.models import ImportJob, RuleRun


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


@db_task()
def rule_run_task(run_id: int) -> None:
    from curation.rules.services import rule_run_execute

    run = RuleRun.objects.filter(pk=run_id).select_related("project").first()
    if run is None or run.status != RuleRun.Status.QUEUED:
        return  # deleted, or a duplicate delivery
    try:
        rule_run_execute(run=run)
    except Exception:  # noqa: BLE001 - the run already records the error for the page
        pass


@db_task()
def quality_scan_task(scan_id: int) -> None:
    from curation.models import QualityScan
    from curation.quality.services import quality_scan_execute

    scan = QualityScan.objects.filter(pk=scan_id).select_related("project").first()
    if scan is None or scan.status != QualityScan.Status.QUEUED:
        return  # deleted, or a duplicate delivery
    try:
        quality_scan_execute(scan=scan)
    except Exception:  # noqa: BLE001 - the scan already records the error for the page
        pass


@db_task()
def generation_job_task(job_id: int) -> None:
    from curation.generation.synthetic import synthetic_execute
    from curation.models import GenerationJob
    from curation.quality.augment import augment_execute

    job = GenerationJob.objects.filter(pk=job_id).first()
    if job is None or job.status != GenerationJob.Status.QUEUED:
        return  # deleted, or a duplicate delivery
    execute = synthetic_execute if job.kind == GenerationJob.Kind.SYNTHETIC else augment_execute
    try:
        execute(job=job)
    except Exception:  # noqa: BLE001 - the job already records the error for the page
        pass
