"""The artifacts storage (curation/core/storage.py): with the local folder nothing is copied; with
object storage a file or folder is published, fetched back on another machine (downloading only
what is missing), and removed in both places."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from curation.core.storage import ArtifactMissing, exists, fetch, publish, reference, remove
from tests.conftest import ROOT


def make_folder(root, files: dict[str, bytes]):
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_with_the_local_folder_a_reference_is_the_path_and_nothing_is_copied(settings, tmp_path):
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    folder = make_folder(settings.ARTIFACT_DIR / "runs" / "7", {"data.json": b"{}", "output/a.bin": b"a"})

    assert publish(folder) == reference(folder) == str(folder)
    assert fetch(str(folder)) == folder and exists(str(folder / "output" / "a.bin"))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["7", "a.bin", "artifacts", "data.json", "output", "runs"]
    with pytest.raises(ArtifactMissing):
        fetch(str(folder / "gone"))


def test_a_published_folder_is_fetched_on_another_machine(s3_artifacts, settings, tmp_path):
    folder = make_folder(
        settings.ARTIFACT_DIR / "runs" / "7", {"data.json": b"{}", "output/a.bin": b"a", "output/deep/b.bin": b"b"}
    )
    name = publish(folder)

    assert name == reference(folder) == "runs/7"
    assert s3_artifacts.names() == ["runs/7/data.json", "runs/7/output/a.bin", "runs/7/output/deep/b.bin"]
    settings.ARTIFACT_DIR = tmp_path / "elsewhere"  # another machine, with its own folder
    output = fetch("runs/7/output")
    assert output == tmp_path / "elsewhere" / "runs" / "7" / "output"
    assert (output / "a.bin").read_bytes() == b"a" and (output / "deep" / "b.bin").read_bytes() == b"b"
    assert not (output.parent / "data.json").exists()  # only what was asked for


def test_fetch_downloads_only_the_files_this_machine_lacks(s3_artifacts, settings):
    folder = make_folder(settings.ARTIFACT_DIR / "runs" / "7", {"a.bin": b"a", "b.bin": b"b"})
    publish(folder)
    (folder / "a.bin").unlink()
    (folder / "b.bin").write_bytes(b"local copy")

    fetch("runs/7")
    assert (folder / "a.bin").read_bytes() == b"a"
    assert (folder / "b.bin").read_bytes() == b"local copy"
    assert fetch("runs/7", recursive=False) == folder


def test_only_changed_files_are_sent_again(s3_artifacts, settings):
    folder = make_folder(settings.ARTIFACT_DIR / "runs" / "7", {"a.bin": b"a", "b.bin": b"b"})
    known: dict = {}
    publish(folder, known=known)
    s3_artifacts.delete("runs/7/a.bin")  # had it been sent again, it would be back
    (folder / "b.bin").write_bytes(b"b, longer")

    publish(folder, known=known)
    assert s3_artifacts.names() == ["runs/7/b.bin"]
    assert fetch("runs/7/b.bin").read_bytes() == b"b, longer"


def test_a_missing_name_is_an_error_and_removal_clears_both_places(s3_artifacts, settings):
    folder = make_folder(settings.ARTIFACT_DIR / "runs" / "7", {"a.bin": b"a"})
    publish(folder)
    with pytest.raises(ArtifactMissing, match="runs/8"):
        fetch("runs/8")
    assert exists("runs/7") and exists("runs/7/a.bin") and not exists("runs/8")

    remove("runs/7")
    assert s3_artifacts.names() == [] and not folder.exists() and not exists("runs/7")


def test_a_name_that_leaves_its_folder_is_refused(s3_artifacts):
    with pytest.raises(ValueError):
        fetch("runs/../../etc/passwd")


def test_an_operator_configures_the_bucket_with_environment_variables(s3_artifacts, tmp_path):
    """config/settings.py's S3 settings, read in a process of the app as a worker starts it."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", SHIKOMI_DATA_DIR=str(tmp_path / "worker"))
    code = (
        "from django.conf import settings; from curation.core.storage import publish; "
        "path = settings.ARTIFACT_DIR / 'runs' / '3' / 'data.json'; path.parent.mkdir(parents=True); "
        "path.write_text('{}'); print(publish(path))"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env=env | s3_artifacts.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "runs/3/data.json"
    assert s3_artifacts.names() == ["runs/3/data.json"]
