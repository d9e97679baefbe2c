"""Restore a backup made by `manage.py backup` into an empty installation.

It refuses, before it writes anything:
- a file that is not such a backup, or a damaged one (a file missing, or not of the size and
  SHA-256 the manifest gives);
- a database whose migrations are not those of the backup (restore with the version of Shikomi
  that made it, then upgrade with `migrate`);
- a database that already holds users or projects: restore into a new database that
  `manage.py migrate` made, never over a team's data;
- an artifacts storage that already holds files, unless --force (the archive's files then
  replace those of the same name; others stay).

Then, in one transaction, it replaces what `migrate` put in the new database (the embedded-model
connection) with the backup's rows (Django's loaddata: foreign keys checked at the end,
PostgreSQL's sequences moved past the restored ids), checks the rows per model against the
manifest, writes the artifacts, and commits only once all of it is written: if an artifact
cannot be written, the database is empty again (the artifacts written so far stay; run again
with --force).

Rows of the local setup name files by their absolute path (curation/core/storage.py). When this
installation keeps them elsewhere (another data folder, or a bucket), the text fields that name
a file of the backed-up artifacts or upload folder are changed to name it here, so a backup of
`make run` restores into a team's PostgreSQL and bucket.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import posixpath
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models import CharField
from django.utils.translation import gettext as _

from curation.core.background import work_kinds
from curation.core.storage import local_path, reference
from curation.management.commands.backup import (
    ARTIFACTS,
    CHUNK,
    DATABASE,
    FORMAT,
    MANIFEST,
    VERSION,
    applied_migrations,
    artifact_roots,
    artifacts_held,
    backed_up_models,
    human_size,
)
from curation.models import Project

SHOWN = 5  # names listed in an error before "and N more"


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    more = len(names) - SHOWN
    return shown + (_(" and %(count)d more") % {"count": more} if more > 0 else "")


class Command(BaseCommand):
    help = "Restore a backup made by `manage.py backup` into an empty database (after `migrate`) and artifacts storage."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The archive `manage.py backup` wrote.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Write the artifacts even though the artifacts storage already holds files "
            "(files of the same name are replaced). The database must be empty all the same.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(_("No file %(file)s.") % {"file": path})
        try:
            archive = tarfile.open(path, "r:*")
        except (tarfile.TarError, OSError) as exc:
            raise CommandError(
                _("%(file)s is not a backup made by `manage.py backup` (%(error)s).") % {"file": path, "error": exc}
            ) from exc
        with archive:
            manifest = _manifest(archive, path)
            _check_migrations(manifest)
            _check_database_empty()
            _check_storage_empty(force=options["force"])
            _verify(archive, manifest, path)
            with tempfile.TemporaryDirectory() as folder, transaction.atomic():
                cleared = _clear_what_migrate_made()
                moved = _load_rows(archive, Path(folder), manifest)
                _check_rows(manifest)
                _write_artifacts(archive, manifest)
        self._report(manifest, path, cleared, moved)

    def _report(self, manifest: dict[str, Any], path: Path, cleared: dict[str, int], moved: int) -> None:
        rows = manifest["database"]["rows"]
        artifacts = manifest["artifacts"]
        self.stdout.write(
            _(
                "Restored %(file)s (backed up at %(when)s): rows: %(rows)s (users: %(users)s, projects: "
                "%(projects)s, examples: %(examples)s, revisions: %(revisions)s, training runs: %(runs)s); "
                "artifacts: %(files)s (%(size)s)."
            )
            % {
                "file": path,
                "when": manifest["created_at"],
                "rows": f"{sum(rows.values()):,}",
                "users": f"{rows.get('auth.user', 0):,}",
                "projects": f"{rows.get('curation.project', 0):,}",
                "examples": f"{rows.get('curation.example', 0):,}",
                "revisions": f"{rows.get('curation.examplerevision', 0):,}",
                "runs": f"{rows.get('training.trainingrun', 0):,}",
                "files": f"{len(artifacts):,}",
                "size": human_size(sum(a["size"] for a in artifacts)),
            }
        )
        if cleared:
            self.stdout.write(
                _("Replaced what the new database held: %(rows)s.")
                % {"rows": ", ".join(f"{label} ({count:,})" for label, count in sorted(cleared.items()))}
            )
        if moved:
            self.stdout.write(
                _("References to files moved to this installation's artifacts and upload folders: %(count)d.")
                % {"count": moved}
            )
        running = sum(model._default_manager.filter(status=model.RUNNING).count() for model in work_kinds())
        if running:
            self.stdout.write(
                _(
                    "Work running when the backup was taken: %(count)d. A consumer marks it interrupted once its "
                    "lease (SHIKOMI_LEASE_SECONDS) has run out, and queues a training run again from its last "
                    "checkpoint."
                )
                % {"count": running}
            )
        waiting = sum(model._default_manager.filter(status=model.WAITING).count() for model in work_kinds())
        if waiting:
            self.stdout.write(
                _(
                    "Work waiting in a queue when the backup was taken: %(count)d. The queue is not part of the "
                    "backup, so it will not start: start that work again."
                )
                % {"count": waiting}
            )


def _manifest(archive: tarfile.TarFile, path: Path) -> dict[str, Any]:
    try:
        member = archive.getmember(MANIFEST)
        reader = archive.extractfile(member)
        manifest = json.load(reader) if reader is not None else None
    except (KeyError, tarfile.TarError, OSError, ValueError) as exc:
        raise CommandError(
            _("%(file)s is not a backup made by `manage.py backup`: %(error)s") % {"file": path, "error": exc}
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CommandError(_("%(file)s is not a backup made by `manage.py backup`.") % {"file": path})
    if manifest.get("version") != VERSION:
        raise CommandError(
            _("%(file)s is a backup of format version %(version)s; this version of Shikomi restores version %(ours)s.")
            % {"file": path, "version": manifest.get("version"), "ours": VERSION}
        )
    for artifact in manifest["artifacts"]:
        _check_name(artifact["name"], path)
    return manifest


def _check_name(name: Any, path: Path) -> None:
    """An artifact's name is relative and stays inside the storage."""
    parts = name.split("/") if isinstance(name, str) else [""]
    if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
        raise CommandError(_("%(file)s names an artifact %(name)r outside the storage.") % {"file": path, "name": name})


