"""Every error code of the import report: a file that triggers it, the line and code in the
report, and not one example written."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from curation.core.services import InvalidExample, example_create
from curation.io.imports import example_import, import_job_create
from curation.models import Example, ImportJob, Project

pytestmark = pytest.mark.django_db


def chat(question: str, answer: str = "I can help with that.", **extra) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], **extra}


def jsonl(*records) -> bytes:
    """Records (dicts dumped as JSON, or raw text lines) as JSON Lines."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    return ("\n".join(lines) + "\n").encode("utf-8")


def run_import(project, user, data: bytes, format: str = "openai", filename: str = "data.jsonl", **options):
    job = import_job_create(
        project=project, user=user, fileobj=io.BytesIO(data), filename=filename, format=format, options=options
    )
    return example_import(job=job)


def codes(job: ImportJob) -> list[tuple[int, str]]:
    return [(e["line"], e["code"]) for e in job.report["errors"]]


def assert_rejected(job: ImportJob, line: int, code: str) -> dict:
    """The job failed, reported ``code`` at ``line``, and wrote nothing; returns the error."""
    assert job.status == ImportJob.Status.FAILED
    assert (line, code) in codes(job), job.report["errors"]
    assert job.rows_created == 0
    assert not Example.objects.exists()
    assert job.error
    return next(e for e in job.report["errors"] if (e["line"], e["code"]) == (line, code))


def test_it_reports_the_line_of_invalid_json(io_project, io_user):
    job = run_import(io_project, io_user, jsonl(chat("fine"), '{"messages": [}', chat("also fine")))

    error = assert_rejected(job, 2, "invalid_json")
    assert "column 15" in error["message"]
    assert job.rows_read == 3 and job.rows_invalid == 1


def test_it_rejects_a_record_that_is_not_an_object(io_project, io_user):
    job = run_import(io_project, io_user, jsonl(chat("fine"), "[1, 2]", '"text"'))

    error = assert_rejected(job, 2, "not_an_object")
    assert "found a list" in error["message"]
    assert (3, "not_an_object") in codes(job)


def test_it_reports_missing_messages_and_messages_that_are_not_a_list(io_project, io_user):
    job = run_import(io_project, io_user, jsonl(chat("fine"), {"label": "billing"}, {"messages": "hello"}))

    assert_rejected(job, 2, "missing_messages")
    error = assert_rejected(job, 3, "missing_messages")
    assert "found text" in error["message"]


def test_it_reports_an_empty_list_of_messages(io_project, io_user):
    job = run_import(io_project, io_user, jsonl({"messages": []}))

    assert_rejected(job, 1, "empty_messages")


def test_it_reports_a_message_without_a_role(io_project, io_user):
    record = {"messages": [{"content": "hi"}, {"role": "assistant", "content": "hello"}]}
    job = run_import(io_project, io_user, jsonl(chat("fine"), record))

    error = assert_rejected(job, 2, "missing_role")
    assert error["field"] == "messages[0].role"


def test_it_reports_a_message_without_content(io_project, io_user):
    record = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant"}]}
    job = run_import(io_project, io_user, jsonl(record))

    error = assert_rejected(job, 1, "missing_content")
    assert error["field"] == "messages[1].content"


def test_it_reports_an_unrecognised_message_key(io_project, io_user):
    record = chat("hi")
    record["messages"][1]["score"] = 5
    job = run_import(io_project, io_user, jsonl(chat("fine"), chat("ok"), record))

    error = assert_rejected(job, 3, "unrecognised_key")
    assert error["field"] == "messages[1].score"
    assert "role, content, name, weight" in error["message"]


def test_it_accepts_the_optional_openai_message_keys(io_project, io_user):
    record = {
        "messages": [
            {"role": "user", "content": "Weather in Tokyo?", "name": "aki"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Tokyo"}'}}
                ],
            },
            {"role": "tool", "content": "18C", "tool_call_id": "c1"},
            {"role": "assistant", "content": "18 degrees.", "weight": 1},
        ]
    }
    job = run_import(io_project, io_user, jsonl(record))

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    # A tool-call turn without text is stored with empty content (docs/data-model.md).
    expected = [dict(m, content="") if m["content"] is None else m for m in record["messages"]]
    assert Example.objects.get().messages == expected


