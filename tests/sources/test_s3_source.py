"""An S3 source against a real S3-compatible server (moto): every .jsonl, .json, .csv and .parquet
object under the prefix is one import (one transaction), each example naming its object and line."""

from __future__ import annotations

import io
import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.models import Example, ExampleRevision, ImportJob, Source
from tests import s3
from tests.s3 import ACCESS
from tests.sources import fixtures_sql
from tests.sources.fixtures_sql import import_now

s3_server, admin_client = s3.s3_server, fixtures_sql.admin_client

SECRET = "SHIKOMI_SECRET_BUCKET_KEYS"


def chat(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"instruction": ["Parquet question"], "output": ["Parquet answer"]}), buffer)
    return buffer.getvalue()


@pytest.fixture
def bucket(s3_server, monkeypatch):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server, **ACCESS)
    name = f"source-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    monkeypatch.setenv(SECRET, f"{ACCESS['aws_access_key_id']}:{ACCESS['aws_secret_access_key']}")

    def put(key: str, body: bytes | str) -> None:
        client.put_object(Bucket=name, Key=key, Body=body.encode() if isinstance(body, str) else body)

    put("data/a.jsonl", "\n".join(json.dumps(chat(f"JSONL question {i}", f"JSONL answer {i}")) for i in (1, 2)) + "\n")
    put("data/b.csv", "instruction,output\nCSV question,CSV answer\n")
    put("data/c.parquet", parquet_bytes())
    put("data/d.json", json.dumps([chat("JSON question", "JSON answer")]))
    put("data/notes.txt", "not data")
    put("elsewhere/e.jsonl", json.dumps(chat("Outside the prefix", "No")) + "\n")
    yield client, name, put
    for item in client.list_objects_v2(Bucket=name).get("Contents", []):
        client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)