def _check_migrations(manifest: dict[str, Any]) -> None:
    backup = {(app, name) for app, names in manifest["database"]["migrations"].items() for name in names}
    here = {(app, name) for app, names in applied_migrations().items() for name in names}
    if backup == here:
        return
    if not here:
        raise CommandError(_("This database has no tables yet: run `manage.py migrate` first, then restore."))
    only_backup = sorted(f"{app}.{name}" for app, name in backup - here)
    only_here = sorted(f"{app}.{name}" for app, name in here - backup)
    raise CommandError(
        _(
            "The backup was made by another version of Shikomi: migrations only in the backup: %(backup)s; "
            "only in this database: %(here)s. Restore with the version that made the backup (into a database "
            "it migrated), then upgrade with `manage.py migrate`."
        )
        % {"backup": _listed(only_backup) or "-", "here": _listed(only_here) or "-"}
    )


def _check_database_empty() -> None:
    held = [
        f"{model._meta.label_lower} ({count:,})"
        for model in (get_user_model(), Project)
        if (count := model._base_manager.using(DEFAULT_DB_ALIAS).count())
    ]
    if held:
        raise CommandError(
            _(
                "The database already holds data: %(rows)s. Restore only into an empty database: create a new "
                "one, run `manage.py migrate`, then restore."
            )
            % {"rows": _listed(held)}
        )


def _clear_what_migrate_made() -> dict[str, int]:
    """A database without users or projects holds only what `migrate` made (the embedded-model
    connection) or what nobody needs (sign-in attempts): the backup's rows take their place."""
    cleared: dict[str, int] = {}
    for model in reversed(backed_up_models()):
        _total, per_model = model._base_manager.using(DEFAULT_DB_ALIAS).all().delete()
        for label, count in per_model.items():
            if count:
                cleared[label.lower()] = cleared.get(label.lower(), 0) + count
    return cleared


def _check_storage_empty(*, force: bool) -> None:
    if force:
        return
    held = [named for named, _storage, _name in itertools.islice(artifacts_held(), SHOWN + 1)]
    if held:
        raise CommandError(
            _(
                "The artifacts storage already holds files (%(names)s). Restore into an empty folder or bucket "
                "(prefix), or pass --force to write the backup's files over it."
            )
            % {"names": ", ".join(held[:SHOWN]) + (", …" if len(held) > SHOWN else "")}
        )


