"""Back up the installation to one archive: every app's rows and every artifact.

`manage.py backup FILE` writes a tar archive (gzip-compressed when FILE ends in .gz or .tgz):

    database.jsonl     every row of every app, users included, in Django's JSON Lines
                       serialization; content types and permissions are referred to by natural
                       key, so the rows load into any database that `migrate` made
    artifacts/<name>   each file of the artifacts storage (the bucket, or the local artifacts folder
                       and the upload folder, whose files are named "uploads/...")
    manifest.json      what the archive holds: the migrations applied, the rows per model, each
                       artifact's size and SHA-256, and the local folders (rows of the local
                       setup name files by their path); written last, read first by `restore`

The rows are read in one transaction that sees a single moment of the database (REPEATABLE READ
on PostgreSQL, a read transaction on SQLite's write-ahead log), so a backup taken while the team
works holds no example without its label. The artifacts are copied after the rows: a file deleted
meanwhile (an older checkpoint, pruned) is left out. The archive is written under a temporary name beside
FILE and renamed at the end: a failure never leaves a half-written backup under the name asked for.

Left out: content types and permissions (`migrate` makes them) and sessions (a session key in
the archive would be a live sign-in for whoever reads it; people sign in again after a restore).
For a database too large for one file, docs/deployment.md describes pg_dump instead.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import posixpath
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.apps import apps
from django.conf import settings
from django.core import serializers
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.core.storage import UPLOADS

FORMAT = "shikomi-backup"
VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "database.jsonl"
ARTIFACTS = "artifacts/"
# Made again by `migrate` (content types, permissions), or not worth keeping (sign-ins).
# Rule texts are a cache the next rule run builds again (curation/rules/textstore.py).
LEFT_OUT = ("contenttypes.contenttype", "auth.permission", "sessions.session", "curation.ruletext")
CHUNK = 1024 * 1024


def backed_up_models() -> list[type[Model]]:
    """Every model whose rows a backup holds, in an order in which they can be loaded."""
    app_list = [(config, None) for config in apps.get_app_configs()]
    return [
        model
        for model in serializers.sort_dependencies(app_list, allow_cycles=True)
        if model._meta.label_lower not in LEFT_OUT
        and not model._meta.proxy
        and model._meta.managed
        and router.allow_migrate_model(DEFAULT_DB_ALIAS, model)
    ]


def applied_migrations() -> dict[str, list[str]]:
    """The migrations recorded in the database, per app."""
    applied: dict[str, list[str]] = {}
    for app, name in sorted(MigrationRecorder(connections[DEFAULT_DB_ALIAS]).applied_migrations()):
        applied.setdefault(app, []).append(name)
    return applied


def artifact_roots() -> list[tuple[str, Storage]]:
    """Where the artifacts are, as (prefix of their names, storage): the artifacts storage, and in
    the local setup the upload folder beside it, whose files are named "uploads/..." as in the
    bucket (curation/core/storage.py)."""
    storage = storages["artifacts"]
    if isinstance(storage, FileSystemStorage):
        return [(UPLOADS, FileSystemStorage(location=settings.UPLOAD_DIR)), ("", storage)]
    return [("", storage)]


def artifact_names(storage: Storage) -> Iterator[str]:
    """Every file of the storage, walked with listdir: a local folder and a bucket alike. Hidden
    names (a checkpoint being written, a download in progress) are not artifacts yet."""

    def walk(folder: str) -> Iterator[str]:
        try:
            folders, files = storage.listdir(folder)
        except FileNotFoundError:
            if folder:
                raise
            return  # a local storage that nothing was ever written to has no folder yet
        for name in sorted(files):
            if not name.startswith("."):
                yield posixpath.join(folder, name)
        for name in sorted(folders):
            if not name.startswith("."):
                yield from walk(posixpath.join(folder, name))

    return walk("")


def artifacts_held() -> Iterator[tuple[str, Storage, str]]:
    """Every artifact: its name in a backup, its storage, its name there."""
    for prefix, storage in artifact_roots():
        for name in artifact_names(storage):
            yield prefix + name, storage, name


def human_size(size: int) -> str:
    if size < 1000:
        return f"{size:,} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


@contextlib.contextmanager
def consistent_reads() -> Iterator[None]:
    """One transaction in which every query sees the database as it was when the first one ran."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.in_atomic_block:  # already inside one (a test's transaction): use it
        yield
        return
    connection.ensure_connection()
    mode = getattr(connection, "transaction_mode", None)
    if connection.vendor == "sqlite":
        # The settings begin transactions IMMEDIATE (they take the write lock at once); a
        # deferred one only reads, so the team's writes go on while the backup runs.
        connection.transaction_mode = "DEFERRED"
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
    finally:
        if connection.vendor == "sqlite":
            connection.transaction_mode = mode