def test_it_reports_the_line_of_an_unrecognised_role(io_project, io_user):
    record = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "bot", "content": "hello"},
        ]
    }
    job = run_import(io_project, io_user, jsonl(chat("one"), chat("two"), chat("three"), record))

    error = assert_rejected(job, 4, "unrecognised_role")
    assert error["field"] == "messages[2].role"
    assert error["message"] == 'unrecognised role "bot"; expected one of system, user, assistant, tool, function'


def test_it_reports_empty_and_whitespace_only_content(io_project, io_user):
    job = run_import(io_project, io_user, jsonl(chat(""), chat("fine"), chat("question", " \n\t ")))

    assert_rejected(job, 1, "empty_content")
    error = assert_rejected(job, 3, "empty_content")
    assert error["field"] == "messages[1].content"


def test_it_reports_a_chat_without_an_assistant_message(io_project, io_user):
    job = run_import(io_project, io_user, jsonl(chat("fine"), {"messages": [{"role": "user", "content": "hi"}]}))

    assert_rejected(job, 2, "no_assistant_message")


def test_a_classification_project_needs_no_assistant_message(io_project, io_user):
    io_project.kind = Project.Kind.CLASSIFICATION
    io_project.save()
    job = run_import(io_project, io_user, jsonl({"messages": [{"role": "user", "content": "hi"}], "label": "billing"}))

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert Example.objects.get().label.name == "billing"


def test_it_reports_a_jsonl_file_cut_off_in_its_last_record(io_project, io_user):
    data = jsonl(chat("fine"), chat("also fine")) + b'{"messages": [{"role": "user", "content": "cut o'
    job = run_import(io_project, io_user, data)

    assert_rejected(job, 3, "truncated_file")


def test_it_reports_a_json_array_cut_off_at_the_end_of_the_file(io_project, io_user):
    text = json.dumps([chat("one"), chat("two"), chat("three")], indent=2)
    job = run_import(io_project, io_user, text[: text.rindex("three")].encode(), filename="data.json")

    # The third element starts on line 26 of the indented file.
    assert text.splitlines()[25].strip() == "{"
    assert_rejected(job, 26, "truncated_file")
    assert job.rows_read == 3


def test_it_reports_a_csv_file_ending_inside_a_quoted_field(io_project, io_user):
    data = b'text,label\nhello,billing\n"unterminated\nquote,shipping\n'
    job = run_import(io_project, io_user, data, format="csv", filename="data.csv")

    assert_rejected(job, 3, "truncated_file")


def test_it_reports_the_line_of_undecodable_bytes(io_project, io_user):
    good = jsonl(chat("請求書を送ってください"), chat("配送はいつですか"))
    bad = '{"messages": [{"role": "user", "content": "壊れた'.encode() + b"\xff\xfe" + b'"}]}\n'
    job = run_import(io_project, io_user, good + bad + jsonl(chat("ありがとう")))

    error = assert_rejected(job, 3, "undecodable_bytes")
    assert "utf-8" in error["message"]
    assert job.report["encoding"] == "utf-8"


def test_it_reports_undecodable_bytes_in_a_csv_file_at_their_line(io_project, io_user):
    data = "text,label\n請求書,billing\n配送,shipping\n".encode() + b"bad \xff byte,billing\n"
    job = run_import(io_project, io_user, data, format="csv", filename="data.csv")

    assert_rejected(job, 4, "undecodable_bytes")


def test_it_reports_a_nul_byte_in_a_line(io_project, io_user):
    job = run_import(io_project, io_user, jsonl(chat("fine"), chat("nul")) + b"\x00\n")

    # The NUL is on line 3, on its own after the second record.
    assert_rejected(job, 3, "nul_byte")


