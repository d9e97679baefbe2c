"""`manage.py backup` and `manage.py restore`: a backup restored into an empty database and an empty
artifacts storage gives back the same examples, revisions, labels, runs and artifact bytes; a
restore that would mix data, or a damaged backup, is refused before anything is written."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError

from curation.connections.services import embedded_connection
from curation.core.services import example_create, example_delete, example_update
from curation.core.storage import is_remote, local_path, reference
from curation.models import Connection, Example, ExampleRevision, ImportJob, Label, Membership, Project
from tests.conftest import PASSWORD, ROOT
from tests.s3 import PREFIX, Bucket, s3_artifacts, s3_server  # noqa: F401
from training.models import TrainingPoint, TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = [{"role": "user", "content": "Where is my parcel?"}, {"role": "assistant", "content": "On its way."}]
# Written into the artifacts storage directly (in the local setup: the artifacts folder, and the
# upload folder for "uploads/..."), as a run and an import leave them.
FILES = {
    "runs/1/output/adapter_model.safetensors": os.urandom(300_000),
    "runs/1/output/shikomi_run.json": b'{"base_model": "", "method": "lora"}',
    "runs/1/checkpoints/step-4/optimizer.pt": bytes(range(256)) * 40,
    "runs/1/tensorboard/events.out.tfevents.1700000000.worker": b"\x00\x01tensorboard",
    "uploads/support/tickets.jsonl": '{"messages": [{"role": "user", "content": "荷物"}]}\n'.encode(),
}


def use_local_folders(settings, data: Path) -> Path:
    """The data folder `data`, laid out as in the local setup: the artifacts storage is the
    artifacts folder, and uploads lie in their folder beside it (curation/core/storage.py)."""
    settings.ARTIFACT_DIR = data / "artifacts"
    settings.UPLOAD_DIR = data / "uploads"
    settings.STORAGES = settings.STORAGES | {
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(settings.ARTIFACT_DIR)},
        }
    }
    assert not is_remote()
    return data


@pytest.fixture
def folders(settings, tmp_path: Path) -> Path:
    """This test's own data folder, in the local setup."""
    return use_local_folders(settings, tmp_path / "data")


@pytest.fixture
def team(project: Project, users: dict[str, Any], folders: Path) -> None:
    build_team(project, users)


def build_team(project: Project, users: dict[str, Any]) -> None:
    """A project as a team leaves it: edited and deleted examples, a label, a finished run with
    its loss points, and the run's and an import's files in the artifacts storage."""
    admin, annotator = users["admin"], users["annotator"]
    Label.objects.create(project=project, name="returns", shortcut="3", retired=True)
    first = example_create(
        project=project,
        user=admin,
        messages=CHAT,
        label="shipping",
        status="approved",
        split="train",
        metadata={"k": 1},
    )
    example_update(
        example=first, user=admin, version=first.version, messages=[CHAT[0], {"role": "assistant", "content": "Today."}]
    )
    second = example_create(project=project, user=annotator, messages=CHAT, label="billing", split="validation")
    second = example_update(example=second, user=annotator, version=second.version, label="returns")
    example_update(example=second, user=admin, version=second.version, status="rejected", split="test")
    gone = example_create(project=project, user=admin, messages=CHAT)
    example_delete(example=gone, user=admin)
    ImportJob.objects.create(
        project=project,
        format="jsonl",
        filename="tickets.jsonl",
        path=refer("uploads/support/tickets.jsonl"),
        status=ImportJob.Status.SUCCEEDED,
        created_by=admin,
    )
    run = TrainingRun.objects.create(
        project=project,
        number=1,
        status=TrainingRun.Status.DONE,
        config={"epochs": 2, "learning_rate": 0.0002},
        snapshot={"train": [[first.pk, first.content_hash]]},
        train_count=1,
        output_dir=refer("runs/1/output"),
        checkpoint=refer("runs/1/checkpoints/step-4"),
        result={"train_loss": 1.25, "seconds": 3.5},
        step=4,
        total_steps=4,
        created_by=admin,
    )
    for step, loss in ((1, 2.5), (2, 2.0), (3, 1.5), (4, 1.25)):
        TrainingPoint.objects.create(run=run, step=step, train_loss=loss, learning_rate=0.0002)
    for name, data in FILES.items():
        if is_remote():
            assert storages["artifacts"].save(name, ContentFile(data)) == name
        else:
            local_path(name).parent.mkdir(parents=True, exist_ok=True)
            local_path(name).write_bytes(data)
    embedded_connection()  # made by `migrate` in every database


