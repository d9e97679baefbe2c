"""The documents of a web or documents source: written as `SourceDocument` rows in one transaction,
one row per distinct text (content hash) in the source.

On a re-sync a text the source has already is skipped (already present); a text that changed
at the same place (the page's URL, the file's name) replaces the document's text only when the
admin asked to update changed rows, and is reported as changed otherwise. What could not be taken
(a page the fetcher refused, a file that cannot be read) is reported with the reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from curation.io.imports import FINISH_FIELDS, REPORT_LIMIT
from curation.models import ImportJob, SourceDocument


@dataclass
class Taken:
    """A document's text as it came: where from, its title and type."""

    location: str
    title: str
    text: str
    content_type: str


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class _Counts:
    created: int = 0
    present: int = 0
    changed: int = 0
    updated: int = 0


def documents_write(
    *, job: ImportJob, taken: Iterable[Taken], refused: list[dict[str, str]], update_changed: bool
) -> ImportJob:
    """Write the documents of a running job and finish it (succeeded, or failed with nothing
    written when nothing could be taken)."""
    counts = _Counts()
    changed: list[dict[str, Any]] = []
    present: list[dict[str, Any]] = []
    read = 0
    source = job.source
    assert source is not None
    with transaction.atomic():
        by_hash = dict(SourceDocument.objects.filter(source=source).values_list("content_hash", "pk"))
        by_place = {d.location: d for d in SourceDocument.objects.filter(source=source).order_by("pk")}
        for document in taken:
            read += 1
            digest = text_hash(document.text)
            if digest in by_hash:
                counts.present += 1
                if len(present) < REPORT_LIMIT:
                    present.append({"object": document.location, "document": by_hash[digest]})
                continue
            earlier = by_place.get(document.location[:2000])
            if earlier is not None:
                counts.changed += 1
                if update_changed:
                    _replace(earlier, document, digest)
                    counts.updated += 1
                if len(changed) < REPORT_LIMIT:
                    entry = {"object": document.location, "document": earlier.pk, "updated": update_changed}
                    changed.append(entry)
                by_hash[digest] = earlier.pk
                continue
            created = SourceDocument.objects.create(
                project_id=job.project_id,
                source=source,
                title=document.title[:500],
                location=document.location[:2000],
                content_type=document.content_type[:100],
                text=document.text,
                content_hash=digest,
                characters=len(document.text),
            )
            by_hash[digest] = created.pk
            by_place[created.location] = created
            counts.created += 1
    failure = None
    if not read:
        failure = _("Nothing was imported: no page or file could be taken (see what was refused).")
    report = {
        "documents_created": counts.created,
        "already_present": counts.present,
        "duplicates": present,
        "changed": changed,
        "changed_total": counts.changed,
        "updated_total": counts.updated,
        "refused": refused[:REPORT_LIMIT],
        "refused_total": len(refused),
        "errors": [],
        "errors_total": 0,
    }
    _finish(job, read=read + len(refused), counts=counts, refused=len(refused), report=report, failure=failure)
    return job


def _replace(document: SourceDocument, taken: Taken, digest: str) -> None:
    document.text = taken.text
    document.title = taken.title[:500]
    document.content_type = taken.content_type[:100]
    document.content_hash = digest
    document.characters = len(taken.text)
    document.fetched_at = timezone.now()
    document.save(update_fields=["text", "title", "content_type", "content_hash", "characters", "fetched_at"])


def _finish(
    job: ImportJob, *, read: int, counts: _Counts, refused: int, report: dict[str, Any], failure: str | None
) -> None:
    job.status = ImportJob.Status.FAILED if failure else ImportJob.Status.SUCCEEDED
    job.error = failure or ""
    job.rows_read = read
    job.rows_created = counts.created
    job.rows_invalid = refused
    job.rows_duplicate = counts.present
    job.report = report
    job.progress = 1.0
    job.finished_at = timezone.now()
    job.save(update_fields=FINISH_FIELDS)


def documents_failed(job: ImportJob, message: str) -> None:
    """Finish a documents job that stopped before any document was written."""
    _finish(job, read=0, counts=_Counts(), refused=0, report={"errors": [], "errors_total": 0}, failure=message)


def refused_summary(count: int) -> str:
    return ngettext("%(n)d page or file was refused.", "%(n)d pages or files were refused.", count) % {"n": count}
