"""Uploads kept in object storage (a real S3-compatible server): the page's machine keeps no copy,
the worker that imports the file fetches it from the bucket and deletes its own copy after, and
a failed import's file is deleted from the bucket as it is from the upload folder."""

from __future__ import annotations

import io
import json
from pathlib import Path

from curation.io.imports import example_import, import_job_create
from curation.models import Example, ImportJob


def jsonl(*records) -> bytes:
    return ("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n").encode("utf-8")


def chat(i: int) -> dict:
    return {
        "messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i}."}]
    }


def upload(project, user, data: bytes) -> ImportJob:
    return import_job_create(
        project=project, user=user, fileobj=io.BytesIO(data), filename="chats.jsonl", format="openai"
    )


def local_files(settings) -> list[Path]:
    return [p for p in Path(settings.UPLOAD_DIR).rglob("*") if p.is_file()]


def test_an_upload_is_kept_in_the_bucket_and_imported_from_there(s3_artifacts, project, users, settings):
    job = upload(project, users["admin"], jsonl(chat(1), chat(2)))

    assert job.path.startswith("uploads/support/") and job.path.endswith("-chats.jsonl")
    assert s3_artifacts.names("uploads/") == [job.path]
    assert local_files(settings) == []  # the page's machine keeps no copy

    job = example_import(job=job)
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert job.rows_created == 2 and Example.objects.filter(project=project).count() == 2
    assert s3_artifacts.names("uploads/") == [job.path]  # kept, as an upload always was
    assert local_files(settings) == []  # the worker's copy went once imported


def test_a_failed_import_deletes_its_file_from_the_bucket(s3_artifacts, project, users):
    job = example_import(job=upload(project, users["admin"], b"{not json\n"))

    assert job.status == ImportJob.Status.FAILED
    assert s3_artifacts.names("uploads/") == []
