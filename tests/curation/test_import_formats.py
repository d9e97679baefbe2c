"""Each import format, read into canonical examples: messages, label, split, metadata and
the line each came from."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from curation.io.imports import example_import, example_import_path, import_job_create
from curation.models import Example, ImportJob, Label, Project

pytestmark = pytest.mark.django_db

JA_Q = "注文した商品がまだ届きません。"
JA_A = "ご迷惑をおかけして申し訳ありません。配送状況を確認します。"


@pytest.fixture
def io_classifier() -> Project:
    project = Project.objects.create(name="Tickets", slug="io-tickets", kind=Project.Kind.CLASSIFICATION)
    Label.objects.create(project=project, name="billing")
    Label.objects.create(project=project, name="shipping")
    return project


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def run_import(project, owner, data: bytes, format: str, filename: str = "data", **options) -> ImportJob:
    job = import_job_create(
        project=project, user=owner, fileobj=io.BytesIO(data), filename=filename, format=format, options=options
    )
    job = example_import(job=job)
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    return job


def stored(project) -> list[tuple]:
    rows = Example.objects.filter(project=project).order_by("source_line", "id")
    return [(e.source_line, e.messages, e.label.name if e.label else None, e.split, e.metadata) for e in rows]


# --- OpenAI ----------------------------------------------------------------------------


def test_openai_jsonl_keeps_label_split_and_puts_unknown_keys_in_metadata(io_project, io_user):
    records = [
        {"messages": [user(JA_Q), assistant(JA_A)], "label": "shipping", "split": "train", "id": "t-1"},
        {"messages": [user("Refund?"), assistant("Done.")], "metadata": {"source": "mail"}, "lang": "en"},
    ]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    job = run_import(io_project, io_user, data, "openai", "chats.jsonl")

    assert stored(io_project) == [
        (1, [user(JA_Q), assistant(JA_A)], "shipping", "train", {"id": "t-1"}),
        (2, [user("Refund?"), assistant("Done.")], None, "unassigned", {"source": "mail", "lang": "en"}),
    ]
    example = Example.objects.get(source_line=1)
    assert example.source == Example.Source.IMPORTED and example.status == Example.Status.NEEDS_REVIEW
    assert example.import_job == job and example.created_by == io_user
    assert example.created_at is not None and example.version == 1
    assert job.rows_read == 2 and job.rows_created == 2 and job.report["encoding"] == "utf-8"
    assert job.progress == 1.0 and job.finished_at is not None and job.error == ""


def test_openai_json_array_gives_each_example_the_line_where_its_element_starts(io_project, io_user):
    records = [{"messages": [user(f"q{i}"), assistant(f"a{i}")]} for i in range(3)]
    data = json.dumps(records, indent=2).encode()
    run_import(io_project, io_user, data, "openai", "chats.json")

    lines = [row[0] for row in stored(io_project)]
    text_lines = data.decode().splitlines()
    assert lines == [2, 14, 26]
    assert all(text_lines[n - 1].strip() == "{" for n in lines)


def test_a_default_split_applies_to_rows_that_name_none(io_project, io_user):
    data = (
        json.dumps({"messages": [user("a"), assistant("b")]})
        + "\n"
        + json.dumps({"messages": [user("c"), assistant("d")], "split": "dev"})
        + "\n"
    ).encode()
    run_import(io_project, io_user, data, "openai", split="test")

    assert [row[3] for row in stored(io_project)] == ["test", "validation"]


# --- Alpaca, ShareGPT, prompt/completion ---------------------------------------------


def test_alpaca_joins_instruction_and_input_and_reads_system_and_history(io_project, io_user):
    records = [
        {"instruction": "英語に翻訳してください", "input": "猫", "output": "cat", "label": "billing"},
        {
            "instruction": "And a dog?",
            "input": "",
            "output": "dog",
            "system": "You translate.",
            "history": [["Translate 鳥", "bird"]],
            "split": "validation",
        },
    ]
    run_import(io_project, io_user, json.dumps(records, ensure_ascii=False).encode(), "alpaca", "a.json")

    assert stored(io_project) == [
        (1, [user("英語に翻訳してください\n\n猫"), assistant("cat")], "billing", "unassigned", {}),
        (
            1,
            [
                {"role": "system", "content": "You translate."},
                user("Translate 鳥"),
                assistant("bird"),
                user("And a dog?"),
                assistant("dog"),
            ],
            None,
            "validation",
            {},
        ),
    ]


def test_alpaca_reads_json_lines_too(io_project, io_user):
    data = b'{"instruction": "Say hi", "output": "Hi"}\n{"instruction": "Say bye", "output": "Bye", "id": 7}\n'
    run_import(io_project, io_user, data, "alpaca", "a.jsonl")

    assert [(r[0], r[1][0]["content"], r[4]) for r in stored(io_project)] == [
        (1, "Say hi", {}),
        (2, "Say bye", {"id": 7}),
    ]


def test_sharegpt_maps_speakers_to_roles(io_project, io_user):
    record = {
        "system": "You are a shop assistant.",
        "conversations": [
            {"from": "human", "value": JA_Q},
            {"from": "function_call", "value": '{"name": "track"}'},
            {"from": "observation", "value": "in transit"},
            {"from": "gpt", "value": JA_A},
            {"role": "user", "content": "Thanks"},
            {"from": "model", "value": "You're welcome."},
        ],
        "label": "shipping",
    }
    run_import(io_project, io_user, json.dumps([record], ensure_ascii=False).encode(), "sharegpt", "s.json")

    [(_, messages, label, _, _)] = stored(io_project)
    assert [(m["role"], m["content"]) for m in messages] == [
        ("system", "You are a shop assistant."),
        ("user", JA_Q),
        ("assistant", ""),  # a function_call turn is a tool call (docs/data-model.md), not text
        ("tool", "in transit"),
        ("assistant", JA_A),
        ("user", "Thanks"),
        ("assistant", "You're welcome."),
    ]
    assert messages[2]["tool_calls"] == [
        {"id": "call_0", "type": "function", "function": {"name": "track", "arguments": "{}"}}
    ]
    assert messages[3]["tool_call_id"] == "call_0"
    assert label == "shipping"


def test_prompt_completion_becomes_a_user_and_an_assistant_message(io_project, io_user):
    data = (
        json.dumps({"prompt": JA_Q, "completion": JA_A}, ensure_ascii=False)
        + "\n"
        + json.dumps({"prompt": [user("2+2?")], "completion": [assistant("4")]})
        + "\n"
    ).encode()
    run_import(io_project, io_user, data, "prompt_completion", "pc.jsonl")

    assert [r[1] for r in stored(io_project)] == [[user(JA_Q), assistant(JA_A)], [user("2+2?"), assistant("4")]]


# --- CSV and TSV -----------------------------------------------------------------------


def test_csv_reads_text_and_label_columns_and_keeps_the_others_as_metadata(io_classifier, io_user):
    data = 'id,text,label,channel\n1,"Card declined, twice",billing,mail\n2,荷物が届かない,shipping,chat\n'.encode()
    run_import(io_classifier, io_user, data, "csv", "t.csv")

    assert stored(io_classifier) == [
        (2, [user("Card declined, twice")], "billing", "unassigned", {"id": "1", "channel": "mail"}),
        (3, [user("荷物が届かない")], "shipping", "unassigned", {"id": "2", "channel": "chat"}),
    ]


def test_csv_rows_with_quoted_line_breaks_keep_the_line_where_they_start(io_classifier, io_user):
    data = b'text,label\n"first line\nsecond line\nthird line",billing\n"one\r\nmore",shipping\nlast,billing\n'
    run_import(io_classifier, io_user, data, "csv", "t.csv")

    assert [(r[0], r[1][0]["content"]) for r in stored(io_classifier)] == [
        (2, "first line\nsecond line\nthird line"),
        (5, "one\r\nmore"),
        (7, "last"),
    ]


def test_csv_mapping_names_the_columns_to_read(io_classifier, io_user):
    data = "Body,Category,Set\nカードが使えません,billing,train\nWhere is it?,shipping,test\n".encode()
    run_import(
        io_classifier, io_user, data, "csv", "t.csv", mapping={"text": "Body", "label": "Category", "split": "Set"}
    )

    assert stored(io_classifier) == [
        (2, [user("カードが使えません")], "billing", "train", {}),
        (3, [user("Where is it?")], "shipping", "test", {}),
    ]


def test_a_mapping_given_as_text_is_accepted(io_classifier, io_user):
    job = run_import(
        io_classifier, io_user, b"Body,Category\nhello,billing\n", "csv", mapping="text=Body, label=Category"
    )

    assert job.options["mapping"] == {"text": "Body", "label": "Category"}
    assert stored(io_classifier) == [(2, [user("hello")], "billing", "unassigned", {})]


def test_csv_instruction_input_output_columns_read_like_alpaca(io_project, io_user):
    data = b"system,instruction,input,output\nBe brief.,Summarise,Long text here,Short.\n,Say hi,,Hi\n"
    run_import(io_project, io_user, data, "csv", "t.csv")

    assert [r[1] for r in stored(io_project)] == [
        [{"role": "system", "content": "Be brief."}, user("Summarise\n\nLong text here"), assistant("Short.")],
        [user("Say hi"), assistant("Hi")],
    ]


def test_tsv_and_other_delimiters(io_classifier, io_user):
    run_import(io_classifier, io_user, "text\tlabel\nタブ区切り, with a comma\tbilling\n".encode(), "tsv", "t.tsv")
    run_import(io_classifier, io_user, b"text;label\nsemicolons, too;shipping\n", "csv", "t.csv", delimiter=";")

    assert sorted(r[1][0]["content"] for r in stored(io_classifier)) == ["semicolons, too", "タブ区切り, with a comma"]


JA_CSV = "text,label\n請求書を再発行してください,billing\n配送先を変更したい,shipping\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (JA_CSV.encode("utf-8"), "utf-8"),
        (JA_CSV.encode("utf-8-sig"), "utf-8-sig"),
        (JA_CSV.encode("utf-16"), "utf-16"),
        (JA_CSV.encode("cp932"), "cp932"),
        (JA_CSV.replace("\n", "\r\n").encode("cp932"), "cp932"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16", "cp932", "cp932-crlf"],
)
def test_csv_encodings_are_detected_and_japanese_survives(io_classifier, io_user, data, encoding):
    job = run_import(io_classifier, io_user, data, "csv", "ja.csv")

    assert job.report["encoding"] == encoding
    assert [(r[0], r[1][0]["content"], r[2]) for r in stored(io_classifier)] == [
        (2, "請求書を再発行してください", "billing"),
        (3, "配送先を変更したい", "shipping"),
    ]


def test_an_explicit_encoding_overrides_detection(io_classifier, io_user):
    # These bytes decode as UTF-8 too ("縺ｯ" mojibake is what detection avoids guessing).
    data = "text,label\nテスト,billing\n".encode("cp932")
    job = run_import(io_classifier, io_user, data, "csv", "ja.csv", encoding="cp932")

    assert job.report["encoding"] == "cp932"
    assert stored(io_classifier)[0][1] == [user("テスト")]


def test_a_shift_jis_file_read_as_utf_8_reports_each_undecodable_line(io_classifier, io_user):
    data = JA_CSV.encode("cp932")
    job = import_job_create(
        project=io_classifier,
        user=io_user,
        fileobj=io.BytesIO(data),
        filename="ja.csv",
        format="csv",
        options={"encoding": "utf-8"},
    )
    job = example_import(job=job)

    assert job.status == ImportJob.Status.FAILED
    assert [(e["line"], e["code"]) for e in job.report["errors"]] == [
        (2, "undecodable_bytes"),
        (3, "undecodable_bytes"),
    ]


# --- Hugging Face ----------------------------------------------------------------------


@pytest.fixture
def hf_chats(tmp_path) -> Path:
    from datasets import Dataset

    folder = tmp_path / "chats"
    Dataset.from_list(
        [
            {"messages": [user(JA_Q), assistant(JA_A)], "label": "shipping"},
            {"messages": [user("Invoice?"), {"role": "assistant", "content": "Sent.", "name": "bot"}], "label": None},
        ]
    ).save_to_disk(str(folder))
    return folder


@pytest.fixture
def hf_tickets(tmp_path) -> Path:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"text": Value("string"), "label": ClassLabel(names=["billing", "shipping"])})
    splits = {
        "train": Dataset.from_dict({"text": ["請求書", "配送"], "label": [0, 1]}, features=features),
        "valid": Dataset.from_dict({"text": ["返金"], "label": [0]}, features=features),
        "extra": Dataset.from_dict({"text": ["その他", "未分類"], "label": [1, -1]}, features=features),
    }
    folder = tmp_path / "tickets"
    DatasetDict(splits).save_to_disk(str(folder))
    return folder


def test_a_save_to_disk_folder_is_read_as_openai_chats(io_project, io_user, hf_chats):
    job = example_import_path(project=io_project, user=io_user, path=hf_chats, format="hf")

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert job.path == str(hf_chats.resolve())  # a folder is read where it is
    assert stored(io_project) == [
        (1, [user(JA_Q), assistant(JA_A)], "shipping", "unassigned", {}),
        # Arrow gives every message every key; the ones a message did not have are dropped.
        (2, [user("Invoice?"), {"role": "assistant", "content": "Sent.", "name": "bot"}], None, "unassigned", {}),
    ]


def test_a_dataset_dict_gives_splits_and_class_label_names(io_classifier, io_user, hf_tickets):
    job = example_import_path(project=io_classifier, user=io_user, path=hf_tickets, format="hf")

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert stored(io_classifier) == [
        (1, [user("請求書")], "billing", "train", {}),
        (2, [user("配送")], "shipping", "train", {}),
        (3, [user("返金")], "billing", "validation", {}),
        (4, [user("その他")], "shipping", "unassigned", {"hf_split": "extra"}),
        (5, [user("未分類")], None, "unassigned", {"hf_split": "extra"}),  # -1: no label
    ]


def test_a_zipped_save_to_disk_folder_is_read_without_unpacking(io_classifier, io_user, hf_tickets, tmp_path):
    archive = shutil.make_archive(str(tmp_path / "tickets"), "zip", root_dir=tmp_path, base_dir="tickets")
    job = run_import(io_classifier, io_user, Path(archive).read_bytes(), "hf", "tickets.zip")

    assert job.rows_created == 5
    assert [r[3] for r in stored(io_classifier)] == ["train", "train", "validation", "unassigned", "unassigned"]
    assert not (Path(job.path).parent / "tickets").exists()


def test_a_parquet_file_is_read_in_batches(io_classifier, io_user, tmp_path, settings):
    from datasets import Dataset

    path = tmp_path / "t.parquet"
    Dataset.from_dict({"text": [f"チケット {i}" for i in range(4500)], "label": ["billing"] * 4500}).to_parquet(path)
    calls: list[tuple[float, int]] = []
    job = import_job_create(
        project=io_classifier, user=io_user, fileobj=path.open("rb"), filename="t.parquet", format="parquet"
    )
    job = example_import(job=job, progress=lambda fraction, rows: calls.append((fraction, rows)))

    assert job.status == ImportJob.Status.SUCCEEDED and job.format == "hf"
    assert job.rows_created == 4500
    assert [rows for _, rows in calls] == [2000, 4000, 4500]
    assert all(0 <= fraction <= 1 for fraction, _ in calls)
    assert Example.objects.get(source_line=4500).messages == [user("チケット 4499")]


def test_a_dataset_of_an_unknown_shape_is_reported(io_project, io_user, tmp_path):
    from datasets import Dataset

    folder = tmp_path / "odd"
    Dataset.from_dict({"question": ["q"], "answer": ["a"]}).save_to_disk(str(folder))
    job = example_import_path(project=io_project, user=io_user, path=folder, format="hf")

    assert job.status == ImportJob.Status.FAILED
    [error] = job.report["errors"]
    assert (error["line"], error["code"]) == (1, "missing_column")
    assert "question, answer" in error["message"]


# --- the job ---------------------------------------------------------------------------


def test_the_upload_is_copied_under_the_projects_folder(io_project, io_user, io_uploads):
    job = import_job_create(
        project=io_project,
        user=io_user,
        fileobj=io.BytesIO(b'{"messages": []}\n'),
        filename="../../etc/my chats.jsonl",
        format="jsonl",
        options={"skip_bad_rows": "on", "encoding": "auto"},
    )

    path = Path(job.path)
    assert path.parent == io_uploads / io_project.slug
    assert path.name.endswith("-my_chats.jsonl")
    assert path.read_bytes() == b'{"messages": []}\n'
    assert job.status == ImportJob.Status.PENDING and job.format == "openai" and job.filename == "my chats.jsonl"
    assert job.options == {"skip_bad_rows": True, "encoding": "auto"}
    assert job.created_by == io_user


def test_progress_is_reported_after_every_batch(io_project, io_user):
    data = "".join(json.dumps({"messages": [user(f"q{i}"), assistant("a")]}) + "\n" for i in range(4100)).encode()
    job = import_job_create(project=io_project, user=io_user, fileobj=io.BytesIO(data), filename="d", format="openai")
    calls: list[tuple[float, int]] = []

    job = example_import(job=job, progress=lambda fraction, rows: calls.append((fraction, rows)))

    assert [rows for _, rows in calls] == [2000, 4000, 4100]
    fractions = [fraction for fraction, _ in calls]
    assert fractions == sorted(fractions) and 0 < fractions[0] < 1 and fractions[-1] == 1.0


def test_an_import_runs_a_few_queries_per_batch_not_one_per_row(io_project, io_user, django_assert_max_num_queries):
    data = "".join(
        json.dumps({"messages": [user(f"q{i}"), assistant("a")], "label": "billing"}) + "\n" for i in range(5000)
    ).encode()
    job = import_job_create(project=io_project, user=io_user, fileobj=io.BytesIO(data), filename="d", format="openai")

    with django_assert_max_num_queries(20):
        job = example_import(job=job)

    assert Example.objects.filter(label__name="billing").count() == 5000


def test_running_a_finished_job_again_imports_nothing_more(io_project, io_user):
    data = b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n'
    job = run_import(io_project, io_user, data, "openai")

    example_import(job=job)

    assert Example.objects.count() == 1


def test_importing_a_file_by_path_copies_it_and_runs_the_job(io_project, io_user, tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text(json.dumps({"messages": [user(JA_Q), assistant(JA_A)]}, ensure_ascii=False) + "\n")

    job = example_import_path(project=io_project, user=io_user, path=path, format="openai", options=None)

    assert job.status == ImportJob.Status.SUCCEEDED and job.rows_created == 1
    assert Path(job.path) != path and Path(job.path).read_bytes() == path.read_bytes()


# --- reading large files in chunks -----------------------------------------------------


@pytest.mark.parametrize("chunk", [5, 64, 4096])
def test_a_json_array_is_read_across_chunk_boundaries(io_project, io_user, monkeypatch, chunk):
    from curation.formats import reading

    monkeypatch.setattr(reading, "CHUNK_CHARS", chunk)
    records = [
        {"messages": [user(f'質問 {i} \\ "quoted"'), assistant(f"回答 {i}")], "score": 12345 + i, "ok": i % 2 == 0}
        for i in range(40)
    ]
    text = json.dumps(records, indent=2, ensure_ascii=False)
    run_import(io_project, io_user, text.encode(), "openai", "big.json")

    rows = stored(io_project)
    lines = text.splitlines()
    assert [r[1] for r in rows] == [r["messages"] for r in records]
    assert [r[4] for r in rows] == [{"score": r["score"], "ok": r["ok"]} for r in records]
    assert all(lines[r[0] - 1] == "  {" for r in rows)
    assert [r[0] for r in rows] == [2 + 14 * i for i in range(40)]  # each element spans 14 lines


@pytest.mark.parametrize("chunk", [5, 4096])
def test_a_broken_element_of_a_json_array_does_not_hide_the_rows_after_it(io_project, io_user, monkeypatch, chunk):
    from curation.formats import reading

    monkeypatch.setattr(reading, "CHUNK_CHARS", chunk)
    good = json.dumps({"messages": [user("q"), assistant("a")]})
    text = "[\n" + good + ',\n{"messages": [{"role": "user" "content": "{[x"}]},\n' + good.replace("q", "r") + "\n]\n"
    job = import_job_create(
        project=io_project, user=io_user, fileobj=io.BytesIO(text.encode()), filename="d.json", format="openai"
    )
    job = example_import(job=job)

    assert [(e["line"], e["code"]) for e in job.report["errors"]] == [(3, "invalid_json")]
    assert job.rows_read == 3


def test_a_large_jsonl_file_keeps_every_line_number(io_project, io_user):
    data = "".join(
        json.dumps({"messages": [user(f"q{i}"), assistant("a" * (i % 500 + 1))]}) + "\n" + ("\n" if i % 7 == 0 else "")
        for i in range(3000)
    ).encode()
    run_import(io_project, io_user, data, "openai", "big.jsonl")

    text_lines = data.decode().splitlines()
    rows = stored(io_project)
    assert len(rows) == 3000
    assert all(json.loads(text_lines[line - 1])["messages"] == messages for line, messages, *_ in rows)
