"""Sources: where a project's data lives, defined by its admins, and the import jobs that read them.

Nothing an admin types here reaches the network, the file system or the environment by itself:
a database address or an access key is the value of one of the operator's secrets, chosen by
name from the operator's list (curation/connections/services.py `secret_names`) and read only
when an import runs; a bucket endpoint and every web page go through the outbound guard when they
are reached. Every import is bounded: rows and time (SQL), objects and bytes (S3), pages and bytes
(web), files and bytes (documents).
"""

from __future__ import annotations

import re
import uuid
import zipfile
from pathlib import Path, PurePath
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _

from curation.connections.outbound import check_url
from curation.connections.services import secret_names
from curation.connections.services import secret_value as operator_secret
from curation.core.errors import ServiceError
from curation.core.services import InvalidExample
from curation.core.storage import is_remote, publish, remove
from curation.formats.rows import FileRejected, RowError
from curation.io.options import mapping_clean
from curation.models import ImportJob, Project, Source
from curation.sources import documents as document_files
from curation.sources import web
from curation.sources.s3 import JSON_FORMATS
from curation.sources.sql import QueryRefused, query_clean
from llm.outbound import OutboundRefused

DEFAULT_ROW_LIMIT = 100_000
DEFAULT_TIMEOUT = 60
MAX_TIMEOUT = 600
MAX_URLS = 1000
MAX_PAGE_BYTES = 20_000_000
MAX_DOCUMENTS = 200
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,254}$")
# The options each kind keeps (Source.options); the form and the API send them flat.
KIND_OPTIONS = {
    Source.Kind.SQL: ("query", "mapping", "row_limit", "timeout"),
    Source.Kind.S3: ("bucket", "prefix", "endpoint_url", "region", "json_format", "mapping"),
    Source.Kind.WEB: ("urls", "sitemap", "delay_seconds", "max_bytes", "max_pages"),
    Source.Kind.DOCUMENTS: (),
}
OPTION_NAMES = tuple(dict.fromkeys(name for names in KIND_OPTIONS.values() for name in names))


class SourceInvalid(ServiceError):
    """A source that cannot be saved or imported; `field` names the part to correct."""


def max_rows() -> int:
    return int(getattr(settings, "SHIKOMI_SOURCE_MAX_ROWS", 1_000_000))


def _number(field: str, value: Any, default: float, low: float, high: float, *, whole: bool = True) -> Any:
    if value in (None, ""):
        return default
    try:
        number = int(value) if whole else float(value)
    except (TypeError, ValueError):
        raise SourceInvalid(field, _("Expected a number.")) from None
    if not low <= number <= high:
        raise SourceInvalid(
            field, _("Expected a number from %(low)s to %(high)s.") % {"low": f"{low:g}", "high": f"{high:g}"}
        )
    return number


def _mapping(value: Any) -> dict[str, Any]:
    if value in (None, "", {}):
        return {}
    try:
        return mapping_clean(value, "csv")
    except InvalidExample as error:
        raise SourceInvalid("mapping", error.message) from None


def _sql_options(options: dict[str, Any]) -> dict[str, Any]:
    try:
        query = query_clean(options.get("query"))
    except QueryRefused as error:
        raise SourceInvalid("query", str(error)) from None
    return {
        "query": query,
        "mapping": _mapping(options.get("mapping")),
        "row_limit": _number("row_limit", options.get("row_limit"), min(DEFAULT_ROW_LIMIT, max_rows()), 1, max_rows()),
        "timeout": _number("timeout", options.get("timeout"), DEFAULT_TIMEOUT, 1, MAX_TIMEOUT),
    }


