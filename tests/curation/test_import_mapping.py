"""Column mapping for every format (JSON, JSONL, CSV, Parquet), combining columns, the
classification project's label column, the same options on the page, the API and the command,
and a failed import's upload removed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from curation.core.services import InvalidExample
from curation.io.imports import example_import, example_import_path, import_job_create
from curation.models import Example, ImportJob, Label, Project
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def tickets() -> Project:
    project = Project.objects.create(name="Tickets", slug="map-tickets", kind=Project.Kind.CLASSIFICATION)
    Label.objects.create(project=project, name="billing")
    Label.objects.create(project=project, name="shipping")
    return project


def jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def parquet(columns: dict) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def run_import(project, owner, data: bytes, format: str, filename: str = "data", **options) -> ImportJob:
    job = import_job_create(
        project=project, user=owner, fileobj=io.BytesIO(data), filename=filename, format=format, options=options
    )
    return example_import(job=job)


def stored(project) -> list[tuple]:
    rows = Example.objects.filter(project=project).select_related("label").order_by("source_line", "id")
    return [(e.messages, e.label.name if e.label else None, e.split, e.metadata) for e in rows]


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


QA = [
    {"question": "請求書を再発行できますか", "answer": "はい、できます。", "category": "billing", "id": 7},
    {"question": "Where is my parcel?", "answer": "On its way.", "category": "shipping", "id": 8},
]


# --- each format with a mapping ---------------------------------------------------------


@pytest.mark.parametrize("format", ["openai", "alpaca", "prompt_completion", "sharegpt"])
def test_a_jsonl_of_texts_imports_into_a_classification_project_with_a_mapping(tickets, io_user, format):
    job = run_import(tickets, io_user, jsonl(*QA), format, "qa.jsonl", mapping="text=question,label=category")

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert stored(tickets) == [
        ([user("請求書を再発行できますか")], "billing", "unassigned", {"answer": "はい、できます。", "id": 7}),
        ([user("Where is my parcel?")], "shipping", "unassigned", {"answer": "On its way.", "id": 8}),
    ]


def test_a_json_array_of_questions_and_answers_imports_as_alpaca(io_project, io_user):
    data = json.dumps(QA, ensure_ascii=False).encode()
    job = run_import(io_project, io_user, data, "alpaca", "qa.json", mapping="instruction=question,output=answer")

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert stored(io_project)[0] == (
        [user("請求書を再発行できますか"), assistant("はい、できます。")],
        None,
        "unassigned",
        {"category": "billing", "id": 7},
    )


def test_prompt_completion_and_openai_keys_can_be_mapped(io_project, io_user):
    pc = jsonl({"q": "Hi", "a": "Hello", "set": "train"})
    job = run_import(
        io_project, io_user, pc, "prompt_completion", mapping={"prompt": "q", "completion": "a", "split": "set"}
    )
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    chats = jsonl({"dialog": [user("Bye"), assistant("Goodbye")], "messages": "an old field"})
    job = run_import(io_project, io_user, chats, "openai", mapping="messages=dialog")
    assert job.status == ImportJob.Status.SUCCEEDED, job.report

    assert stored(io_project) == [
        ([user("Hi"), assistant("Hello")], None, "train", {}),
        # The file's own "messages" key is not lost: the mapping displaced it into metadata.
        ([user("Bye"), assistant("Goodbye")], None, "unassigned", {"messages": "an old field"}),
    ]


def test_a_parquet_file_with_other_column_names_imports_with_a_mapping(tickets, io_user):
    data = parquet({"question": ["カードが使えません", "Late parcel"], "category": ["billing", "shipping"]})
    job = run_import(tickets, io_user, data, "hf", "t.parquet", mapping="text=question,label=category")

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert [(m, label) for m, label, _s, _m in stored(tickets)] == [
        ([user("カードが使えません")], "billing"),
        ([user("Late parcel")], "shipping"),
    ]


def test_a_parquet_file_of_questions_and_answers_reads_as_alpaca(io_project, io_user):
    data = parquet({"question": ["Hi"], "answer": ["Hello"]})
    job = run_import(io_project, io_user, data, "parquet", "qa.parquet", mapping="instruction=question,output=answer")

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert stored(io_project) == [([user("Hi"), assistant("Hello")], None, "unassigned", {})]


# --- combining columns --------------------------------------------------------------------


def test_columns_are_joined_with_a_blank_line_in_csv_and_json(io_project, io_user):
    csv = b"title,body,answer\nRefund,I was charged twice.,Refunded.\nOnly a title,,Noted.\n"
    job = run_import(io_project, io_user, csv, "csv", "t.csv", mapping="instruction=title+body,output=answer")
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    records = jsonl({"title": "Hi", "body": "there", "reply": "Hello"})
    mapping = {"instruction": ["title", "body"], "output": "reply"}
    job = run_import(io_project, io_user, records, "alpaca", mapping=mapping)
    assert job.status == ImportJob.Status.SUCCEEDED, job.report

    assert [e[0] for e in stored(io_project)] == [
        [user("Hi\n\nthere"), assistant("Hello")],
        [user("Refund\n\nI was charged twice."), assistant("Refunded.")],
        [user("Only a title"), assistant("Noted.")],  # an empty column adds no blank line
    ]


def test_a_column_whose_name_holds_a_plus_is_taken_whole(tickets, io_user):
    job = run_import(tickets, io_user, b"C+ text,label\nhello,billing\n", "csv", mapping="text=C+ text")

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert stored(tickets)[0][0] == [user("hello")]


# --- errors -------------------------------------------------------------------------------


def test_a_mapped_key_missing_from_a_record_names_the_line_and_the_keys_found(io_project, io_user):
    data = jsonl({"question": "Hi", "answer": "Hello"}, {"q": "Bye", "answer": "Goodbye"})
    job = run_import(io_project, io_user, data, "alpaca", mapping="instruction=question,output=answer")

    assert job.status == ImportJob.Status.FAILED
    [error] = job.report["errors"]
    assert (error["line"], error["code"], error["field"]) == (2, "missing_column", "instruction")
    assert '"question"' in error["message"] and '"q", "answer"' in error["message"]
    assert not Example.objects.exists()


def test_a_mapped_column_missing_from_a_dataset_or_header_names_the_columns(io_project, io_user):
    job = run_import(io_project, io_user, parquet({"q": ["Hi"], "a": ["Hello"]}), "hf", mapping="prompt=q,completion=b")
    [error] = job.report["errors"]
    assert (error["line"], error["code"]) == (1, "missing_column") and '"b"' in error["message"]
    assert '"q", "a"' in error["message"]

    job = run_import(io_project, io_user, b"title,a\nx,y\n", "csv", mapping="instruction=title+body,output=a")
    [error] = job.report["errors"]
    assert job.status == ImportJob.Status.FAILED and '"body"' in error["message"] and '"title", "a"' in error["message"]


@pytest.mark.parametrize(
    ("format", "mapping", "message"),
    [
        ("openai", "instruction=question", 'no field "instruction"'),
        ("csv", {"metadata": "m"}, 'no field "metadata"'),
        ("openai", {"label": ["a", "b"]}, "only text fields"),
        ("alpaca", "instruction=title+", "missing around a +"),
        ("alpaca", "text=q,instruction=r", "not both"),
    ],
)
def test_an_unknown_or_malformed_mapping_is_refused_before_anything_is_kept(
    io_project, io_user, io_uploads, format, mapping, message
):
    with pytest.raises(InvalidExample, match=message) as raised:
        run_import(io_project, io_user, b"{}", format, mapping=mapping)

    assert raised.value.field == "mapping"
    assert not ImportJob.objects.exists() and not any(Path(io_uploads).rglob("*.*"))


def test_a_combined_value_that_is_not_text_is_an_error_on_its_line(io_project, io_user):
    data = jsonl({"t": "Hi", "b": ["a", "list"], "a": "Hello"})
    job = run_import(io_project, io_user, data, "alpaca", mapping="instruction=t+b,output=a")

    assert [(e["line"], e["code"]) for e in job.report["errors"]] == [(1, "invalid_field")]


# --- a classification file needs a label column ------------------------------------------


@pytest.mark.parametrize(
    ("data", "format", "found"),
    [
        (b"Body,Category\nhello,billing\n", "csv", '"Body", "Category"'),
        (jsonl({"text": "hello", "category": "billing"}, {"text": "bye"}), "openai", '"text", "category"'),
        (parquet({"text": ["hello"], "category": ["billing"]}), "hf", '"text", "category"'),
    ],
    ids=["csv", "jsonl", "parquet"],
)
def test_a_classification_file_without_a_label_column_imports_nothing_and_names_the_columns(
    tickets, io_user, data, format, found
):
    options = {"mapping": "text=Body"} if format == "csv" else {"mapping": "text=text"}
    job = run_import(tickets, io_user, data, format, **options)

    assert job.status == ImportJob.Status.FAILED
    [error] = job.report["errors"]
    assert (error["line"], error["code"], error["field"]) == (1, "missing_column", "label")
    assert found in error["message"] and "label=COLUMN" in job.error
    assert job.rows_created == 0 and not Example.objects.exists()


def test_an_empty_label_column_imports_the_texts_unlabeled(tickets, io_user):
    job = run_import(tickets, io_user, b"text,label\nhello,\n", "csv")
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    job = run_import(tickets, io_user, jsonl({"messages": [user("bye")], "label": None}), "openai")
    assert job.status == ImportJob.Status.SUCCEEDED, job.report

    assert [label for _m, label, _s, _md in stored(tickets)] == [None, None]


def test_one_labeled_record_anywhere_in_a_json_file_is_a_label_column(tickets, io_user, monkeypatch):
    monkeypatch.setattr("curation.io.imports.BATCH_SIZE", 1)
    data = jsonl({"text": "a"}, {"text": "b", "label": "billing"})
    job = run_import(tickets, io_user, data, "openai", mapping="text=text")

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert [label for _m, label, _s, _md in stored(tickets)] == [None, "billing"]


# --- the page and the API take every option ------------------------------------------------


def _page_post(client, project, data: bytes, filename: str, **fields):
    client.login(username="adam", password=PASSWORD)
    upload = SimpleUploadedFile(filename, data)
    return client.post(f"/p/{project.slug}/import/", {"file": upload, "encoding": "auto", **fields})


def test_the_page_takes_delimiter_split_and_mapping(project, users, client, django_capture_on_commit_callbacks):
    data = b"Frage;Antwort\nWo ist mein Paket?;Unterwegs.\n"
    with django_capture_on_commit_callbacks(execute=True):
        response = _page_post(
            client,
            project,
            data,
            "qa.csv",
            format="csv",
            delimiter=";",
            split="validation",
            mapping="instruction=Frage, output=Antwort",
        )

    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert job.options == {
        "encoding": "auto",
        "delimiter": ";",
        "split": "validation",
        "mapping": {"instruction": "Frage", "output": "Antwort"},
        "skip_bad_rows": False,
    }
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    example = Example.objects.get(project=project)
    assert example.messages == [user("Wo ist mein Paket?"), assistant("Unterwegs.")]
    assert example.split == "validation"


def test_the_page_shows_an_option_the_format_does_not_take_on_its_field(project, users, client):
    response = _page_post(client, project, jsonl({"messages": []}), "d.jsonl", format="openai", delimiter=";")

    assert response.status_code == 200
    form = response.context["form"]
    assert "only CSV and TSV imports take a delimiter" in form.errors["delimiter"][0]
    response = _page_post(client, project, b"PAR1", "d.parquet", format="hf", encoding="cp932")
    assert "takes no encoding" in response.context["form"].errors["encoding"][0]
    assert not ImportJob.objects.exists()


@pytest.fixture
def api(users) -> APIClient:
    client = APIClient()
    client.login(username="adam", password=PASSWORD)
    return client


def test_the_api_takes_every_option(api, project, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("qa.tsv", "q\ta\n請求書\tはい\n".encode())
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/projects/{project.slug}/imports/",
            {"file": upload, "format": "csv", "delimiter": "tab", "split": "test", "mapping": "instruction=q,output=a"},
            format="multipart",
        )

    assert response.status_code == 202, response.json()
    job = ImportJob.objects.get()
    mapping = {"instruction": "q", "output": "a"}
    # A form's unticked box is false; the encoding, not given, is the default (auto).
    assert job.options == {"delimiter": "\t", "split": "test", "mapping": mapping, "skip_bad_rows": False}
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert Example.objects.get(project=project).split == "test"


def test_the_api_takes_a_mapping_as_a_json_object(api, project, django_capture_on_commit_callbacks):
    upload = SimpleUploadedFile("qa.jsonl", jsonl({"t": "Hi", "b": "there", "a": "Hello"}))
    mapping = json.dumps({"instruction": ["t", "b"], "output": "a"})
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/projects/{project.slug}/imports/",
            {"file": upload, "format": "alpaca", "mapping": mapping},
            format="multipart",
        )

    assert response.status_code == 202, response.json()
    assert Example.objects.get(project=project).messages == [user("Hi\n\nthere"), assistant("Hello")]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"format": "openai", "delimiter": ";"}, "delimiter"),
        ({"format": "hf", "encoding": "utf-8"}, "encoding"),
        ({"format": "openai", "mapping": "instruction=q"}, "mapping"),
        ({"format": "openai", "colour": "red"}, "colour"),
        ({"format": "openai", "split": "holdout"}, "split"),
    ],
)
def test_the_api_refuses_an_option_the_format_does_not_take(api, project, fields, field):
    upload = SimpleUploadedFile("d.jsonl", jsonl({"messages": [user("a"), assistant("b")]}))
    response = api.post(f"/api/projects/{project.slug}/imports/", {"file": upload, **fields}, format="multipart")

    assert response.status_code == 400
    assert field in response.json()
    assert not ImportJob.objects.exists()


# --- a failed import's upload is removed ---------------------------------------------------


def test_a_failed_import_removes_its_upload_and_a_succeeded_one_keeps_it(io_project, io_user):
    good = import_job_create(
        project=io_project,
        user=io_user,
        fileobj=io.BytesIO(jsonl({"messages": [user("a"), assistant("b")]})),
        filename="good.jsonl",
        format="openai",
    )
    bad = import_job_create(
        project=io_project,
        user=io_user,
        fileobj=io.BytesIO(b'{"messages": [}\n'),
        filename="bad.jsonl",
        format="openai",
    )
    assert Path(bad.path).is_file(), "kept while the job is pending"

    assert example_import(job=good).status == ImportJob.Status.SUCCEEDED
    assert example_import(job=bad).status == ImportJob.Status.FAILED

    assert Path(good.path).is_file()
    assert not Path(bad.path).exists()


def test_an_import_that_stops_on_an_unexpected_error_removes_its_upload(io_project, io_user, monkeypatch):
    job = import_job_create(
        project=io_project,
        user=io_user,
        fileobj=io.BytesIO(jsonl({"messages": []})),
        filename="d.jsonl",
        format="openai",
    )

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("curation.io.imports._write", boom)
    with pytest.raises(RuntimeError):
        example_import(job=job)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED and not Path(job.path).exists()


def test_a_failed_import_of_a_folder_leaves_the_folder_alone(io_project, io_user, tmp_path):
    from datasets import Dataset

    folder = tmp_path / "odd"
    Dataset.from_dict({"question": ["q"], "answer": ["a"]}).save_to_disk(str(folder))
    job = example_import_path(project=io_project, user=io_user, path=folder, format="hf")

    assert job.status == ImportJob.Status.FAILED
    assert (folder / "state.json").is_file()
