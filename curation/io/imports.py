"""Writes to examples: every change goes through here and leaves a revision."""

from __future__ import annotations

import logging
import uuid
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from django.conf import settings
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from curation import formats
from curation.core.services import InvalidExample, content_hash
from curation.core.storage import UPLOADS, is_remote, publish, remove, working_copy
from curation.formats.preference import PreferenceRow
from curation.formats.rows import DecodedTooLarge, FileRejected, ReadOptions, Row, RowError, batched
from curation.io.inserter import ExampleInserter, Relabel, pairs_write
from curation.io.options import OPTION_NAMES, import_options_clean, mapping_clean
from curation.models import Example, ImportJob, Project

__all__ = [
    "OPTION_NAMES",
    "ImportPart",
    "RowKeeper",
    "example_import",
    "example_import_path",
    "import_job_create",
    "mapping_clean",
]

log = logging.getLogger(__name__)
BATCH_SIZE = 2000


REPORT_LIMIT = 1000  # errors, duplicates and skipped lines kept in a report; totals count all


COPY_CHUNK = 1024 * 1024


Progress = Callable[[float, int], None]
NewRow = tuple[Row, str, int | None]  # a row to write, its content hash, its label's id


@dataclass(frozen=True)
class ImportPart:
    """One piece of what a job imports: a file in ``format`` at ``path``, or rows read already
    (``read(options)``, a query's). ``name`` is the object it came from (an S3 key, "query"):
    each example keeps it (``Example.source_object``) and each error and duplicate names it;
    "" for an uploaded file."""

    name: str
    format: str
    path: Path | None = None
    read: Callable[[ReadOptions], formats.Source] | None = None
    mapped: bool = True  # whether the job's column mapping applies to it
    of: tuple[int, int] = (0, 1)  # its place among the parts, for the progress


class RowKeeper(Protocol):
    """Decides, before they are written, what happens to the new rows of a re-sync (a source
    imported again): ``keep`` returns the rows still to insert (it may update the examples some
    of them replace); ``report`` is added to the job's report; ``rolled_back`` forgets what
    was updated when the transaction is rolled back."""

    def keep(self, rows: list[NewRow], part: ImportPart) -> list[NewRow]: ...

    def report(self) -> dict[str, Any]: ...

    def rolled_back(self) -> None: ...


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
        self.part = ""  # the object being read, of a source's import
        self.first_part = ""
        self.already_present = 0  # duplicates of examples the project had before this import
        # After the first bad row in strict mode nothing more is written (it would be rolled
        # back), so the rows checked from then on are remembered here to find duplicates.
        self.writing = True
        self.unwritten: dict[int, str] = {}

    def at(self, line: int, part: str | None = None) -> str:
        """Where a row of this import is: "line N", or "OBJECT line N" in a source's import."""
        part = self.part if part is None else part
        return f"{part} line {line}" if part else f"line {line}"

    def error(self, error: RowError) -> None:
        self.errors_total += 1
        if self.first_error is None:
            self.first_error, self.first_part = error, self.part
        if len(self.errors) < REPORT_LIMIT:
            self.errors.append({"object": self.part, **error.as_dict()} if self.part else error.as_dict())

    def bad_row(self, row: Row) -> None:
        self.rows_invalid += 1
        for error in row.errors:
            self.error(error)
        if self.skip and len(self.skipped_lines) < REPORT_LIMIT:
            self.skipped_lines.append(row.line)

    def duplicate(self, line: int, of: str, label_applied: str | None = None) -> None:
        self.rows_duplicate += 1
        self.labels_applied += label_applied is not None
        self.already_present += of.startswith("example ")
        if len(self.duplicates) < REPORT_LIMIT:
            entry: dict[str, Any] = {"line": line, "duplicate_of": of}
            if self.part:
                entry["object"] = self.part
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
        if self.part:  # a source's import: how many of its rows the project had already
            report["already_present"] = self.already_present
        if self.skip:
            report["skipped_lines"] = self.skipped_lines
        if self.pairs_created:
            report["preference_pairs"] = self.pairs_created
        return report


