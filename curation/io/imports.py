"""Writes to examples: every change goes through here and leaves a revision."""

from __future__ import annotations

import logging
import uuid
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from curation import formats
from curation.core.services import InvalidExample, content_hash, example_bulk_update, search_text
from curation.core.storage import UPLOADS, is_remote, publish, remove, working_copy
from curation.formats.preference import PreferenceRow
from curation.formats.rows import DecodedTooLarge, FileRejected, ReadOptions, Row, RowError, batched
from curation.io.options import OPTION_NAMES, import_options_clean, mapping_clean
from curation.models import Example, ImportJob, PreferencePair, Project

__all__ = ["OPTION_NAMES", "example_import", "example_import_path", "import_job_create", "mapping_clean"]

log = logging.getLogger(__name__)
BATCH_SIZE = 2000


REPORT_LIMIT = 1000  # errors, duplicates and skipped lines kept in a report; totals count all


COPY_CHUNK = 1024 * 1024


Progress = Callable[[float, int], None]


def import_job_create(
    *,
    project: Project,
    user: Any,
    fileobj: IO[bytes] | Any,
    filename: str,
    format: str,
    options: dict[str, Any] | None = None,
) -> ImportJob:
    """Check the format and options, keep a copy of the file (in the artifacts storage, where the
    worker that imports it finds it), and create a pending job."""
    format, options = import_options_clean(format, options)
    limit = settings.SHIKOMI_MAX_UPLOAD_BYTES
    size = getattr(fileobj, "size", None)
    if isinstance(size, int) and size > limit:
        raise InvalidExample("file", _file_too_large_message(size, limit))
    folder = Path(settings.UPLOAD_DIR) / project.slug
    folder.mkdir(parents=True, exist_ok=True)
    safe = get_valid_filename(Path(filename).name)[-100:] or "upload"
    path = folder / f"{uuid.uuid4().hex}-{safe}"
    written = 0
    kept = str(path)
    try:
        with open(path, "wb") as out:
            for chunk in _chunks(fileobj):
                written += len(chunk)
                if written > limit:
                    raise InvalidExample("file", _file_too_large_message(None, limit))
                out.write(chunk)
        kept = publish(path)
        if is_remote():
            path.unlink()  # the storage keeps it; the worker fetches its own copy
        return ImportJob.objects.create(
            project=project,
            created_by=_author(user),
            format=format,
            filename=Path(filename).name[:255],
            path=kept,
            options=options,
        )
    except BaseException:
        path.unlink(missing_ok=True)
        if kept != str(path):
            remove(kept)
        raise


def example_import_path(
    *,
    project: Project,
    user: Any,
    path: str | Path,
    format: str,
    options: dict[str, Any] | None = None,
) -> ImportJob:
    """Import a file or folder on this machine now. A folder (a Hugging Face save_to_disk
    dataset) is read where it is; a file is copied like an upload."""
    path = Path(path)
    if path.is_dir():
        format, options = import_options_clean(format, options)
        if format != "hf":
            raise InvalidExample(
                "file", _("a folder can only be imported as a Hugging Face dataset (format hf); give a file")
            )
        job = ImportJob.objects.create(
            project=project,
            created_by=_author(user),
            format=format,
            filename=path.name[:255],
            path=str(path.resolve()),
            options=options,
        )
    else:
        with open(path, "rb") as f:
            job = import_job_create(
                project=project, user=user, fileobj=f, filename=path.name, format=format, options=options
            )
    return example_import(job=job)


def _chunks(fileobj: Any) -> Iterable[bytes]:
    if hasattr(fileobj, "chunks"):
        yield from fileobj.chunks(COPY_CHUNK)
        return
    while chunk := fileobj.read(COPY_CHUNK):
        yield chunk