def refer(name: str) -> str:
    """What a row keeps for a file: its path in the local setup, its name in a bucket."""
    return reference(local_path(name))


def files_in(data: Path) -> dict[str, bytes]:
    """The files of the local setup's artifacts and upload folders, by storage name."""
    return {
        prefix + path.relative_to(data / folder).as_posix(): path.read_bytes()
        for prefix, folder in (("", "artifacts"), ("uploads/", "uploads"))
        for path in sorted((data / folder).rglob("*"))
        if path.is_file()
    }


EXAMPLE_FIELDS = """id project__slug messages label__name status split source metadata version content_hash
    search_text created_by__username created_at updated_at""".split()
REVISION_FIELDS = "id example_id user__username action version before after created_at".split()
RUN_FIELDS = """id project__slug number status config snapshot output_dir checkpoint result created_by__username
    created_at finished_at""".split()


def state(files: dict[str, bytes]) -> dict[str, Any]:
    """What people rely on after a restore: the database's rows, and the artifacts' files."""
    return {
        "users": list(User.objects.order_by("username").values_list("username", "password", "is_superuser")),
        "members": list(
            Membership.objects.order_by("user__username").values_list("project__slug", "user__username", "role")
        ),
        "labels": list(Label.objects.order_by("name").values_list("project__slug", "name", "shortcut", "retired")),
        "examples": list(Example.objects.order_by("id").values(*EXAMPLE_FIELDS)),
        "revisions": list(ExampleRevision.objects.order_by("id").values(*REVISION_FIELDS)),
        "runs": list(TrainingRun.objects.order_by("id").values(*RUN_FIELDS)),
        "imports": list(ImportJob.objects.order_by("id").values_list("filename", "path", "status")),
        "points": list(
            TrainingPoint.objects.order_by("run_id", "step").values_list("run__number", "step", "train_loss")
        ),
        "artifacts": files,
    }


def empty(data: Path) -> None:
    """A new installation: a database as `migrate` leaves it, and no artifacts."""
    seeded = embedded_connection()
    call_command("flush", interactive=False, verbosity=0)
    # What migration 0009 makes in a new database: the embedded-model connection, under its own id.
    Connection.objects.create(pk=seeded.pk + 100, name=seeded.name, kind=seeded.kind)
    shutil.rmtree(data, ignore_errors=True)
    assert not User.objects.exists() and not Project.objects.exists()


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_a_backup_restored_into_an_empty_installation_gives_back_the_same_data(team, folders, tmp_path):
    before = state(files_in(folders))
    archive = tmp_path / "team.tar.gz"

    said = run("backup", str(archive))
    empty(folders)
    restored = run("restore", str(archive))

    assert state(files_in(folders)) == before
    assert "examples: 2" in said and "artifacts: 5" in said
    assert "users: 5" in restored and "examples: 2" in restored and "revisions: 7" in restored
    assert "training runs: 1" in restored and "artifacts: 5" in restored
    # People sign in with their own passwords, and new work gets new ids.
    assert authenticate(username="adam", password=PASSWORD) is not None
    newer = example_create(project=Project.objects.get(), user=User.objects.get(username="adam"), messages=CHAT)
    assert newer.pk > max(row["id"] for row in before["examples"])


def test_the_archive_is_plain_tar_with_the_rows_the_files_and_a_manifest(team, tmp_path):
    archive = tmp_path / "team.tar"
    run("backup", str(archive))

    with tarfile.open(archive) as opened:
        names = opened.getnames()
        manifest = json.load(opened.extractfile("manifest.json"))
        rows = [json.loads(line) for line in opened.extractfile("database.jsonl")]
    assert names[0] == "database.jsonl" and names[-1] == "manifest.json"
    assert sorted(names[1:-1]) == sorted(f"artifacts/{name}" for name in FILES)
    assert {a["name"]: a["size"] for a in manifest["artifacts"]} == {name: len(data) for name, data in FILES.items()}
    assert manifest["database"]["rows"]["curation.example"] == 2
    # Sign-ins are not carried over, and content types come from `migrate`.
    assert not {"sessions.session", "contenttypes.contenttype"} & {row["model"] for row in rows}
    assert archive.stat().st_mode & 0o077 == 0  # password hashes inside: readable by its owner only
    assert not list(tmp_path.glob(".team.tar.*"))  # no temporary file left behind