class Command(BaseCommand):
    help = "Back up every app's rows and every artifact to one archive (restore it with `manage.py restore`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The archive to write: .tar, or .tar.gz / .tgz to compress it.")

    def handle(self, *args: Any, **options: Any) -> None:
        target = Path(options["file"])
        if not target.parent.is_dir():
            raise CommandError(_("No folder %(folder)s to write the backup in.") % {"folder": target.parent})
        # Compressed at gzip's usual level: weights and checkpoints hardly shrink, and 9 is slow.
        compress = {"compresslevel": 6} if target.name.endswith((".gz", ".tgz")) else {}
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.close(fd)
        try:
            with tarfile.open(temporary, "w:gz" if compress else "w", **compress) as archive:
                manifest = self._write(archive)
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        rows = manifest["database"]["rows"]
        artifacts = manifest["artifacts"]
        self.stdout.write(
            _(
                "Backed up to %(file)s: rows: %(rows)s (users: %(users)s, projects: %(projects)s, "
                "examples: %(examples)s); artifacts: %(files)s (%(size)s)."
            )
            % {
                "rows": f"{sum(rows.values()):,}",
                "users": f"{rows.get('auth.user', 0):,}",
                "projects": f"{rows.get('curation.project', 0):,}",
                "examples": f"{rows.get('curation.example', 0):,}",
                "files": f"{len(artifacts):,}",
                "size": human_size(sum(a["size"] for a in artifacts)),
                "file": target,
            }
        )

    def _write(self, archive: tarfile.TarFile) -> dict[str, Any]:
        with tempfile.TemporaryFile() as rows_file:
            with consistent_reads():
                rows = _dump_rows(rows_file)
                migrations = applied_migrations()
            _add(archive, DATABASE, rows_file)
        artifacts = [
            added
            for named, storage, name in artifacts_held()
            if (added := _add_artifact(archive, storage, name, named)) is not None
        ]
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": timezone.now().isoformat(),
            "database": {"vendor": connections[DEFAULT_DB_ALIAS].vendor, "migrations": migrations, "rows": rows},
            "artifacts": artifacts,
            # In the local setup rows keep files' absolute paths: restore maps these folders to its own.
            "folders": {"": str(settings.ARTIFACT_DIR), UPLOADS: str(settings.UPLOAD_DIR)},
        }
        _add(archive, MANIFEST, io.BytesIO(json.dumps(manifest, indent=1, ensure_ascii=False).encode()))
        return manifest


class ExactTimes(DjangoJSONEncoder):
    """Django's encoder keeps a moment to the millisecond; a backup keeps every microsecond, so the
    restored rows sort (history, recent examples) exactly as before."""

    def default(self, o: Any) -> Any:
        if isinstance(o, datetime.datetime):
            return o.isoformat()
        return super().default(o)


def _dump_rows(out: IO[bytes]) -> dict[str, int]:
    """Write every row as JSON Lines; the number of rows per model."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="\n", write_through=True)
    counts: dict[str, int] = {}
    for model in backed_up_models():
        counted = 0

        def rows(model: type[Model] = model) -> Iterator[Model]:
            nonlocal counted
            for row in model._base_manager.using(DEFAULT_DB_ALIAS).order_by(model._meta.pk.name).iterator(2000):
                counted += 1
                yield row

        serializers.serialize("jsonl", rows(), stream=text, use_natural_foreign_keys=True, cls=ExactTimes)
        counts[model._meta.label_lower] = counted
    text.detach()
    return counts


def _add(archive: tarfile.TarFile, name: str, source: IO[bytes]) -> int:
    """Add a file of the size it has now; its size."""
    size = source.seek(0, os.SEEK_END)
    source.seek(0)
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(time.time()), 0o600
    archive.addfile(info, source)
    return size


def _add_artifact(archive: tarfile.TarFile, storage: Storage, name: str, named: str) -> dict[str, Any] | None:
    """Copy one artifact into the archive; its name, size and SHA-256 for the manifest, or None
    when it was deleted since it was listed. Copied through a temporary file first, so that a
    file still growing cannot break the archive."""
    digest = hashlib.sha256()
    with tempfile.TemporaryFile() as copy:
        try:
            with storage.open(name, "rb") as source:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    copy.write(chunk)
        except FileNotFoundError:
            return None
        size = _add(archive, ARTIFACTS + named, copy)
    return {"name": named, "size": size, "sha256": digest.hexdigest()}