def test_it_reports_an_escaped_nul_character_in_content(io_project, io_user):
    job = run_import(io_project, io_user, jsonl(chat("before\u0000after")))

    error = assert_rejected(job, 1, "nul_byte")
    assert error["field"] == "messages[0].content"


def test_it_reports_a_label_the_project_does_not_have_and_lists_the_valid_ones(io_project, io_user):
    job = run_import(io_project, io_user, jsonl(chat("a", label="billing"), chat("b", label="refunds")))

    error = assert_rejected(job, 2, "unknown_label")
    assert '"refunds"' in error["message"] and "billing, shipping" in error["message"]


def test_it_reports_a_mapped_column_missing_from_the_header_on_line_1(io_project, io_user):
    data = b"Body,Category\nhello,billing\n"
    job = run_import(
        io_project, io_user, data, format="csv", filename="d.csv", mapping={"text": "Body", "label": "Kind"}
    )

    error = assert_rejected(job, 1, "missing_column")
    assert '"Kind"' in error["message"] and '"Body", "Category"' in error["message"]


def test_it_reports_a_csv_without_a_text_or_instruction_column(io_project, io_user):
    job = run_import(io_project, io_user, b"Body,Category\nhello,billing\n", format="csv", filename="d.csv")

    assert_rejected(job, 1, "missing_column")


@pytest.mark.parametrize(
    ("format", "record", "field"),
    [
        ("alpaca", {"instruction": "Translate to English", "input": "猫"}, "output"),
        ("alpaca", {"output": "cat"}, "instruction"),
        ("prompt_completion", {"prompt": "2+2="}, "completion"),
        ("sharegpt", {"system": "Be brief."}, "conversations"),
    ],
)
def test_it_reports_a_missing_field_of_the_format(io_project, io_user, format, record, field):
    good = {
        "alpaca": {"instruction": "Say hi", "output": "Hi"},
        "prompt_completion": {"prompt": "1+1=", "completion": "2"},
        "sharegpt": {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
    }[format]
    job = run_import(io_project, io_user, jsonl(good, record), format=format)

    error = assert_rejected(job, 2, "missing_field")
    assert error["field"] == field


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (chat("hi", metadata="not an object"), "metadata"),
        (chat("hi", label=3), "label"),
        (chat("hi", split="holdout"), "split"),
        (
            {"messages": [{"role": "user", "content": ["a", "b"]}, {"role": "assistant", "content": "x"}]},
            "messages[0].content",
        ),
    ],
)
def test_it_reports_a_field_of_the_wrong_type(io_project, io_user, record, field):
    job = run_import(io_project, io_user, jsonl(chat("fine"), record))

    error = assert_rejected(job, 2, "invalid_field")
    assert error["field"] == field


def test_it_reports_a_sharegpt_speaker_it_does_not_know(io_project, io_user):
    record = {"conversations": [{"from": "human", "value": "hi"}, {"from": "robot", "value": "beep"}]}
    job = run_import(io_project, io_user, jsonl(record), format="sharegpt")

    error = assert_rejected(job, 1, "unrecognised_role")
    assert error["field"] == "conversations[1].from" and '"robot"' in error["message"]


def test_it_reports_a_row_over_the_row_size_limit(io_project, io_user, settings):
    settings.SHIKOMI_MAX_ROW_BYTES = 300
    job = run_import(io_project, io_user, jsonl(chat("short"), chat("long " * 200), chat("short too")))

    error = assert_rejected(job, 2, "row_too_large")
    assert "300 bytes" in error["message"]
    assert job.rows_invalid == 1  # the rows around it were read as usual


def test_it_reports_an_element_of_a_json_array_over_the_row_size_limit(io_project, io_user, settings):
    settings.SHIKOMI_MAX_ROW_BYTES = 300
    text = "[\n" + ",\n".join(json.dumps(r) for r in (chat("short"), chat("long " * 200), chat("also short"))) + "\n]"
    job = run_import(io_project, io_user, text.encode(), filename="data.json")

    assert_rejected(job, 3, "row_too_large")
    assert job.rows_read == 3 and job.rows_invalid == 1