def test_restore_refuses_a_database_that_already_holds_users_or_projects(team, folders, tmp_path):
    archive = tmp_path / "team.tar"
    run("backup", str(archive))
    shutil.rmtree(folders)
    before = state(files_in(folders))

    with pytest.raises(CommandError, match=r"already holds data: auth.user \(5\), curation.project \(1\)"):
        run("restore", str(archive))
    assert state(files_in(folders)) == before


def test_restore_refuses_an_artifacts_storage_that_holds_files_unless_forced(team, folders, tmp_path):
    before = state(files_in(folders))
    archive = tmp_path / "team.tar"
    run("backup", str(archive))
    call_command("flush", interactive=False, verbosity=0)
    (folders / "artifacts/runs/1/output/shikomi_run.json").write_bytes(b"changed since")

    with pytest.raises(CommandError, match="artifacts storage already holds files .*--force"):
        run("restore", str(archive))
    assert not Example.objects.exists()

    run("restore", "--force", str(archive))
    assert state(files_in(folders)) == before


def rewrite(archive: Path, name: str, change) -> None:
    """The archive again, with the member `name` changed."""
    with tarfile.open(archive) as old:
        members = [(m, old.extractfile(m).read()) for m in old.getmembers()]
    with tarfile.open(archive, "w") as new:
        for member, data in members:
            data = change(data) if member.name == name else data
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))


def test_a_damaged_archive_is_refused_before_anything_is_written(team, folders, tmp_path):
    archive = tmp_path / "team.tar"
    run("backup", str(archive))
    rewrite(archive, "artifacts/runs/1/checkpoints/step-4/optimizer.pt", lambda data: b"x" + data[1:])
    empty(folders)

    with pytest.raises(CommandError, match="damaged: the artifact runs/1/checkpoints/step-4/optimizer.pt"):
        run("restore", str(archive))
    assert not User.objects.exists() and not Example.objects.exists()
    assert files_in(folders) == {}


def test_a_backup_of_another_version_is_refused_naming_the_migrations(team, folders, tmp_path):
    archive = tmp_path / "team.tar"
    run("backup", str(archive))

    def newer(data: bytes) -> bytes:
        manifest = json.loads(data)
        manifest["database"]["migrations"]["curation"].append("9999_from_the_future")
        return json.dumps(manifest).encode()

    rewrite(archive, "manifest.json", newer)
    empty(folders)

    with pytest.raises(CommandError, match="only in the backup: curation.9999_from_the_future"):
        run("restore", str(archive))
    assert not User.objects.exists()


def test_an_archive_naming_a_file_outside_the_storage_is_refused(team, folders, tmp_path):
    archive = tmp_path / "team.tar"
    run("backup", str(archive))

    def escaping(data: bytes) -> bytes:
        manifest = json.loads(data)
        manifest["artifacts"].append({"name": "../../home/.bashrc", "size": 1, "sha256": "0" * 64})
        return json.dumps(manifest).encode()

    rewrite(archive, "manifest.json", escaping)
    empty(folders)

    with pytest.raises(CommandError, match="names an artifact '../../home/.bashrc' outside the storage"):
        run("restore", str(archive))
    assert not User.objects.exists()


def test_a_file_that_is_not_a_backup_is_refused(db, tmp_path):
    other = tmp_path / "notes.tar"
    with tarfile.open(other, "w") as archive:
        archive.addfile(tarfile.TarInfo("notes.txt"), io.BytesIO(b""))

    with pytest.raises(CommandError, match="not a backup made by `manage.py backup`"):
        run("restore", str(other))


