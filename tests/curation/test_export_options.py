"""Export options and what a format cannot hold: the page, the API and the command say how many
examples are left out and why before the download starts; "with Shikomi fields" adds id,
status, split and metadata. And the Parquet export: a schema that datasets/TRL read as it is,
and a reader that takes what it writes and what it took before."""

from __future__ import annotations

import io
import json
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from curation.core.services import example_create
from curation.formats import parquet
from curation.io.exports import SKIPPED_HEADER, example_export
from curation.io.imports import example_import_path
from curation.models import Example, ImportJob, Label, Project
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "天気",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALL = {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "京都"}'}}
TOOL_CHAT = [
    {"role": "user", "content": "京都の天気は？"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_0", "content": "晴れ"},
    {"role": "assistant", "content": "晴れです。", "reasoning": "The tool said sunny."},
]
PLAIN = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
TWO_TURNS = PLAIN + [{"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Bye!"}]

# The export takes approved examples unless told otherwise; these tests export every status.
EVERY_STATUS = ["draft", "needs_review", "approved", "rejected"]


@pytest.fixture
def mixed(project, users) -> Project:
    author = users["annotator"]
    example_create(project=project, user=author, messages=TOOL_CHAT, tools=[WEATHER], split="train")
    example_create(project=project, user=author, messages=PLAIN, label="billing", metadata={"k": "値"})
    example_create(project=project, user=author, messages=TWO_TURNS, split="test")
    return project


def test_the_export_page_says_what_is_left_out_before_the_download(client, mixed, users):
    client.force_login(users["reviewer"])
    url = f"/p/{mixed.slug}/export/"

    page = client.get(url, {"format": "csv", "status": EVERY_STATUS})

    text = page.content.decode()
    assert page.status_code == 200 and not page.streaming
    assert "2 examples cannot be written in this format and will be left out: several turns (1); tools (1)." in text
    download = client.get(url, {"format": "csv", "status": EVERY_STATUS, "confirm": "1"})
    assert download.streaming
    body = b"".join(download.streaming_content).decode("utf-8-sig")
    assert body.splitlines()[1:] == [",Hi,Hello!,billing,"]
    assert unquote(download[SKIPPED_HEADER]) == "several turns (1); tools (1)"


def test_a_format_that_holds_everything_downloads_at_once(client, mixed, users):
    client.force_login(users["reviewer"])

    response = client.get(
        f"/p/{mixed.slug}/export/", {"format": "openai", "status": EVERY_STATUS, "shikomi_fields": "on"}
    )

    records = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert SKIPPED_HEADER not in response
    assert [r["split"] for r in records] == ["train", "unassigned", "test"]
    assert records[1]["metadata"] == {"k": "値"} and records[1]["status"] == "needs_review"


def test_the_api_reports_the_skipped_examples_in_an_ascii_header(mixed, users):
    client = APIClient()
    client.login(username="rhea", password=PASSWORD)

    response = client.get(
        f"/api/projects/{mixed.slug}/export/", {"format": "alpaca", "status": "any", "shikomi_fields": "true"}
    )

    assert response.status_code == 200
    assert response[SKIPPED_HEADER] == "tools (1)"
    records = json.loads(b"".join(response.streaming_content))
    assert [r["output"] for r in records] == ["Hello!", "Bye!"]
    assert records[0]["metadata"] == {"k": "値"} and set(records[0]) >= {"id", "status", "split"}
    bad = client.get(f"/api/projects/{mixed.slug}/export/", {"format": "alpaca", "shikomi_fields": "maybe"})
    assert bad.status_code == 400 and "shikomi_fields" in bad.json()


def test_a_non_ascii_reason_is_percent_encoded(mixed, users):
    from django.utils import translation

    client = APIClient()
    client.login(username="rhea", password=PASSWORD)
    with translation.override("ja"):
        response = client.get(
            f"/api/projects/{mixed.slug}/export/",
            {"format": "prompt_completion", "status": "any"},
            HTTP_ACCEPT_LANGUAGE="ja",
        )

    response[SKIPPED_HEADER].encode("ascii")  # no UnicodeEncodeError


def test_the_export_command_prints_the_skips_to_stderr(mixed, tmp_path):
    out, err = tmp_path / "out.jsonl", io.StringIO()

    call_command(
        "export_examples", mixed.slug, "--status", "any", "--format", "prompt_completion", "-o", str(out), stderr=err
    )

    assert "Left out 2 example(s) that prompt_completion cannot hold: several turns (1); tools (1)" in err.getvalue()
    assert [json.loads(line)["prompt"] for line in out.read_text().splitlines()] == ["Hi"]


# --- Parquet --------------------------------------------------------------------------


def parquet_bytes(project: Project, **options) -> bytes:
    return b"".join(example_export(project=project, status="any", format="parquet", **options).chunks)


def test_the_parquet_export_keeps_tool_calls_reasoning_and_tools_for_datasets(mixed, tmp_path):
    from datasets import load_dataset

    path = tmp_path / "export.parquet"
    path.write_bytes(parquet_bytes(mixed, shikomi_fields=True))

    dataset = load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))

    first = dataset[0]
    assert first["messages"][1]["tool_calls"] == [CALL]
    assert first["messages"][1]["content"] == ""
    assert first["messages"][3]["reasoning"] == "The tool said sunny."
    assert first["messages"][2]["tool_call_id"] == "call_0"
    assert json.loads(first["tools"]) == [WEATHER]  # JSON text, as TRL's tool-calling datasets have it
    assert dataset[1]["tools"] is None and json.loads(dataset[1]["metadata"]) == {"k": "値"}
    assert set(dataset.column_names) == {
        "messages",
        "tools",
        "label",
        "split",
        "metadata",
        "id",
        "status",
        "label_source",
    }
    # Where each label came from, as JSON text like metadata: null without a label.
    assert [r["label_source"] for r in dataset] == [None, '{"source": "person"}', None]


