"""Exports, and the round trip: importing an export into an empty project with the same
labels gives back the same examples (messages, label, and split where the format has it)."""

from __future__ import annotations

import io
import json
import tempfile

import pytest

from curation.core.services import InvalidExample, example_create
from curation.io.exports import example_export
from curation.io.imports import example_import, import_job_create
from curation.models import Example, ImportJob, Label, Project

pytestmark = pytest.mark.django_db

SYSTEM = {"role": "system", "content": "あなたは丁寧なサポート担当です。"}


@pytest.fixture
def io_user(django_user_model):
    return django_user_model.objects.create_user(username="exporter", password="x" * 12)


def make_project(slug: str, kind: str = Project.Kind.CHAT) -> Project:
    project = Project.objects.create(name=slug, slug=slug, kind=kind)
    Label.objects.create(project=project, name="billing")
    Label.objects.create(project=project, name="shipping")
    return project


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


CHATS = [
    ([SYSTEM, user("請求書を再発行できますか？"), assistant("はい、すぐにお送りします。")], "billing", "train"),
    ([user("Where is my parcel?"), assistant("It left the depot today.")], "shipping", "validation"),
    (
        [user("Hi"), assistant("Hello! How can I help?"), user("Change my address"), assistant("Done.")],
        None,
        "unassigned",
    ),
    ([SYSTEM, user('Quote "this", please;\nand a new line'), assistant("「引用」です")], None, "test"),
]
TICKETS = [
    ([user("カードが使えません")], "billing", "train"),
    ([user('Parcel "lost",\nplease help')], "shipping", "test"),
    ([user("Just saying hi")], None, "unassigned"),
]


@pytest.fixture
def io_chats(io_user) -> Project:
    project = make_project("io-chats")
    for messages, label, split in CHATS:
        example_create(project=project, user=io_user, messages=messages, label=label, split=split)
    return project


@pytest.fixture
def io_tickets(io_user) -> Project:
    project = make_project("io-tickets", Project.Kind.CLASSIFICATION)
    for messages, label, split in TICKETS:
        example_create(project=project, user=io_user, messages=messages, label=label, split=split)
    return project


def export_bytes(project: Project, format: str, **filters) -> bytes:
    _type, _name, chunks = example_export(project=project, format=format, **{"status": "any", **filters})
    return b"".join(chunks)


def reimport(data: bytes, format: str, owner, kind: str = Project.Kind.CHAT) -> Project:
    target = make_project(f"copy-{format}-{Project.objects.count()}", kind)
    job = import_job_create(project=target, user=owner, fileobj=io.BytesIO(data), filename="export", format=format)
    job = example_import(job=job)
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    return target


def content(project: Project, *, split: bool = True) -> list[tuple]:
    return [
        (e.messages, e.label.name if e.label else None, e.split if split else None)
        for e in Example.objects.filter(project=project).select_related("label").order_by("pk")
    ]


def test_openai_round_trip_keeps_messages_and_labels(io_chats, io_user):
    data = export_bytes(io_chats, "openai")

    assert "請求書を再発行できますか" in data.decode("utf-8")  # not \\u escapes
    assert json.loads(data.decode().splitlines()[2]) == {"messages": CHATS[2][0]}  # no label key when unset
    copy = reimport(data, "openai", io_user)
    assert content(copy, split=False) == content(io_chats, split=False)


def test_alpaca_round_trip_keeps_history_system_label_and_split(io_chats, io_user):
    data = export_bytes(io_chats, "alpaca")

    records = json.loads(data)
    assert records[2] == {
        "instruction": "Change my address",
        "input": "",
        "output": "Done.",
        "history": [["Hi", "Hello! How can I help?"]],
    }
    copy = reimport(data, "alpaca", io_user)
    assert content(copy) == content(io_chats)


def test_sharegpt_round_trip_keeps_the_system_turn_label_and_split(io_chats, io_user):
    tool_chat = [user("Track 42"), {"role": "tool", "content": "in transit"}, assistant("It is on its way.")]
    example_create(project=io_chats, user=io_user, messages=tool_chat, split="train")
    data = export_bytes(io_chats, "sharegpt")

    records = json.loads(data)
    # LLaMA-Factory's layout: the system prompt is the record's "system", not a turn.
    assert records[0]["system"] == SYSTEM["content"]
    assert [t["from"] for t in records[4]["conversations"]] == ["human", "observation", "gpt"]
    copy = reimport(data, "sharegpt", io_user)
    assert content(copy) == content(io_chats)


def test_csv_round_trip_of_a_classification_project(io_tickets, io_user):
    _type, filename, chunks = example_export(project=io_tickets, status="any", format="csv")
    data = b"".join(chunks)

    assert filename == "io-tickets-csv.csv"
    assert data.startswith(b"\xef\xbb\xbftext,label,split\r\n")
    copy = reimport(data, "csv", io_user, Project.Kind.CLASSIFICATION)
    assert content(copy) == content(io_tickets)


