"""Uploads through the browser's form, imported by a real Huey consumer in another process."""

from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from curation.models import Example, ImportJob
from tests.conftest import PASSWORD, wait_for


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _chat(q: str, a: str = "Sure.") -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], "label": "billing"}


def _upload(client, project, data: bytes, **fields):
    client.login(username="adam", password=PASSWORD)
    upload = SimpleUploadedFile("orders.jsonl", data, content_type="application/jsonl")
    return client.post(f"/p/{project.slug}/import/", {"file": upload, "format": "openai", "encoding": "auto", **fields})


def _finished(job_id: int):
    job = ImportJob.objects.get(pk=job_id)
    return job if job.finished else None


def test_a_real_consumer_imports_an_uploaded_file(huey_consumer, project, users, client):
    response = _upload(client, project, _jsonl([_chat("Card declined"), _chat("Invoice please"), _chat("請求書")]))
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert response["Location"] == f"/p/{project.slug}/imports/{job.pk}/"

    job = wait_for(lambda: _finished(job.pk), timeout=90)

    assert job.status == ImportJob.Status.SUCCEEDED, job.error
    examples = Example.objects.filter(project=project).order_by("source_line", "id")
    assert [e.source_line for e in examples] == [1, 2, 3]
    assert examples[2].messages[0]["content"] == "請求書"
    assert {e.source for e in examples} == {"imported"} and {e.import_job_id for e in examples} == {job.pk}
    # The progress poll ends once the job has finished (htmx stops on 286).
    poll = client.get(f"/p/{project.slug}/imports/{job.pk}/", HTTP_HX_REQUEST="true")
    assert poll.status_code == 286 and b"3" in poll.content


def test_a_file_with_a_bad_row_imports_nothing_and_says_where(huey_consumer, project, users, client):
    data = _jsonl([_chat("fine")]) + b'{"messages": [}\n' + _jsonl([_chat("also fine")])
    _upload(client, project, data)
    job = wait_for(lambda: _finished(ImportJob.objects.get().pk), timeout=90)

    assert job.status == ImportJob.Status.FAILED
    assert [(e["line"], e["code"]) for e in job.report["errors"]] == [(2, "invalid_json")]
    assert not Example.objects.filter(project=project).exists()
    page = client.get(f"/p/{project.slug}/imports/{job.pk}/").content.decode()
    assert "invalid_json" in page and ">2<" in page


def test_skipping_bad_rows_is_an_explicit_choice_that_is_recorded(huey_consumer, project, users, client):
    data = _jsonl([_chat("fine")]) + b'{"messages": [}\n' + _jsonl([_chat("also fine")])
    _upload(client, project, data, skip_bad_rows="on")
    job = wait_for(lambda: _finished(ImportJob.objects.get().pk), timeout=90)

    assert job.status == ImportJob.Status.SUCCEEDED
    assert job.rows_created == 2 and job.report["skipped_lines"] == [2]
    assert Example.objects.filter(project=project).count() == 2
