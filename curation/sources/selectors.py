"""Reads the source pages and the API share: a SQL source's preview, a source's latest imports."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from curation import formats
from curation.formats.rows import FileRejected, ReadOptions, Row
from curation.models import ImportJob, Project, Source
from curation.sources import s3, services, sql

PREVIEW_ROWS = 20


@dataclass
class Preview:
    """The first rows of a query as they would be imported (the mapping applied), with their
    errors; or why the query could not run."""

    columns: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    error: str = ""


def sql_preview(source: Source, *, limit: int = PREVIEW_ROWS) -> Preview:
    project: Project = source.project
    options = source.options
    labels = dict(project.labels.values_list("name", "id"))
    read_options = ReadOptions(
        mapping=options.get("mapping") or None,
        max_row_bytes=settings.SHIKOMI_MAX_ROW_BYTES,
        classification=project.kind == Project.Kind.CLASSIFICATION,
        max_messages=settings.SHIKOMI_MAX_MESSAGES,
    )
    try:
        url = services.secret_value(source)
        timeout = float(options.get("timeout") or services.DEFAULT_TIMEOUT)
        with sql.run_query(url, options["query"], timeout=timeout) as result:
            rows = formats.CheckedSource(sql.QueryRows(result, read_options, limit + 1), labels, read_options)
            return Preview(list(result.columns), list(itertools.islice(rows, limit)))
    except FileRejected as error:
        return Preview(error=error.error.message)


@dataclass
class ObjectsPreview:
    """What an import of an S3 source would read: the objects (key, size, format) in key order
    and the keys it would skip; or why the bucket could not be listed. Nothing is downloaded."""

    taken: list[tuple[str, int, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str = ""


def s3_preview(source: Source, *, limit: int = 200) -> ObjectsPreview:
    json_format = source.options.get("json_format") or "openai"
    try:
        client = s3.client_for(source.options, services.secret_value(source))
        found = s3.listing(client, source.options)
    except FileRejected as error:
        return ObjectsPreview(error=error.error.message)
    taken = [(key, size, s3.format_of(key, json_format) or "") for key, size in found.taken[:limit]]
    return ObjectsPreview(taken, found.skipped[:limit])


def source_jobs(source: Source, limit: int = 10) -> QuerySet[ImportJob]:
    return source.import_jobs.select_related("created_by").order_by("-created_at")[:limit]


def sources_for(project: Project) -> QuerySet[Source]:
    return project.sources.all()


def message_text(messages: Any) -> list[tuple[str, str]]:
    """(role, content) of a preview row's messages, for the table."""
    return [(str(m.get("role", "")), str(m.get("content", ""))) for m in messages or [] if isinstance(m, dict)]