def _author(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def _file_too_large_message(size: int | None, limit: int) -> str:
    values = {"size": _human_size(size or 0), "limit": _human_size(limit)}
    if size is None:
        return (
            _(
                "the file is larger than %(limit)s, the upload limit (SHIKOMI_MAX_UPLOAD_BYTES); "
                "split it into smaller files"
            )
            % values
        )
    return (
        _("the file is %(size)s; the upload limit is %(limit)s (SHIKOMI_MAX_UPLOAD_BYTES); split it into smaller files")
        % values
    )


def _decoded_too_large_message(filename: str, exc: DecodedTooLarge) -> str:
    values = {"file": filename, "member": exc.member, "limit": _human_size(exc.limit)}
    if exc.member:
        return (
            _(
                "%(member)s in %(file)s decodes to more than %(limit)s, the limit on what an upload may "
                "decode to (SHIKOMI_MAX_DECODED_BYTES); split the dataset into smaller files"
            )
            % values
        )
    return (
        _(
            "%(file)s decodes to more than %(limit)s, the limit on what an upload may decode to "
            "(SHIKOMI_MAX_DECODED_BYTES); split it into smaller files"
        )
        % values
    )


def _human_size(size: int) -> str:
    return f"{filesizeformat(size)} ({size} bytes)".replace("\xa0", " ")


class _Rejected(Exception):
    """Raised inside the transaction to roll back a file that has bad rows."""


class _Tally:
    def __init__(self, skip: bool) -> None:
        self.skip = skip
        self.rows_read = self.rows_created = self.rows_invalid = self.rows_duplicate = 0
        # Labeled rows whose label went to the unlabeled example they duplicate.
        self.labels_applied = 0
        self.errors: list[dict[str, Any]] = []
        self.errors_total = 0
        self.first_error: RowError | None = None
        self.duplicates: list[dict[str, Any]] = []
        self.skipped_lines: list[int] = []
        self.encoding: str | None = None
        self.pairs_created = 0  # preference pairs of a preference file

    def error(self, error: RowError) -> None:
        self.errors_total += 1
        self.first_error = self.first_error or error
        if len(self.errors) < REPORT_LIMIT:
            self.errors.append(error.as_dict())

    def bad_row(self, row: Row) -> None:
        self.rows_invalid += 1
        for error in row.errors:
            self.error(error)
        if self.skip and len(self.skipped_lines) < REPORT_LIMIT:
            self.skipped_lines.append(row.line)

    def duplicate(self, line: int, of: str, label_applied: str | None = None) -> None:
        self.rows_duplicate += 1
        self.labels_applied += label_applied is not None
        if len(self.duplicates) < REPORT_LIMIT:
            entry = {"line": line, "duplicate_of": of}
            self.duplicates.append(entry if label_applied is None else {**entry, "label_applied": label_applied})

    def rolled_back(self) -> None:
        """Nothing was written after all: no example created, no label applied."""
        self.rows_created = self.labels_applied = self.pairs_created = 0
        for entry in self.duplicates:
            entry.pop("label_applied", None)

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "errors": self.errors,
            "errors_total": self.errors_total,
            "duplicates": self.duplicates,
            "duplicates_total": self.rows_duplicate,
            "labels_applied": self.labels_applied,
            "encoding": self.encoding,
        }
        if self.skip:
            report["skipped_lines"] = self.skipped_lines
        if self.pairs_created:
            report["preference_pairs"] = self.pairs_created
        return report


def example_import(*, job: ImportJob, progress: Progress | None = None) -> ImportJob:
    """Run an import job: the job ends succeeded or failed, with its report filled in.

    ``progress(fraction, rows_read)`` is called after every batch, possibly inside the
    write transaction. A job no longer pending (it ran, or another worker runs it) is left
    as it is, so a retried task never imports twice. An unexpected error fails
    the job, leaves no example, and is raised again.
    """
    # Claim the job in one UPDATE, so two deliveries of the same task cannot both run it.
    if not ImportJob.claim(job.pk, error="", progress=0.0):
        job.refresh_from_db()
        return job
    job.status, job.error, job.progress = ImportJob.Status.RUNNING, "", 0.0
    tally = _Tally(skip=bool((job.options or {}).get("skip_bad_rows")))
    try:
        with working_copy(job.path) as path:
            failure = _run(job, path, tally, progress)
    except Exception as exc:
        tally.rolled_back()
        _finish(
            job,
            tally,
            _("The import stopped on an unexpected error, and nothing was imported: %(error)s")
            % {"error": f"{type(exc).__name__}: {exc}"},
        )
        raise
    _finish(job, tally, failure)
    return job