def _s3_options(options: dict[str, Any]) -> dict[str, Any]:
    bucket = str(options.get("bucket") or "").strip()
    if not _BUCKET.match(bucket):
        raise SourceInvalid("bucket", _("Give the bucket's name (lower-case letters, digits, dots and dashes)."))
    endpoint = str(options.get("endpoint_url") or "").strip()
    if endpoint:
        if not re.match(r"^https?://[^\s/]+", endpoint):
            raise SourceInvalid("endpoint_url", _("Give an http:// or https:// address, or leave it empty for AWS."))
        try:
            check_url(endpoint)
        except OutboundRefused as error:
            raise SourceInvalid("endpoint_url", str(error)) from None
    json_format = str(options.get("json_format") or "openai")
    if json_format not in JSON_FORMATS:
        raise SourceInvalid("json_format", _("Choose one of %(formats)s.") % {"formats": ", ".join(JSON_FORMATS)})
    return {
        "bucket": bucket,
        "prefix": str(options.get("prefix") or "").strip().lstrip("/")[:1000],
        "endpoint_url": endpoint,
        "region": str(options.get("region") or "").strip()[:50],
        "json_format": json_format,
        "mapping": _mapping(options.get("mapping")),
    }


def _web_options(options: dict[str, Any]) -> dict[str, Any]:
    urls = options.get("urls") or ""
    text = "\n".join(urls) if isinstance(urls, list) else str(urls)
    try:
        cleaned = web.url_list_clean(text, limit=MAX_URLS)
        sitemap = web.url_list_clean(str(options.get("sitemap") or ""), limit=1)
    except ValueError as error:
        field = "urls" if "sitemap" not in str(error) else "sitemap"
        raise SourceInvalid(field, str(error)) from None
    if not cleaned and not sitemap:
        raise SourceInvalid("urls", _("List the pages to fetch (one address a line), or give a sitemap's address."))
    return {
        "urls": cleaned,
        "sitemap": sitemap[0] if sitemap else "",
        "delay_seconds": _number("delay_seconds", options.get("delay_seconds"), 1.0, 0, 60, whole=False),
        "max_bytes": _number("max_bytes", options.get("max_bytes"), 2_000_000, 1000, MAX_PAGE_BYTES),
        "max_pages": _number("max_pages", options.get("max_pages"), 200, 1, MAX_URLS),
    }


def source_clean(
    *,
    project: Project,
    name: Any = "",
    kind: Any = "",
    secret: Any = "",
    licence: Any = "",
    description: Any = "",
    options: dict[str, Any] | None = None,
    instance: Source | None = None,
) -> dict[str, Any]:
    """The source's fields, checked once for every caller (page, API); SourceInvalid names the field."""
    name = " ".join(str(name or "").split())
    kind = str(kind or "").strip()
    secret = str(secret or "").strip()
    if not name:
        raise SourceInvalid("name", _("Give the source a name."))
    if len(name) > 100:
        raise SourceInvalid("name", _("A name has at most 100 characters."))
    taken = Source.objects.filter(project=project, name=name)
    if instance is not None:
        taken = taken.exclude(pk=instance.pk)
    if taken.exists():
        raise SourceInvalid("name", _("There is already a source named %(name)r.") % {"name": name})
    if kind not in Source.Kind.values:
        raise SourceInvalid("kind", _("Choose one of %(kinds)s.") % {"kinds": ", ".join(Source.Kind.values)})
    if instance is not None and kind != instance.kind:
        raise SourceInvalid("kind", _("A source keeps its kind; define a new source instead."))
    if kind in (Source.Kind.SQL, Source.Kind.S3):
        if not secret:
            raise SourceInvalid("secret", _("Choose the operator's secret this source reads with."))
        if secret not in secret_names():
            raise SourceInvalid(
                "secret",
                _("%(name)r is not one of the operator's secrets (environment variables starting with %(prefix)s).")
                % {"name": secret, "prefix": settings.SHIKOMI_SECRET_PREFIX},
            )
    else:
        secret = ""
    options = dict(options or {})
    if unknown := sorted(set(options) - set(OPTION_NAMES)):
        raise SourceInvalid(unknown[0], _("Unknown option."))
    clean = {
        Source.Kind.SQL: _sql_options,
        Source.Kind.S3: _s3_options,
        Source.Kind.WEB: _web_options,
        Source.Kind.DOCUMENTS: lambda options: {},
    }[Source.Kind(kind)](options)
    return {
        "name": name,
        "kind": kind,
        "secret": secret,
        "licence": str(licence or "").strip()[:200],
        "description": str(description or "").strip()[:10_000],
        "options": clean,
    }