def example_import(
    *,
    job: ImportJob,
    progress: Progress | None = None,
    parts: Iterable[ImportPart] | None = None,
    keeper: RowKeeper | None = None,
) -> ImportJob:
    """Run an import job: the job ends succeeded or failed, with its report filled in.

    ``progress(fraction, rows_read)`` is called after every batch, possibly inside the
    write transaction. A job no longer pending (it ran, or another worker runs it) is left
    as it is, so a retried task never imports twice. An unexpected error fails
    the job, leaves no example, and is raised again.

    A source's job (curation/sources/) reads ``parts`` instead of the job's file, all in the one
    transaction: a part may raise FileRejected (an object that cannot be read), which fails the
    whole job. ``keeper`` decides what a re-sync does with rows that changed.
    """
    # Claim the job in one UPDATE, so two deliveries of the same task cannot both run it.
    if not ImportJob.claim(job.pk, error="", progress=0.0):
        job.refresh_from_db()
        return job
    job.status, job.error, job.progress = ImportJob.Status.RUNNING, "", 0.0
    tally = _Tally(skip=bool((job.options or {}).get("skip_bad_rows")))
    try:
        if parts is None:
            with working_copy(job.path) as path:
                failure = _run(job, [ImportPart("", job.format, path)], tally, progress, None)
        else:
            failure = _run(job, parts, tally, progress, keeper)
    except Exception as exc:
        _rolled_back(tally, keeper)
        _finish(
            job,
            tally,
            _("The import stopped on an unexpected error, and nothing was imported: %(error)s")
            % {"error": f"{type(exc).__name__}: {exc}"},
        )
        raise
    _finish(job, tally, failure, keeper)
    return job


def _rolled_back(tally: _Tally, keeper: RowKeeper | None) -> None:
    tally.rolled_back()
    if keeper is not None:
        keeper.rolled_back()


def _check_size(path: Path) -> None:
    """FileRejected when the file (or what a zip of it unpacks to) is over the upload limit."""
    limit = settings.SHIKOMI_MAX_UPLOAD_BYTES
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    if zipfile.is_zipfile(path):
        # What the zip unpacks to counts, so a small zip of a huge dataset is refused too.
        with zipfile.ZipFile(path) as archive:
            size = max(size, sum(info.file_size for info in archive.infolist()))
    if size > limit:
        raise FileRejected(RowError(0, "file_too_large", "file", _file_too_large_message(size, limit)))


def _read(part: ImportPart, read_options: ReadOptions, labels: dict[str, int]) -> formats.Source:
    if part.read is not None:
        return formats.CheckedSource(part.read(read_options), labels, read_options)
    assert part.path is not None
    _check_size(part.path)
    return formats.read(part.path, part.format, read_options, labels)


def _run(
    job: ImportJob, parts: Iterable[ImportPart], tally: _Tally, progress: Progress | None, keeper: RowKeeper | None
) -> str | None:
    """Read each part (the job's file on this machine, or a source's objects) and write; the
    one-line reason when the job fails, else None."""
    project = job.project
    labels = dict(project.labels.values_list("name", "id"))
    options = job.options or {}
    try:
        with transaction.atomic():
            for part in parts:
                read_options = ReadOptions(
                    encoding=options.get("encoding") or "auto",
                    mapping=options.get("mapping") if part.mapped else None,
                    delimiter=options.get("delimiter"),
                    split=options.get("split"),
                    max_row_bytes=settings.SHIKOMI_MAX_ROW_BYTES,
                    classification=project.kind == Project.Kind.CLASSIFICATION,
                    max_messages=settings.SHIKOMI_MAX_MESSAGES,
                    max_decoded_bytes=settings.SHIKOMI_MAX_DECODED_BYTES,
                )
                tally.part = part.name
                source = _read(part, read_options, labels)
                tally.encoding = tally.encoding or source.encoding
                _write(job, source, labels, tally, progress, part, keeper)
            if tally.rows_invalid and not tally.skip:
                raise _Rejected
    except _Rejected:
        _rolled_back(tally, keeper)
    except DecodedTooLarge as exc:
        _rolled_back(tally, keeper)
        message = _decoded_too_large_message(tally.part or job.filename, exc)
        tally.error(RowError(0, "file_too_large", "file", message))
        return _("Nothing was imported: %(reason)s.") % {"reason": message}
    except FileRejected as exc:
        _rolled_back(tally, keeper)
        tally.error(exc.error)
        reason = exc.error.message
        if tally.part:
            reason = _("%(object)s, line %(line)d: %(message)s") % {
                "object": tally.part,
                "line": exc.error.line,
                "message": reason,
            }
        return _("Nothing was imported: %(reason)s.") % {"reason": reason}
    return _outcome(tally, source=keeper is not None or bool(tally.part))


def _outcome(tally: _Tally, *, source: bool) -> str | None:
    if tally.rows_read == 0 and not tally.errors_total:
        if source:
            tally.error(RowError(0, "empty_file", "file", _("the source has no rows")))
            return _("Nothing was imported: the source has no rows.")
        tally.error(RowError(0, "empty_file", "file", _("the file has no examples")))
        return _("Nothing was imported: the file has no examples.")
    if tally.rows_invalid and (not tally.skip or not tally.rows_created + tally.rows_duplicate):
        first = tally.first_error
        assert first is not None
        values = {
            "count": tally.rows_invalid,
            "line": first.line,
            "object": tally.first_part,
            "message": f"{first.field}: {first.message}" if first.field else first.message,
            "advice": _("Fix the file and import it again.")
            if tally.skip
            else _('Fix the file, or import it with "skip bad rows" to import the other rows.'),
        }
        if tally.first_part:
            return (
                ngettext(
                    "Nothing was imported: %(count)d row has errors. First, %(object)s line %(line)d: %(message)s. "
                    "%(advice)s",
                    "Nothing was imported: %(count)d rows have errors. First, %(object)s line %(line)d: %(message)s. "
                    "%(advice)s",
                    tally.rows_invalid,
                )
                % values
            )
        return (
            ngettext(
                "Nothing was imported: %(count)d row has errors. First, line %(line)d: %(message)s. %(advice)s",
                "Nothing was imported: %(count)d rows have errors. First, line %(line)d: %(message)s. %(advice)s",
                tally.rows_invalid,
            )
            % values
        )
    return None