def _run(job: ImportJob, path: Path, tally: _Tally, progress: Progress | None) -> str | None:
    """Read `path` (the job's file on this machine) and write; the one-line reason when the job
    fails, else None."""
    limit = settings.SHIKOMI_MAX_UPLOAD_BYTES
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    if zipfile.is_zipfile(path):
        # What the zip unpacks to counts, so a small zip of a huge dataset is refused too.
        with zipfile.ZipFile(path) as archive:
            size = max(size, sum(info.file_size for info in archive.infolist()))
    if size > limit:
        message = _file_too_large_message(size, limit)
        tally.error(RowError(0, "file_too_large", "file", message))
        return _("Nothing was imported: %(reason)s.") % {"reason": message}

    project = job.project
    labels = dict(project.labels.values_list("name", "id"))
    options = job.options or {}
    read_options = ReadOptions(
        encoding=options.get("encoding") or "auto",
        mapping=options.get("mapping"),
        delimiter=options.get("delimiter"),
        split=options.get("split"),
        max_row_bytes=settings.SHIKOMI_MAX_ROW_BYTES,
        classification=project.kind == Project.Kind.CLASSIFICATION,
        max_messages=settings.SHIKOMI_MAX_MESSAGES,
        max_decoded_bytes=settings.SHIKOMI_MAX_DECODED_BYTES,
    )
    source = formats.read(path, job.format, read_options, labels)
    tally.encoding = source.encoding
    try:
        with transaction.atomic():
            _write(job, source, labels, tally, progress)
            if tally.rows_invalid and not tally.skip:
                raise _Rejected
    except _Rejected:
        tally.rolled_back()
    except DecodedTooLarge as exc:
        tally.rolled_back()
        message = _decoded_too_large_message(job.filename, exc)
        tally.error(RowError(0, "file_too_large", "file", message))
        return _("Nothing was imported: %(reason)s.") % {"reason": message}
    except FileRejected as exc:
        tally.rolled_back()
        tally.error(exc.error)
        return _("Nothing was imported: %(reason)s.") % {"reason": exc.error.message}

    if tally.rows_read == 0 and not tally.errors_total:
        tally.error(RowError(0, "empty_file", "file", _("the file has no examples")))
        return _("Nothing was imported: the file has no examples.")
    if tally.rows_invalid and (not tally.skip or not tally.rows_created + tally.rows_duplicate):
        first = tally.first_error
        assert first is not None
        return ngettext(
            "Nothing was imported: %(count)d row has errors. First, line %(line)d: %(message)s. %(advice)s",
            "Nothing was imported: %(count)d rows have errors. First, line %(line)d: %(message)s. %(advice)s",
            tally.rows_invalid,
        ) % {
            "count": tally.rows_invalid,
            "line": first.line,
            "message": f"{first.field}: {first.message}" if first.field else first.message,
            "advice": _("Fix the file and import it again.")
            if tally.skip
            else _('Fix the file, or import it with "skip bad rows" to import the other rows.'),
        }
    return None


def _write(
    job: ImportJob, source: formats.Source, labels: dict[str, int], tally: _Tally, progress: Progress | None
) -> None:
    inserter = _ExampleInserter(job)
    classification = job.project.kind == Project.Kind.CLASSIFICATION
    # After the first bad row in strict mode nothing more is written (it would be rolled
    # back), so the rows checked from then on are remembered here to find duplicates.
    writing = True
    unwritten: dict[int, int] = {}
    for batch in batched(source, BATCH_SIZE):
        tally.rows_read += len(batch)
        good: list[tuple[Row, str]] = []
        for row in batch:
            if row.errors:
                tally.bad_row(row)
                writing = writing and tally.skip
            else:
                good.append((row, content_hash(row.messages, row.tools)))
        seen, unlabeled = _first_of(job, [h for _, h in good], classification)
        new: list[tuple[Row, str, int | None]] = []
        relabel = _Relabel(new, unlabeled, labels) if classification and writing else None
        for row, digest in good:
            first = seen.get(digest)
            key = int(digest[:16], 16)
            if first is None and key in unwritten:
                first = f"line {unwritten[key]}"
            if first is not None:
                tally.duplicate(row.line, first, relabel.apply(row, digest) if relabel else None)
                continue
            seen[digest] = f"line {row.line}"
            if writing:
                if relabel:
                    relabel.pending[digest] = len(new)
                new.append((row, digest, labels.get(row.label) if row.label else None))
            else:
                unwritten[key] = row.line
        if new:
            inserter.insert(new)
            tally.rows_created += len(new)
        if writing:
            tally.pairs_created += _pairs_write(job, [(r, d) for r, d in good if isinstance(r, PreferenceRow)])
        if relabel:
            relabel.write(job)
        if progress is not None:
            progress(source.progress(), tally.rows_read)


