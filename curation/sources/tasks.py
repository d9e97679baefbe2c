"""Imports from a source in the background, on the light queue like a file's import, with the same
progress (curation/io/tasks.py) and the same job page. SQL and S3 rows go through the file import's
validation and atomic write (curation/io/imports.py, with the source's parts); web pages and
documents become `SourceDocument` rows (document_store.py)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_huey import db_task

from curation.core.queues import LIGHT
from curation.core.storage import working_copy
from curation.io.imports import ImportPart, example_import, upload_remove
from curation.io.tasks import import_progress_kept
from curation.models import ImportJob, Source
from curation.sources import document_store, documents, s3, services, sql, web
from curation.sources.resync import Resync


def sql_parts(source: Source, limit: int | None = None) -> Iterator[ImportPart]:
    """The query's rows as the one part of the import ("query")."""
    options = source.options
    url = services.secret_value(source)
    limit = limit or int(options.get("row_limit") or services.DEFAULT_ROW_LIMIT)
    with sql.run_query(url, options["query"], timeout=float(options.get("timeout") or 60)) as result:
        yield ImportPart("query", "query", read=lambda read_options: sql.QueryRows(result, read_options, limit))


def _s3_parts(source: Source, skipped: list[str]) -> Iterator[ImportPart]:
    yield from s3.s3_parts(source.options, services.secret_value(source), skipped)


@db_task(queue=LIGHT)
def source_import_run(job_id: int) -> None:
    job = ImportJob.objects.select_related("source", "project").filter(pk=job_id).first()
    # A retried or duplicated message must not import twice (the import claims the job).
    if job is None or job.status != ImportJob.Status.PENDING or job.source is None:
        return
    source = job.source
    update = bool(job.options.get("update_changed"))
    with import_progress_kept(job.pk) as progress:
        if source.kind in (Source.Kind.SQL, Source.Kind.S3):
            keeper = Resync(job, update_changed=update)
            parts = sql_parts(source) if source.kind == Source.Kind.SQL else _s3_parts(source, keeper.skipped_objects)
            example_import(job=job, progress=progress, parts=parts, keeper=keeper)
        elif ImportJob.claim(job.pk, error="", progress=0.0):
            job.refresh_from_db()
            try:
                _documents_import(job, source, update, progress)
            except Exception as exc:
                document_store.documents_failed(
                    job,
                    _("The import stopped on an unexpected error, and nothing was imported: %(error)s")
                    % {"error": f"{type(exc).__name__}: {exc}"},
                )
                upload_remove(job)
                raise
    job.refresh_from_db(fields=["status"])
    if job.status == ImportJob.Status.SUCCEEDED:
        Source.objects.filter(pk=source.pk).update(synced_at=timezone.now())


def _documents_import(job: ImportJob, source: Source, update: bool, progress: Any) -> None:
    refused: list[dict[str, str]] = []
    taken: list[document_store.Taken] = []
    if source.kind == Source.Kind.WEB:
        options = source.options
        report = web.fetch_pages(
            list(options.get("urls") or []),
            sitemap=options.get("sitemap") or None,
            max_pages=int(options.get("max_pages") or 200),
            max_bytes=int(options.get("max_bytes") or 2_000_000),
            delay_seconds=float(options.get("delay_seconds", 1.0)),
            progress=lambda done, total: progress(done / max(total, 1), done),
        )
        refused = [{"object": r.url, "reason": r.reason} for r in report.refused]
        taken = [document_store.Taken(p.final_url or p.url, p.title, p.text, p.content_type) for p in report.pages]
    else:
        with working_copy(job.path) as path, zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            for index, member in enumerate(members, start=1):
                name = PurePosixPath(member.filename).name
                try:
                    data = archive.read(member) if member.file_size <= settings.SHIKOMI_MAX_UPLOAD_BYTES else b""
                    found = documents.extract_document(name, data)
                except documents.DocumentRejected as error:
                    refused.append({"object": name, "reason": str(error)})
                else:
                    taken.append(document_store.Taken(name, found.title, found.text, found.content_type))
                progress(index / max(len(members), 1), index)
    document_store.documents_write(job=job, taken=taken, refused=refused, update_changed=update)
    if job.path:
        upload_remove(job)  # the documents' text is kept; the uploaded files are not


@transaction.atomic
def source_import_start(
    *,
    source: Source,
    user: Any,
    skip_bad_rows: bool = False,
    update_changed: bool = False,
    files: list[Any] | None = None,
) -> ImportJob:
    """Create the source's import job and queue it once the transaction commits."""
    job = services.source_import_create(
        source=source, user=user, skip_bad_rows=skip_bad_rows, update_changed=update_changed, files=files
    )
    transaction.on_commit(lambda: source_import_run(job.pk))
    return job