def test_csv_round_trip_of_single_turn_chats(io_user):
    project = make_project("io-single")
    for messages, label, split in (CHATS[0], CHATS[1], CHATS[3]):
        example_create(project=project, user=io_user, messages=messages, label=label, split=split)

    copy = reimport(export_bytes(project, "csv"), "csv", io_user)

    assert content(copy) == content(project)


def test_tsv_round_trip_of_a_classification_project(io_tickets, io_user):
    copy = reimport(export_bytes(io_tickets, "tsv"), "tsv", io_user, Project.Kind.CLASSIFICATION)

    assert content(copy) == content(io_tickets)


def test_prompt_completion_round_trip_of_single_turn_chats(io_user):
    project = make_project("io-pc")
    for messages, label, split in (CHATS[1],):
        example_create(project=project, user=io_user, messages=messages, label=label, split=split)

    copy = reimport(export_bytes(project, "prompt_completion"), "prompt_completion", io_user)

    assert content(copy) == content(project)


def test_parquet_round_trip_keeps_messages_label_split_and_metadata(io_chats, io_user):
    Example.objects.filter(project=io_chats, split="train").update(metadata={"ticket": "T-1", "言語": "ja"})
    _type, filename, chunks = example_export(project=io_chats, status="any", format="parquet")
    data = b"".join(chunks)

    assert filename.endswith(".parquet") and data[:4] == b"PAR1"
    copy = reimport(data, "hf", io_user)
    assert content(copy) == content(io_chats)
    assert Example.objects.get(project=copy, split="train").metadata == {"ticket": "T-1", "言語": "ja"}


def test_the_parquet_export_loads_with_hugging_face_datasets(io_chats, tmp_path):
    from datasets import load_dataset

    path = tmp_path / "export.parquet"
    path.write_bytes(export_bytes(io_chats, "parquet"))

    dataset = load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))

    assert dataset.num_rows == len(CHATS)
    assert dataset[0]["messages"] == CHATS[0][0]
    assert [r["label"] for r in dataset] == ["billing", "shipping", None, None]
    assert [r["split"] for r in dataset] == ["train", "validation", None, "test"]


def test_the_parquet_temp_file_is_deleted_once_streamed_or_abandoned(io_chats, monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _type, _name, chunks = example_export(project=io_chats, status="any", format="parquet")
    next(chunks)
    assert list(tmp_path.glob("shikomi-export-*.parquet"))

    chunks.close()  # what a streaming response does when the client goes away
    assert not list(tmp_path.glob("shikomi-export-*.parquet"))


def test_filters_choose_the_examples_and_name_the_file(io_chats):
    _type, filename, chunks = example_export(
        project=io_chats, status="any", format="openai", split="train", label="billing"
    )

    assert filename == "io-chats-train-billing-openai.jsonl"
    [line] = b"".join(chunks).decode().splitlines()
    assert json.loads(line)["messages"] == CHATS[0][0]
    assert export_bytes(io_chats, "openai", status="approved") == b""
    # Approved only, unless statuses are named: nobody approved these.
    assert example_export(project=io_chats, format="openai").skipped == {}
    assert b"".join(example_export(project=io_chats, format="openai").chunks) == b""
    assert len(export_bytes(io_chats, "openai", status="needs_review,approved").splitlines()) == len(CHATS)
    assert len(export_bytes(io_chats, "openai", source="human").splitlines()) == len(CHATS)


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"format": "xlsx"}, "format"),
        ({"format": "openai", "split": "holdout"}, "split"),
        ({"format": "openai", "status": "done"}, "status"),
        ({"format": "openai", "source": "web"}, "source"),
        ({"format": "openai", "label": "refunds"}, "label"),
    ],
)
def test_an_unknown_format_or_filter_value_is_refused(io_chats, filters, field):
    with pytest.raises(InvalidExample) as raised:
        example_export(project=io_chats, **{"status": "any", **filters})

    assert raised.value.field == field


def test_an_export_streams_in_chunks_reading_the_database_lazily(
    io_user, django_assert_num_queries, django_assert_max_num_queries
):
    project = make_project("io-big")
    label = Label.objects.get(project=project, name="billing")
    Example.objects.bulk_create(
        Example(
            project=project,
            messages=[user(f"質問 {i}"), assistant("回答" * 20)],
            label=label,
            content_hash=str(i),
        )
        for i in range(5000)
    )

    with django_assert_num_queries(0):
        _type, _name, chunks = example_export(project=project, status="any", format="openai")
    with django_assert_max_num_queries(4):  # label names come with the rows: no query per row
        parts = list(chunks)

    assert len(parts) > 5
    assert b"".join(parts).count(b'"label": "billing"') == 5000