def _verify(archive: tarfile.TarFile, manifest: dict[str, Any], path: Path) -> None:
    """Every file the manifest names is in the archive, whole: read once, in the archive's order."""
    expected = {ARTIFACTS + a["name"]: a for a in manifest["artifacts"]}
    found = set()
    for member in archive:
        if member.name == DATABASE and member.isfile():
            found.add(DATABASE)
        artifact = expected.get(member.name)
        if artifact is None or not member.isfile():
            continue
        digest = hashlib.sha256()
        reader = archive.extractfile(member)
        assert reader is not None
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
        if member.size != artifact["size"] or digest.hexdigest() != artifact["sha256"]:
            raise CommandError(
                _("%(file)s is damaged: the artifact %(name)s is not what was backed up. Nothing was restored.")
                % {"file": path, "name": artifact["name"]}
            )
        found.add(member.name)
    missing = sorted({DATABASE, *expected} - found)
    if missing:
        raise CommandError(
            _("%(file)s is damaged: %(names)s missing. Nothing was restored.")
            % {"file": path, "names": _listed(missing)}
        )


def _load_rows(archive: tarfile.TarFile, folder: Path, manifest: dict[str, Any]) -> int:
    """Load the rows; how many references to files were moved to this installation's folders."""
    reader = archive.extractfile(DATABASE)
    assert reader is not None
    rows = folder / DATABASE
    moved = _moved_folders(manifest)
    fields: dict[str, set[str]] = {}
    rewritten = 0
    with rows.open("w", encoding="utf-8") as out:
        for line in io.TextIOWrapper(reader, encoding="utf-8"):
            if moved and any(old in line for old, _prefix in moved):
                line, changed = _rewritten(line, moved, fields)
                rewritten += changed
            out.write(line)
    try:
        call_command("loaddata", str(rows), verbosity=0)
    except Exception as exc:  # whatever the database or the deserializer refused: say so plainly
        raise CommandError(
            _("The rows could not be loaded (%(error)s). Nothing was restored.") % {"error": exc}
        ) from exc
    return rewritten


def _moved_folders(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """In the local setup rows keep the absolute paths of files (curation/core/storage.py): each
    folder of the backed-up installation whose files have another reference here, as (its path
    with a final "/", the prefix of its files' names); the longest first."""
    moved = []
    for prefix, folder in manifest.get("folders", {}).items():
        old = folder.rstrip("/") + "/"
        if reference(local_path(prefix + "file")) != old + "file":
            moved.append((old, prefix))
    return sorted(moved, key=lambda pair: -len(pair[0]))


def _rewritten(line: str, moved: list[tuple[str, str]], fields: dict[str, set[str]]) -> tuple[str, int]:
    """The row with each of its text fields (never an example's content, which is JSON) that names
    a file of a moved folder naming it where this installation keeps it."""
    row = json.loads(line)
    label = row["model"]
    if label not in fields:
        fields[label] = {f.name for f in apps.get_model(label)._meta.concrete_fields if isinstance(f, CharField)}
    changed = 0
    for field, value in row["fields"].items():
        if field not in fields[label] or not isinstance(value, str):
            continue
        for old, prefix in moved:
            if value.startswith(old):
                with contextlib.suppress(ValueError):  # a name that would leave its folder stays as it was
                    row["fields"][field] = reference(local_path(prefix + value[len(old) :]))
                    changed += 1
                break
    return (json.dumps(row, ensure_ascii=False) + "\n" if changed else line), changed


def _check_rows(manifest: dict[str, Any]) -> None:
    for label, expected in manifest["database"]["rows"].items():
        count = apps.get_model(label)._base_manager.using(DEFAULT_DB_ALIAS).count()
        if count != expected:
            raise CommandError(
                _("The backup holds %(expected)d rows of %(model)s, but %(count)d were loaded. Nothing was restored.")
                % {"expected": expected, "model": label, "count": count}
            )


def _write_artifacts(archive: tarfile.TarFile, manifest: dict[str, Any]) -> None:
    expected = {ARTIFACTS + a["name"] for a in manifest["artifacts"]}
    roots = artifact_roots()
    for member in archive:
        if member.name not in expected or not member.isfile():
            continue
        named = member.name.removeprefix(ARTIFACTS)
        prefix, storage = next((prefix, storage) for prefix, storage in roots if named.startswith(prefix))
        name = named.removeprefix(prefix)
        if storage.exists(name):  # only with --force; a local storage would pick another name
            storage.delete(name)
        content = File(archive.extractfile(member), name=posixpath.basename(name))
        content.size = member.size
        try:
            saved = storage.save(name, content)
        except Exception as exc:  # a full disk, a bucket that refuses: the transaction rolls back
            raise CommandError(
                _(
                    "The artifact %(name)s could not be written (%(error)s). Nothing was restored to the database; "
                    "the artifacts written so far stay: run again with --force."
                )
                % {"name": name, "error": exc}
            ) from exc
        if saved != name:
            raise CommandError(
                _("The artifacts storage saved %(name)s as %(saved)s. Nothing was restored to the database.")
                % {"name": name, "saved": saved}
            )
