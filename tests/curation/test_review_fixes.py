"""Defects found in review, each pinned by a test."""

from __future__ import annotations

import io
import json

import pytest
from rest_framework.test import APIClient

from curation.core.services import example_create
from curation.io.imports import example_import, import_job_create
from curation.models import Example, ImportJob, Label
from tests.conftest import PASSWORD


def api_as(username: str) -> APIClient:
    client = APIClient()
    client.login(username=username, password=PASSWORD)
    return client


def test_the_api_exports_with_a_format_parameter(project, users, example):
    response = api_as("rhea").get(f"/api/projects/{project.slug}/export/", {"format": "openai", "status": "any"})
    assert response.status_code == 200
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert rows[0]["messages"] == example.messages and rows[0]["label"] == "shipping"


def test_a_japanese_label_in_the_download_name_keeps_the_attachment_header(project, users):
    Label.objects.create(project=project, name="請求")
    response = api_as("rhea").get(f"/api/projects/{project.slug}/export/", {"format": "openai", "label": "請求"})
    assert response["Content-Disposition"].startswith("attachment; filename")
    assert "filename*=utf-8''" in response["Content-Disposition"]


@pytest.mark.parametrize("status", ["approved", "rejected"])
def test_an_annotator_cannot_approve_or_reject_but_a_reviewer_can(project, users, example, status):
    url = f"/api/projects/{project.slug}/examples/{example.pk}/"
    assert api_as("annie").patch(url, {"version": 1, "status": status}, format="json").status_code == 403
    example.refresh_from_db()
    assert example.status == Example.Status.NEEDS_REVIEW and example.version == 1
    assert api_as("rhea").patch(url, {"version": 1, "status": status}, format="json").status_code == 200


def test_an_annotator_cannot_create_an_approved_example(project, users):
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    response = api_as("annie").post(
        f"/api/projects/{project.slug}/examples/", {"messages": messages, "status": "approved"}, format="json"
    )
    assert response.status_code == 403 and not Example.objects.exists()


def test_the_api_refuses_what_an_import_would_refuse(project, users):
    client = api_as("annie")
    url = f"/api/projects/{project.slug}/examples/"
    bogus_key = [{"role": "user", "content": "x", "bogus": 1}, {"role": "assistant", "content": "y"}]
    no_reply = [{"role": "user", "content": "x"}]
    nul = [{"role": "user", "content": "a\x00b"}, {"role": "assistant", "content": "y"}]
    assert "messages[0].bogus" in client.post(url, {"messages": bogus_key}, format="json").json()
    assert "messages" in client.post(url, {"messages": no_reply}, format="json").json()
    assert "messages[0].content" in client.post(url, {"messages": nul}, format="json").json()
    assert not Example.objects.exists()


def test_a_nul_in_metadata_is_a_bad_row_not_a_failed_import(project, users, settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    data = (json.dumps({**good, "note": "a\x00b"}) + "\n" + json.dumps(good) + "\n").encode()
    job = import_job_create(
        project=project,
        user=users["admin"],
        fileobj=io.BytesIO(data),
        filename="d.jsonl",
        format="openai",
        options={"skip_bad_rows": True},
    )
    job = example_import(job=job)
    assert job.status == ImportJob.Status.SUCCEEDED and job.rows_created == 1
    assert [(e["line"], e["code"]) for e in job.report["errors"]] == [(1, "nul_byte")]


def test_a_job_another_worker_is_running_is_not_run_again(project, users, settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    job = import_job_create(
        project=project,
        user=users["admin"],
        fileobj=io.BytesIO(json.dumps(good).encode()),
        filename="d.jsonl",
        format="openai",
    )
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.RUNNING)
    example_import(job=job)
    assert not Example.objects.exists()


def test_a_label_with_surrounding_spaces_imports_from_json_as_from_csv(project, users, settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "label": " billing "}
    job = import_job_create(
        project=project,
        user=users["admin"],
        fileobj=io.BytesIO(json.dumps(row).encode()),
        filename="d.jsonl",
        format="openai",
    )
    assert example_import(job=job).status == ImportJob.Status.SUCCEEDED
    assert Example.objects.get().label.name == "billing"


def test_paging_links_keep_a_label_with_an_ampersand(client, project, users):
    Label.objects.create(project=project, name="Q&A")
    for i in range(60):
        example_create(
            project=project,
            user=users["admin"],
            label="Q&A",
            messages=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
        )
    client.login(username="annie", password=PASSWORD)
    html = client.get(f"/p/{project.slug}/examples/", {"label": "Q&A"}).content.decode()
    assert "?label=Q%26A&page=2" in html


def test_a_bad_element_of_a_one_line_json_array_is_named_by_its_position(project, users, settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path
    good = {"instruction": "q", "output": "a"}
    data = json.dumps([good, {"instruction": "q2"}, {**good, "instruction": "q3"}]).encode()
    job = import_job_create(
        project=project, user=users["admin"], fileobj=io.BytesIO(data), filename="d.json", format="alpaca"
    )
    job = example_import(job=job)
    [error] = job.report["errors"]
    assert error["line"] == 1 and error["code"] == "missing_field"
    assert "(element 2 of the array)" in error["message"]