def test_it_refuses_an_upload_over_the_size_limit_before_reading_it(io_project, io_user, settings, io_uploads):
    settings.SHIKOMI_MAX_UPLOAD_BYTES = 100
    upload = SimpleUploadedFile("big.jsonl", jsonl(chat("hello " * 50)))
    with pytest.raises(InvalidExample) as raised:
        import_job_create(project=io_project, user=io_user, fileobj=upload, filename="big.jsonl", format="openai")

    assert raised.value.field == "file"
    assert "100 bytes" in raised.value.message and f"({upload.size} bytes)" in raised.value.message
    assert not ImportJob.objects.exists()
    assert not list(io_uploads.rglob("*.jsonl"))


def test_it_stops_copying_a_stream_once_it_passes_the_size_limit(io_project, io_user, settings, io_uploads):
    settings.SHIKOMI_MAX_UPLOAD_BYTES = 100
    with pytest.raises(InvalidExample) as raised:
        run_import(io_project, io_user, jsonl(chat("hello " * 50)))

    assert raised.value.field == "file" and "larger than 100 bytes" in raised.value.message
    assert not ImportJob.objects.exists()
    assert not list(io_uploads.rglob("*.jsonl"))


def test_it_reports_a_file_over_the_size_limit_when_the_job_runs(io_project, io_user, settings):
    job = import_job_create(
        project=io_project,
        user=io_user,
        fileobj=io.BytesIO(jsonl(chat("hello " * 50))),
        filename="d.jsonl",
        format="openai",
    )
    settings.SHIKOMI_MAX_UPLOAD_BYTES = 100

    job = example_import(job=job)

    error = assert_rejected(job, 0, "file_too_large")
    assert "100 bytes" in error["message"]


@pytest.mark.parametrize(
    ("format", "data"),
    [("openai", b""), ("openai", b"\n  \n"), ("alpaca", b"[]"), ("csv", b"text,label\n")],
)
def test_it_reports_a_file_with_no_rows(io_project, io_user, format, data):
    job = run_import(io_project, io_user, data, format=format, filename="empty")

    assert_rejected(job, 0, "empty_file")
    assert job.error == "Nothing was imported: the file has no examples."


def test_it_checks_every_row_and_reports_them_all(io_project, io_user):
    records = [chat(f"question {i}") for i in range(10)]
    records[2] = {"messages": []}
    records[5] = '{"broken'
    records[8] = chat("refund?", label="refunds")
    job = run_import(io_project, io_user, jsonl(*records))

    assert codes(job) == [(3, "empty_messages"), (6, "invalid_json"), (9, "unknown_label")]
    assert job.rows_read == 10 and job.rows_invalid == 3 and job.rows_created == 0
    assert not Example.objects.exists()
    assert job.error.startswith("Nothing was imported: 3 rows have errors. First, line 3: messages:")


def test_the_report_keeps_a_thousand_errors_and_counts_them_all(io_project, io_user):
    job = run_import(io_project, io_user, jsonl(*[{"messages": []} for _ in range(1200)]))

    assert len(job.report["errors"]) == 1000
    assert job.report["errors_total"] == 1200
    assert job.rows_invalid == 1200


def test_skipping_bad_rows_writes_the_good_ones_and_lists_the_skipped_lines(io_project, io_user):
    data = jsonl(chat("one"), '{"messages": [}', chat("three"), chat("four", label="refunds"), chat("five"))
    job = run_import(io_project, io_user, data, skip_bad_rows=True)

    assert job.status == ImportJob.Status.SUCCEEDED
    assert job.report["skipped_lines"] == [2, 4]
    assert codes(job) == [(2, "invalid_json"), (4, "unknown_label")]
    assert job.rows_created == 3 and job.rows_invalid == 2
    assert sorted(Example.objects.values_list("source_line", flat=True)) == [1, 3, 5]


def test_skipping_bad_rows_still_fails_when_no_row_is_good(io_project, io_user):
    job = run_import(io_project, io_user, jsonl({"messages": []}, "[]"), skip_bad_rows=True)

    assert job.status == ImportJob.Status.FAILED
    assert not Example.objects.exists()