def test_a_new_installation_made_by_migrate_restores_to_the_same_rows_and_files(team, folders, tmp_path):
    """The whole path an operator takes, in other processes: a new data folder, `migrate`,
    `restore`; a backup of the result holds the rows and files of the first, the rows naming the
    files where the new installation keeps them."""
    first = tmp_path / "first.tar"
    run("backup", str(first))
    fresh = tmp_path / "fresh"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", SHIKOMI_DATA_DIR=str(fresh), SECRET_KEY="test")
    env["HUEY_NAME"] = f"backup-test-{os.getpid()}"
    for name in ("DATABASE_URL", "REDIS_URL", "SHIKOMI_S3_BUCKET", "SHIKOMI_TEST_DB"):
        env.pop(name, None)

    def manage(*args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    manage("migrate", "-v", "0")
    said = manage("restore", str(first))
    manage("backup", str(tmp_path / "second.tar"))

    assert "Replaced what the new database held: curation.connection (1)." in said
    assert "References to files moved to this installation's artifacts and upload folders: 3." in said
    assert files_in(fresh) == FILES
    with tarfile.open(first) as a, tarfile.open(tmp_path / "second.tar") as b:
        rows = [
            sorted(map(json.loads, t.extractfile("database.jsonl")), key=lambda r: (r["model"], str(r["pk"])))
            for t in (a, b)
        ]
        manifests = [json.load(t.extractfile("manifest.json")) for t in (a, b)]
    moved = {str(folders / name): str(fresh / name) for name in ("artifacts", "uploads")}
    run_row = next(row for row in rows[1] if row["model"] == "training.trainingrun")
    assert run_row["fields"]["output_dir"] == str(fresh / "artifacts/runs/1/output")
    assert rows[1] == [moving(row, moved) for row in rows[0]]
    assert manifests[0]["artifacts"] == manifests[1]["artifacts"]
    counts = [{model: n for model, n in m["database"]["rows"].items() if n} for m in manifests]
    assert counts[0] == counts[1]


def moving(row: dict[str, Any], moved: dict[str, str]) -> dict[str, Any]:
    """The row with the paths under the folders `moved` names where they moved to."""
    fields = dict(row["fields"])
    for field, value in fields.items():
        for old, new in moved.items():
            if isinstance(value, str) and value.startswith(old + "/"):
                fields[field] = new + value[len(old) :]
    return row | {"fields": fields}


def objects_in(bucket: Bucket) -> dict[str, bytes]:
    return {
        name: bucket.client.get_object(Bucket=bucket.name, Key=f"{PREFIX}/{name}")["Body"].read()
        for name in bucket.names()
    }


def test_a_backup_of_a_bucket_restores_into_an_empty_bucket(project, users, s3_artifacts, tmp_path):  # noqa: F811
    """The same against a real S3-compatible server (tests/s3.py): the storage is walked with
    listdir, read and written through django-storages."""
    build_team(project, users)
    before = state(objects_in(s3_artifacts))
    assert set(before["artifacts"]) == set(FILES)
    assert before["runs"][0]["output_dir"] == "runs/1/output"  # a name, in a bucket
    archive = tmp_path / "team.tar.gz"
    run("backup", str(archive))

    call_command("flush", interactive=False, verbosity=0)
    s3_artifacts.delete("")
    run("restore", str(archive))
    assert state(objects_in(s3_artifacts)) == before

    call_command("flush", interactive=False, verbosity=0)
    s3_artifacts.client.put_object(Bucket=s3_artifacts.name, Key=f"{PREFIX}/runs/1/output/shikomi_run.json", Body=b"?")
    with pytest.raises(CommandError, match="artifacts storage already holds files"):
        run("restore", str(archive))
    run("restore", "--force", str(archive))
    assert state(objects_in(s3_artifacts)) == before


def test_a_single_machine_backup_restores_into_a_bucket(project, users, s3_artifacts, settings, tmp_path):  # noqa: F811
    """From `make run` to a team's setup: rows that named files by their path in the local
    folders name them by their storage name in the bucket."""
    bucket = settings.STORAGES, settings.ARTIFACT_DIR, settings.UPLOAD_DIR
    data = use_local_folders(settings, tmp_path / "data")
    build_team(project, users)
    before = state(files_in(data))
    archive = tmp_path / "team.tar"
    run("backup", str(archive))
    call_command("flush", interactive=False, verbosity=0)

    settings.STORAGES, settings.ARTIFACT_DIR, settings.UPLOAD_DIR = bucket
    said = run("restore", str(archive))

    assert "References to files moved to this installation's artifacts and upload folders: 3." in said
    before["runs"][0] |= {"output_dir": "runs/1/output", "checkpoint": "runs/1/checkpoints/step-4"}
    before["imports"] = [("tickets.jsonl", "uploads/support/tickets.jsonl", "succeeded")]
    assert state(objects_in(s3_artifacts)) == before