def source_create(*, project: Project, user: Any, **fields: Any) -> Source:
    clean = source_clean(project=project, **fields)
    try:
        with transaction.atomic():
            return Source.objects.create(
                project=project, created_by=user if getattr(user, "is_authenticated", False) else None, **clean
            )
    except IntegrityError:
        raise SourceInvalid("name", _("There is already a source named %(name)r.") % {"name": clean["name"]}) from None


def source_update(*, source: Source, **fields: Any) -> Source:
    fields.setdefault("kind", source.kind)
    clean = source_clean(project=source.project, instance=source, **fields)
    for key, value in clean.items():
        setattr(source, key, value)
    source.save(update_fields=list(clean))
    return source


def source_delete(*, source: Source) -> None:
    """Delete the source and its documents; the examples it brought in stay (their import jobs
    no longer name it)."""
    source.delete()


def secret_value(source: Source) -> str:
    """The value of the source's secret, read now; FileRejected naming the secret (never its
    value) when it is not set or no longer in the operator's list."""
    value = operator_secret(source.secret)
    if value is None:
        raise FileRejected(
            RowError(
                0,
                "source_failed",
                "secret",
                _(
                    "the source reads with the secret %(secret)s, which is not set on this server (or not in the "
                    "operator's list); ask the operator to set it for the web server and the worker"
                )
                % {"secret": source.secret or "-"},
            )
        )
    return value


def _documents_keep(project: Project, files: list[Any]) -> str:
    """The uploaded documents in one zip (kept like an upload, where the worker finds it)."""
    if not files:
        raise SourceInvalid("files", _("Choose the files to import (.txt, .md, .html, .pdf)."))
    if len(files) > MAX_DOCUMENTS:
        raise SourceInvalid("files", _("Upload at most %(n)d files at a time.") % {"n": MAX_DOCUMENTS})
    limit = settings.SHIKOMI_MAX_UPLOAD_BYTES
    total = 0
    for upload in files:
        name = PurePath(upload.name).name
        if PurePath(name).suffix.lower() not in document_files.SUPPORTED:
            raise SourceInvalid(
                "files", _("%(file)s: not a supported type; use .txt, .md, .html or .pdf") % {"file": name}
            )
        total += upload.size
        if total > limit:
            raise SourceInvalid(
                "files", _("The files hold more than %(limit)d bytes (SHIKOMI_MAX_UPLOAD_BYTES).") % {"limit": limit}
            )
    folder = Path(settings.UPLOAD_DIR) / project.slug
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}-documents.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index, upload in enumerate(files):
            safe = get_valid_filename(PurePath(upload.name).name)[-150:] or f"document-{index}"
            with archive.open(f"{index:04d}/{safe}", "w") as out:
                for chunk in upload.chunks() if hasattr(upload, "chunks") else [upload.read()]:
                    out.write(chunk)
    kept = publish(path)
    if is_remote():
        path.unlink()
    return kept


@transaction.atomic
def source_import_create(
    *,
    source: Source,
    user: Any,
    skip_bad_rows: bool = False,
    update_changed: bool = False,
    files: list[Any] | None = None,
) -> ImportJob:
    """A pending import job of the source (curation/sources/tasks.py queues it); documents sources
    take the uploaded ``files``."""
    path = ""
    if source.kind == Source.Kind.DOCUMENTS:
        path = _documents_keep(source.project, list(files or []))
    elif files:
        raise SourceInvalid("files", _("Only a documents source takes uploaded files."))
    options: dict[str, Any] = {"skip_bad_rows": bool(skip_bad_rows), "update_changed": bool(update_changed)}
    if mapping := source.options.get("mapping"):
        options["mapping"] = mapping
    try:
        return ImportJob.objects.create(
            project=source.project,
            source=source,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            format=source.kind,
            filename=source.name[:255],
            path=path,
            options=options,
        )
    except BaseException:
        if path:
            remove(path)
        raise