def _write(
    job: ImportJob,
    source: formats.Source,
    labels: dict[str, int],
    tally: _Tally,
    progress: Progress | None,
    part: ImportPart | None = None,
    keeper: RowKeeper | None = None,
) -> None:
    inserter = ExampleInserter(job)
    classification = job.project.kind == Project.Kind.CLASSIFICATION
    name = part.name[:1000] if part else ""
    index, count = part.of if part else (0, 1)
    unwritten = tally.unwritten
    for batch in batched(source, BATCH_SIZE):
        tally.rows_read += len(batch)
        good: list[tuple[Row, str]] = []
        for row in batch:
            if row.errors:
                tally.bad_row(row)
                tally.writing = tally.writing and tally.skip
            else:
                good.append((row, content_hash(row.messages, row.tools)))
        writing = tally.writing
        seen, unlabeled = _first_of(job, [h for _, h in good], classification, tally)
        new: list[NewRow] = []
        relabel = Relabel(new, unlabeled, labels) if classification and writing else None
        for row, digest in good:
            first = seen.get(digest)
            key = int(digest[:16], 16)
            if first is None and key in unwritten:
                first = unwritten[key]
            if first is not None:
                tally.duplicate(row.line, first, relabel.apply(row, digest) if relabel else None)
                continue
            seen[digest] = tally.at(row.line)
            if writing:
                if relabel:
                    relabel.pending[digest] = len(new)
                new.append((row, digest, labels.get(row.label) if row.label else None))
            else:
                unwritten[key] = tally.at(row.line)
        if new and keeper is not None and part is not None:
            new = keeper.keep(new, part)
        if new:
            inserter.insert(new, name)
            tally.rows_created += len(new)
        if writing:
            tally.pairs_created += pairs_write(job, [(r, d) for r, d in good if isinstance(r, PreferenceRow)])
        if relabel:
            relabel.write(job)
        if progress is not None:
            progress((index + source.progress()) / max(count, 1), tally.rows_read)


def _first_of(
    job: ImportJob, digests: list[str], unlabeled: bool = False, tally: _Tally | None = None
) -> tuple[dict[str, str], dict[str, int]]:
    """Where each content hash is already in the project: "example N", or "line N" of
    this file for rows written earlier in this run; and, when ``unlabeled`` is asked for,
    the first example of each hash when it has no label."""
    if not digests:
        return {}, {}
    first: dict[str, tuple[int, int | None, int | None, int | None, str]] = {}
    # No ORDER BY: with one, SQLite walks every example of the project in id order
    # instead of looking each hash up in the (project, content_hash) index.
    rows = (
        Example.objects.filter(project_id=job.project_id, content_hash__in=set(digests))
        .order_by()
        .values_list("content_hash", "pk", "import_job_id", "source_line", "label_id", "source_object")
    )
    for digest, pk, job_id, line, label_id, part in rows:
        if digest not in first or pk < first[digest][0]:
            first[digest] = (pk, job_id, line, label_id, part)
    at = tally.at if tally is not None else (lambda line, part: f"line {line}")
    where = {
        digest: at(line, part) if job_id == job.pk else f"example {pk}"
        for digest, (pk, job_id, line, _label, part) in first.items()
    }
    bare = {digest: pk for digest, (pk, _job, _line, label_id, _part) in first.items() if label_id is None}
    bare = bare if unlabeled else {}
    return where, bare


FINISH_FIELDS = (
    *("status", "error", "rows_read", "rows_created", "rows_invalid", "rows_duplicate"),
    *("report", "progress", "finished_at"),
)


def _finish(job: ImportJob, tally: _Tally, failure: str | None, keeper: RowKeeper | None = None) -> None:
    job.status = ImportJob.Status.FAILED if failure else ImportJob.Status.SUCCEEDED
    job.error = failure or ""
    job.rows_read = tally.rows_read
    job.rows_created = tally.rows_created
    job.rows_invalid = tally.rows_invalid
    job.rows_duplicate = tally.rows_duplicate
    job.report = tally.report() | (keeper.report() if keeper is not None else {})
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