def define_s3(client, project, endpoint: str, bucket_name: str):
    response = client.post(
        f"/p/{project.slug}/sources/new/",
        {
            "name": "Bucket",
            "kind": "s3",
            "secret": SECRET,
            "bucket": bucket_name,
            "prefix": "data/",
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "json_format": "openai",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    return Source.objects.get(project=project, name="Bucket")


def test_a_malformed_object_fails_the_whole_import_then_the_fixed_prefix_imports_with_provenance(
    project,
    admin_client,
    bucket,
    s3_server,
    django_capture_on_commit_callbacks,
):
    client, name, put = bucket
    put("data/bad.jsonl", json.dumps(chat("Fine", "Fine")) + "\n{not json\n")
    source = define_s3(admin_client, project, s3_server, name)

    failed = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    assert failed.status == ImportJob.Status.FAILED
    assert "data/bad.jsonl line 2" in failed.error
    assert failed.report["errors"][0]["object"] == "data/bad.jsonl" and failed.report["errors"][0]["line"] == 2
    assert not Example.objects.filter(project=project).exists()

    put("data/bad.jsonl", json.dumps(chat("Fine", "Fine")) + "\n" + json.dumps(chat("Fixed", "Fixed")) + "\n")
    job = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.SUCCEEDED, job.error
    found = set(Example.objects.filter(project=project).values_list("source_object", "source_line"))
    assert found == {
        ("data/a.jsonl", 1),
        ("data/a.jsonl", 2),
        ("data/b.csv", 2),
        ("data/bad.jsonl", 1),
        ("data/bad.jsonl", 2),
        ("data/c.parquet", 1),
        ("data/d.json", 1),
    }
    parquet = Example.objects.get(project=project, source_object="data/c.parquet")
    assert parquet.messages[0]["content"] == "Parquet question"
    assert job.report["skipped_objects"] == ["data/notes.txt"]
    page = admin_client.get(f"/p/{project.slug}/sources/{source.pk}/").content.decode()
    assert "data/notes.txt" in page


def test_a_resync_skips_what_is_present_and_reports_or_updates_a_changed_row(
    project,
    admin_client,
    bucket,
    s3_server,
    django_capture_on_commit_callbacks,
):
    client, name, put = bucket
    source = define_s3(admin_client, project, s3_server, name)
    first = import_now(admin_client, project, source, django_capture_on_commit_callbacks)
    assert first.status == ImportJob.Status.SUCCEEDED and first.rows_created == 5

    again = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    assert again.status == ImportJob.Status.SUCCEEDED
    assert (again.rows_created, again.rows_duplicate, again.report["already_present"]) == (0, 5, 5)

    put(
        "data/a.jsonl",
        json.dumps(chat("JSONL question 1", "A better answer"))
        + "\n"
        + json.dumps(chat("JSONL question 2", "JSONL answer 2"))
        + "\n",
    )
    reported = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    example = Example.objects.get(project=project, source_object="data/a.jsonl", source_line=1)
    assert reported.status == ImportJob.Status.SUCCEEDED
    assert (reported.rows_created, reported.report["changed_total"], reported.report["updated_total"]) == (0, 1, 0)
    assert reported.report["changed"] == [
        {"object": "data/a.jsonl", "line": 1, "example": example.pk, "updated": False}
    ]
    assert example.messages[1]["content"] == "JSONL answer 1"  # left alone

    updated = import_now(admin_client, project, source, django_capture_on_commit_callbacks, update_changed="on")

    example.refresh_from_db()
    assert (updated.rows_created, updated.report["updated_total"]) == (0, 1)
    assert example.messages[1]["content"] == "A better answer"
    assert Example.objects.filter(project=project).count() == 5
    revision = ExampleRevision.objects.filter(example=example).order_by("-version").first()
    assert revision.action == ExampleRevision.Action.UPDATE
    assert revision.before["messages"][1]["content"] == "JSONL answer 1"


def test_an_endpoint_the_outbound_guard_refuses_is_not_saved(project, admin_client, bucket, settings):
    settings.SHIKOMI_OUTBOUND_ALLOW = []
    response = admin_client.post(
        f"/p/{project.slug}/sources/new/",
        {"name": "B", "kind": "s3", "secret": SECRET, "bucket": "b", "endpoint_url": "http://127.0.0.1:9/"},
    )
    assert response.status_code == 400 and not Source.objects.exists()


def test_too_many_objects_import_nothing(
    project,
    admin_client,
    bucket,
    s3_server,
    settings,
    django_capture_on_commit_callbacks,
):
    _client, name, _put = bucket
    settings.SHIKOMI_SOURCE_MAX_OBJECTS = 2
    source = define_s3(admin_client, project, s3_server, name)

    job = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.FAILED and "more than 2 objects" in job.error
    assert not Example.objects.filter(project=project).exists()


def test_the_preview_lists_the_objects_an_import_would_read(project, admin_client, s3_server, bucket):
    client, name, put = bucket
    put("data/<b>x</b>.jsonl", json.dumps(chat("Q", "A")) + "\n")
    source = define_s3(admin_client, project, s3_server, name)
    page = admin_client.get(f"/p/{project.slug}/sources/{source.pk}/preview/").content.decode()
    assert "5 objects would be imported" in page
    keys = [line.split("<code>")[1].split("</code>")[0] for line in page.split("\n") if "<td><code>" in line]
    assert keys == ["data/&lt;b&gt;x&lt;/b&gt;.jsonl", "data/a.jsonl", "data/b.csv", "data/c.parquet", "data/d.json"]
    assert "<code>data/notes.txt</code>" in page and "elsewhere/e.jsonl" not in page
    assert not ImportJob.objects.filter(source=source).exists()  # nothing was imported

    Source.objects.filter(pk=source.pk).update(secret="")
    page = admin_client.get(f"/p/{project.slug}/sources/{source.pk}/preview/").content.decode()
    assert 'class="error"' in page  # the secret is gone: said, not raised