def _pairs_write(job: ImportJob, rows: list[tuple[PreferenceRow, str]]) -> int:
    """The preference pairs of a preference file's rows, each linked to its example: the one
    this import wrote, or the one already in the project that the row duplicates (files often
    pair one chosen answer with several rejected ones)."""
    if not rows:
        return 0
    examples: dict[str, int] = {}
    found = Example.objects.filter(project_id=job.project_id, content_hash__in={d for _r, d in rows}).order_by()
    for digest, pk in found.values_list("content_hash", "pk"):
        examples[digest] = min(pk, examples.get(digest, pk))
    pairs = []
    for row, digest in rows:
        prompt, chosen, rejected = row.pair
        pairs.append(
            PreferencePair(
                project_id=job.project_id,
                example_id=examples.get(digest),
                prompt=prompt,
                chosen=chosen,
                rejected=rejected,
                tools=row.tools or [],
                origin=PreferencePair.Origin.IMPORT,
                created_by_id=job.created_by_id,
            )
        )
    PreferencePair.objects.bulk_create(pairs, batch_size=500)
    return len(pairs)


class _Relabel:
    """A labeled row that duplicates an unlabeled example of a classification project gives
    that example its label (with a revision, as a person's label would), instead of being
    skipped with the label lost. ``unlabeled``: content hash -> the example in the project;
    ``pending``: content hash -> the index in ``new`` of a row of this batch not yet written."""

    def __init__(self, new: list[tuple[Row, str, int | None]], unlabeled: dict[str, int], labels: dict[str, int]):
        self.new, self.unlabeled, self.labels = new, unlabeled, labels
        self.pending: dict[str, int] = {}
        self.examples: dict[str, list[int]] = {}  # label -> examples to give it

    def apply(self, row: Row, digest: str) -> str | None:
        """The label applied for this duplicate row, or None."""
        if not row.label:
            return None
        if digest in self.pending:
            index = self.pending.pop(digest)
            earlier, _digest, label_id = self.new[index]
            if label_id is not None:
                return None
            self.new[index] = (earlier, digest, self.labels[row.label])
            return row.label
        pk = self.unlabeled.pop(digest, None)
        if pk is None:
            return None
        self.examples.setdefault(row.label, []).append(pk)
        return row.label

    def write(self, job: ImportJob) -> None:
        for label, ids in self.examples.items():
            example_bulk_update(project=job.project, user=job.created_by, changes={"label": label}, ids=ids)


_STATUSES = frozenset(Example.Status.values)


class _ExampleInserter:
    """INSERTs of imported examples with one prepared statement per batch.

    bulk_create spends most of an import compiling SQL for every field of every row; the
    values here are prepared the way Django prepares them (get_db_prep_save, the
    backend's JSON adapter), so what is stored is the same. Fields that are not set here
    take their model default, so a field added to Example later is filled in too.
    """

    PER_ROW = ("messages", "tools", "label_id", "split", "metadata", "content_hash", "source_line", "search_text")

    def __init__(self, job: ImportJob) -> None:
        self.fields = [f for f in Example._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in self.fields)
        marks = ", ".join(["%s"] * len(self.fields))
        self.sql = f"INSERT INTO {quote(Example._meta.db_table)} ({columns}) VALUES ({marks})"
        self.fixed = {
            "project_id": job.project_id,
            "source": Example.Source.IMPORTED,
            "status": Example.Status.NEEDS_REVIEW,
            "import_job_id": job.pk,
            "created_by_id": job.created_by_id,
        }
        self.slots = {f.attname: i for i, f in enumerate(self.fields)}
        self.json = {name: Example._meta.get_field(name) for name in ("messages", "metadata", "tools")}

    def _template(self) -> list[Any]:
        now = timezone.now()
        values = []
        for field in self.fields:
            if field.attname in self.fixed:
                value = self.fixed[field.attname]
            elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value = now
            elif field.attname in self.PER_ROW:
                values.append(None)
                continue
            else:
                value = field.get_default()
            values.append(field.get_db_prep_save(value, connection))
        return values

    def insert(self, rows: list[tuple[Row, str, int | None]]) -> None:
        template = self._template()
        slot = self.slots
        messages_at, metadata_at, label_at = slot["messages"], slot["metadata"], slot["label_id"]
        split_at, hash_at, line_at = slot["split"], slot["content_hash"], slot["source_line"]
        search_at, tools_at, status_at = slot["search_text"], slot["tools"], slot["status"]
        adapt = connection.ops.adapt_json_value
        messages_encoder = self.json["messages"].encoder  # type: ignore[attr-defined]
        metadata_encoder = self.json["metadata"].encoder  # type: ignore[attr-defined]
        tools_encoder = self.json["tools"].encoder  # type: ignore[attr-defined]
        params = []
        # Rows of a file that repeat one tool list share one list object (formats.rows.ReadMemo):
        # it is written as JSON once, not once per row.
        last_tools: Any = None
        last_tools_value: Any = None
        for row, digest, label_id in rows:
            values = template.copy()
            values[messages_at] = adapt(row.messages, messages_encoder)
            values[metadata_at] = adapt(row.metadata, metadata_encoder)
            tools = row.tools or []
            if tools is not last_tools:
                last_tools, last_tools_value = tools, adapt(tools, tools_encoder)
            values[tools_at] = last_tools_value
            values[label_at] = label_id
            values[split_at] = row.split
            if row.status in _STATUSES:  # a Shikomi export's own status comes back as it was
                values[status_at] = row.status
            values[hash_at] = digest
            values[line_at] = row.line
            values[search_at] = search_text(row.messages)
            params.append(values)
        with connection.cursor() as cursor:
            cursor.executemany(self.sql, params)


