"""One file per split: the export writes a ZIP archive with a file for each split that has
examples; each file, imported with its split chosen, gives back that split's examples."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from curation.core.services import example_create
from curation.io.exports import example_export
from curation.io.imports import example_import_path
from curation.models import Example, ImportJob, Project

pytestmark = pytest.mark.django_db

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALL = {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "京都"}'}}
TOOL_CHAT = [
    {"role": "user", "content": "京都の天気は？"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_0", "content": "晴れ"},
    {"role": "assistant", "content": "晴れです。"},
]

# The export takes approved examples unless told otherwise; these tests export every status.
EVERY_STATUS = ["draft", "needs_review", "approved", "rejected"]


def chat(text: str) -> list[dict]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": text.upper()}]


@pytest.fixture
def split_project(project, users) -> Project:
    author = users["annotator"]
    example_create(project=project, user=author, messages=chat("one"), split="train")
    example_create(project=project, user=author, messages=TOOL_CHAT, tools=[WEATHER], split="train")
    example_create(project=project, user=author, messages=chat("two"), split="validation")
    example_create(project=project, user=author, messages=chat("three"), split="test")
    return project


def archive(export) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(export.chunks)))


def stored(project: Project, split: str) -> list[tuple]:
    rows = Example.objects.filter(project=project, split=split).order_by("pk")
    return [(e.messages, e.tools) for e in rows]


def test_each_split_with_examples_gets_its_own_file(split_project):
    export = example_export(project=split_project, status="any", format="openai", per_split=True)

    assert (export.content_type, export.filename) == ("application/zip", "support-openai-splits.zip")
    assert archive(export).namelist() == [
        "support-train-openai.jsonl",
        "support-validation-openai.jsonl",
        "support-test-openai.jsonl",
    ]


def test_each_file_imported_with_its_split_gives_back_that_split(split_project, users, tmp_path):
    files = archive(example_export(project=split_project, status="any", format="openai", per_split=True))
    copy = Project.objects.create(name="Copy", slug="copy")

    for split in ("train", "validation", "test"):
        path = tmp_path / f"{split}.jsonl"
        path.write_bytes(files.read(f"support-{split}-openai.jsonl"))
        job = example_import_path(
            project=copy, user=users["admin"], path=path, format="openai", options={"split": split}
        )
        assert job.status == ImportJob.Status.SUCCEEDED, job.report

    for split in ("train", "validation", "test"):
        assert stored(copy, split) == stored(split_project, split)


def test_the_skips_of_a_format_cover_every_split(split_project):
    export = example_export(project=split_project, status="any", format="alpaca", per_split=True)

    assert export.skipped_total == 1  # the tool-call conversation, which Alpaca cannot hold
    names = archive(export).namelist()
    assert names == ["support-train-alpaca.json", "support-validation-alpaca.json", "support-test-alpaca.json"]


def test_a_binary_format_per_split_is_a_zip_of_parquet_files(split_project):
    files = archive(example_export(project=split_project, status="any", format="parquet", per_split=True))

    assert [n.rsplit(".", 1)[1] for n in files.namelist()] == ["parquet"] * 3
    assert files.read("support-train-parquet.parquet")[:4] == b"PAR1"


def test_the_page_the_api_and_the_command_take_the_option(client, split_project, users, tmp_path):
    client.force_login(users["reviewer"])
    page = client.get(
        f"/p/{split_project.slug}/export/", {"format": "openai", "status": EVERY_STATUS, "per_split": "on"}
    )
    assert page["Content-Type"] == "application/zip"
    assert len(zipfile.ZipFile(io.BytesIO(b"".join(page.streaming_content))).namelist()) == 3

    api = APIClient()
    api.force_authenticate(users["reviewer"])
    response = api.get(
        f"/api/projects/{split_project.slug}/export/", {"format": "openai", "status": "any", "per_split": "true"}
    )
    assert response.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()[0] == (
        "support-train-openai.jsonl"
    )

    out = tmp_path / "splits.zip"
    call_command(
        "export_examples", split_project.slug, "--status", "any", "--format", "sharegpt", "--per-split", "-o", str(out)
    )
    assert zipfile.ZipFile(out).namelist()[1] == "support-validation-sharegpt.json"

    carded = tmp_path / "carded.zip"
    call_command("export_examples", split_project.slug, "--status", "any", "--format", "openai", "--card", "-o", carded)
    assert zipfile.ZipFile(carded).namelist()[-1] == "README.md"