def test_duplicates_in_the_file_and_in_the_project_are_skipped_and_reported(io_project, io_user):
    existing = example_create(project=io_project, user=io_user, messages=chat("already here")["messages"])
    job = run_import(io_project, io_user, jsonl(chat("new"), chat("already here"), chat("other"), chat("new")))

    assert job.status == ImportJob.Status.SUCCEEDED
    assert job.report["duplicates"] == [
        {"line": 2, "duplicate_of": f"example {existing.pk}"},
        {"line": 4, "duplicate_of": "line 1"},
    ]
    assert job.report["duplicates_total"] == 2 and job.rows_duplicate == 2
    assert job.rows_created == 2
    assert Example.objects.filter(project=io_project).count() == 3


def test_duplicates_are_found_after_the_first_error_too(io_project, io_user):
    job = run_import(io_project, io_user, jsonl(chat("a"), {"messages": []}, chat("b"), chat("b"), chat("a")))

    assert job.status == ImportJob.Status.FAILED
    assert job.report["duplicates"] == [{"line": 4, "duplicate_of": "line 3"}, {"line": 5, "duplicate_of": "line 1"}]
    assert not Example.objects.exists()


def test_a_duplicate_of_an_example_of_another_project_is_imported(io_project, io_user):
    other = Project.objects.create(name="Other", slug="io-other")
    example_create(project=other, user=io_user, messages=chat("shared")["messages"])
    job = run_import(io_project, io_user, jsonl(chat("shared")))

    assert job.rows_created == 1 and job.rows_duplicate == 0


def test_an_unexpected_error_fails_the_job_leaves_no_example_and_is_raised(io_project, io_user):
    job = import_job_create(
        project=io_project,
        user=io_user,
        fileobj=io.BytesIO(jsonl(*[chat(f"q{i}") for i in range(5000)])),
        filename="d.jsonl",
        format="openai",
    )
    calls = []

    def progress(fraction: float, rows: int) -> None:
        calls.append(rows)
        if rows >= 4000:
            raise RuntimeError("worker stopped")

    with pytest.raises(RuntimeError):
        example_import(job=job, progress=progress)

    job.refresh_from_db()
    assert job.status == ImportJob.Status.FAILED
    assert "worker stopped" in job.error
    assert calls == [2000, 4000]
    assert not Example.objects.exists()


@pytest.mark.parametrize(
    ("format", "options", "field"),
    [
        ("yaml", {}, "format"),
        ("csv", {"mapping": ["text", "Body"]}, "mapping"),
        ("csv", {"mapping": {"body": "Body"}}, "mapping"),
        ("csv", {"mapping": {"text": "A", "instruction": "B"}}, "mapping"),
        ("openai", {"encoding": "klingon-8"}, "encoding"),
        ("openai", {"mapping": {"instruction": "Body"}}, "mapping"),
        ("openai", {"colour": "red"}, "colour"),
        ("openai", {"split": "holdout"}, "split"),
        ("csv", {"delimiter": ";;"}, "delimiter"),
    ],
)
def test_it_refuses_a_bad_format_or_option_when_creating_the_job(io_project, io_user, format, options, field):
    with pytest.raises(InvalidExample) as raised:
        import_job_create(
            project=io_project, user=io_user, fileobj=io.BytesIO(b"{}"), filename="d", format=format, options=options
        )

    assert raised.value.field == field
    assert not ImportJob.objects.exists()


def test_it_counts_what_a_zip_unpacks_to_against_the_size_limit(io_project, io_user, settings):
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/data-00000-of-00001.arrow", b"\0" * 50_000)
    settings.SHIKOMI_MAX_UPLOAD_BYTES = 10_000
    assert len(buffer.getvalue()) < 10_000  # the upload itself is small

    job = run_import(io_project, io_user, buffer.getvalue(), format="hf", filename="dataset.zip")

    error = assert_rejected(job, 0, "file_too_large")
    assert "10.0 KB" in error["message"] or "10000 bytes" in error["message"]