def _first_of(job: ImportJob, digests: list[str], unlabeled: bool = False) -> tuple[dict[str, str], dict[str, int]]:
    """Where each content hash is already in the project: "example N", or "line N" of
    this file for rows written earlier in this run; and, when ``unlabeled`` is asked for,
    the first example of each hash when it has no label."""
    if not digests:
        return {}, {}
    first: dict[str, tuple[int, int | None, int | None, int | None]] = {}
    # No ORDER BY: with one, SQLite walks every example of the project in id order
    # instead of looking each hash up in the (project, content_hash) index.
    rows = (
        Example.objects.filter(project_id=job.project_id, content_hash__in=set(digests))
        .order_by()
        .values_list("content_hash", "pk", "import_job_id", "source_line", "label_id")
    )
    for digest, pk, job_id, line, label_id in rows:
        if digest not in first or pk < first[digest][0]:
            first[digest] = (pk, job_id, line, label_id)
    where = {
        digest: f"line {line}" if job_id == job.pk else f"example {pk}"
        for digest, (pk, job_id, line, _label) in first.items()
    }
    bare = {digest: pk for digest, (pk, *_rest, label_id) in first.items() if label_id is None} if unlabeled else {}
    return where, bare


FINISH_FIELDS = (
    *("status", "error", "rows_read", "rows_created", "rows_invalid", "rows_duplicate"),
    *("report", "progress", "finished_at"),
)


def _finish(job: ImportJob, tally: _Tally, failure: str | None) -> None:
    job.status = ImportJob.Status.FAILED if failure else ImportJob.Status.SUCCEEDED
    job.error = failure or ""
    job.rows_read = tally.rows_read
    job.rows_created = tally.rows_created
    job.rows_invalid = tally.rows_invalid
    job.rows_duplicate = tally.rows_duplicate
    job.report = tally.report()
    job.progress = 1.0
    job.finished_at = timezone.now()
    # Only what the import wrote: the worker and its heartbeat stay as the claim recorded them.
    job.save(update_fields=FINISH_FIELDS)
    if failure:
        upload_remove(job)


def upload_remove(job: ImportJob) -> None:
    """Delete the kept copy of a job's upload: a failed import's file is not kept. Only a file
    under UPLOAD_DIR is, or one in the artifacts storage: a folder imported where it is
    (manage.py import_examples) is the user's own."""
    if job.path.startswith(UPLOADS):  # a storage name (object storage)
        try:
            remove(job.path)
        except Exception:  # noqa: BLE001 - a file left behind is not worth failing the job's report
            log.exception("the upload of import %s could not be deleted", job.pk)
        return
    path = Path(job.path)
    try:
        resolved = path.resolve()
        if resolved.is_file() and resolved.is_relative_to(Path(settings.UPLOAD_DIR).resolve()):
            resolved.unlink()
    except OSError:
        pass  # already gone, or not ours to remove