def test_a_plain_export_has_only_role_and_content_in_its_messages(project, users):
    example_create(project=project, user=users["annotator"], messages=PLAIN)

    table = pq.read_table(io.BytesIO(parquet_bytes(project)))

    assert table.schema.field("messages").type.value_type.names == ["role", "content"]
    assert "id" not in table.column_names


def test_a_later_batch_with_new_message_keys_widens_the_whole_file(project, users, monkeypatch, tmp_path):
    monkeypatch.setattr(parquet, "BATCH_ROWS", 2)
    for i in range(3):
        example_create(project=project, user=users["annotator"], messages=[PLAIN[0], {**PLAIN[1], "content": f"{i}"}])
    example_create(project=project, user=users["annotator"], messages=TOOL_CHAT, tools=[WEATHER])
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    table = pq.read_table(io.BytesIO(parquet_bytes(project)))

    assert table.num_rows == 4
    assert "tool_calls" in table.schema.field("messages").type.value_type.names
    assert table.column("messages")[3].as_py()[1]["tool_calls"] == [CALL]
    assert not list(tmp_path.glob("shikomi-export-*"))  # every segment removed


def import_parquet(project: Project, owner, table: pa.Table, tmp_path) -> ImportJob:
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    return example_import_path(project=project, user=owner, path=path, format="hf")


def test_an_older_shikomi_parquet_export_still_imports(project, users, tmp_path):
    old = pa.schema(
        [
            ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("label", pa.string()),
            ("split", pa.string()),
            ("metadata", pa.string()),
        ]
    )
    table = pa.Table.from_pydict(
        {"messages": [PLAIN], "label": ["billing"], "split": ["train"], "metadata": ['{"a": 1}']}, schema=old
    )

    job = import_parquet(project, users["admin"], table, tmp_path)

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    example = Example.objects.get(project=project)
    assert (example.messages, example.label.name, example.split, example.metadata) == (
        PLAIN,
        "billing",
        "train",
        {"a": 1},
    )


def test_a_hugging_face_chat_dataset_with_tools_as_structs_imports(project, users, tmp_path):
    # datasets stores a list of dicts as structs: every tool gets every key of every other
    # tool, as null. Those nulls are no part of the schemas, and an "id" alone is the file's.
    tools = [WEATHER, {"type": "function", "function": {"name": "now", "description": "時刻", "parameters": {}}}]
    messages = [TOOL_CHAT[0], {**TOOL_CHAT[1], "content": None}, TOOL_CHAT[2], {"role": "assistant", "content": "晴れ"}]
    table = pa.Table.from_pylist([{"id": "row-1", "messages": messages, "tools": tools}])

    job = import_parquet(project, users["admin"], table, tmp_path)

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    example = Example.objects.get(project=project)
    assert example.tools == tools
    assert example.messages[1]["tool_calls"] == [CALL]
    assert example.metadata == {"id": "row-1"}


def test_a_classification_parquet_export_imports_back(users, tmp_path):
    project = Project.objects.create(name="t", slug="tickets", kind=Project.Kind.CLASSIFICATION)
    Label.objects.create(project=project, name="billing")
    example_create(project=project, user=users["admin"], messages=[PLAIN[0]], label="billing", split="test")
    copy = Project.objects.create(name="t2", slug="tickets-copy", kind=Project.Kind.CLASSIFICATION)
    Label.objects.create(project=copy, name="billing")
    path = tmp_path / "export.parquet"
    path.write_bytes(parquet_bytes(project, shikomi_fields=True))

    job = example_import_path(project=copy, user=users["admin"], path=path, format="hf")

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    example = Example.objects.get(project=copy)
    assert (example.messages, example.label.name, example.split, example.metadata) == (
        [PLAIN[0]],
        "billing",
        "test",
        {},
    )


def test_an_unlabeled_classification_openai_export_keeps_its_label_key_and_imports_back(users, tmp_path):
    project = Project.objects.create(name="t", slug="tickets", kind=Project.Kind.CLASSIFICATION)
    example_create(project=project, user=users["admin"], messages=[PLAIN[0]])
    _type, _name, chunks = example_export(project=project, status="any", format="openai")
    data = b"".join(chunks)
    assert json.loads(data)["label"] is None  # the import refuses a classification file without the key
    copy = Project.objects.create(name="t2", slug="tickets-copy", kind=Project.Kind.CLASSIFICATION)
    path = tmp_path / "export.jsonl"
    path.write_bytes(data)

    job = example_import_path(project=copy, user=users["admin"], path=path, format="openai")

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert Example.objects.get(project=copy).label is None
