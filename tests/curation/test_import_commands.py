"""The import_examples and export_examples management commands."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from curation.core.services import example_create
from curation.models import Example, ImportJob, Label, Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def io_user(django_user_model):
    return django_user_model.objects.create_user(username="kenji", password="x" * 12)


@pytest.fixture
def io_project() -> Project:
    project = Project.objects.create(name="Support", slug="io-support", kind=Project.Kind.CLASSIFICATION)
    Label.objects.create(project=project, name="billing")
    Label.objects.create(project=project, name="shipping")
    return project


def chat(question: str, answer: str = "OK.", **extra) -> str:
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return json.dumps({"messages": messages, **extra}, ensure_ascii=False) + "\n"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_import_examples_prints_what_it_created_and_records_the_user(io_project, io_user, tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text(chat("請求書", label="billing") + chat("配送") + chat("請求書", label="billing"))

    output = run("import_examples", "io-support", str(path), "--format", "openai", "--user", "kenji")

    assert "read 3 rows, encoding utf-8; created 2, duplicates 1, rows with errors 0." in output
    assert "line 3: duplicate of line 1, skipped" in output
    assert ImportJob.objects.get().created_by == io_user
    assert Example.objects.filter(project=io_project).count() == 2


def test_import_examples_fails_listing_each_error_with_its_line(io_project, tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text(chat("fine") + '{"messages": [}\n' + chat("ok", label="refunds"))
    out = StringIO()

    with pytest.raises(CommandError, match="Nothing was imported: 2 rows have errors"):
        call_command("import_examples", "io-support", str(path), "--format", "openai", stdout=out)

    output = out.getvalue()
    assert "line 2: invalid_json: not valid JSON" in output
    assert 'line 3: unknown_label: label: unknown label "refunds"' in output
    assert not Example.objects.exists()


def test_import_examples_can_skip_bad_rows(io_project, tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text(chat("fine", label="billing") + '{"messages": [}\n')

    output = run("import_examples", "io-support", str(path), "--format", "openai", "--skip-bad-rows")

    assert "created 1" in output and "line 2: invalid_json" in output
    assert Example.objects.count() == 1


def test_import_examples_takes_a_csv_mapping_and_an_encoding(io_project, tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_bytes("本文,分類\nカードが使えません,billing\n".encode("cp932"))

    output = run("import_examples", "io-support", str(path), "--mapping", "text=本文,label=分類", "--encoding", "cp932")

    assert "encoding cp932; created 1" in output
    example = Example.objects.get()
    assert example.messages == [{"role": "user", "content": "カードが使えません"}]
    assert example.label.name == "billing"


def test_import_examples_refuses_an_unknown_project_user_or_option(io_project, tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text(chat("fine"))

    with pytest.raises(CommandError, match="No project"):
        run("import_examples", "nope", str(path))
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        run("import_examples", "io-support", str(path), "--user", "nobody")
    with pytest.raises(CommandError, match="encoding: unknown encoding"):
        run("import_examples", "io-support", str(path), "--encoding", "klingon")
    (tmp_path / "chats.txt").write_text(chat("fine"))
    with pytest.raises(CommandError, match="Cannot tell the format of chats.txt"):
        run("import_examples", "io-support", str(tmp_path / "chats.txt"))
    with pytest.raises(CommandError, match="missing.jsonl: no such file"):
        run("import_examples", "io-support", str(tmp_path / "missing.jsonl"))
    assert not ImportJob.objects.exists()


def test_export_examples_writes_to_stdout_or_to_a_file(io_project, io_user, tmp_path):
    example_create(
        project=io_project,
        user=io_user,
        messages=[{"role": "user", "content": "荷物"}],
        label="shipping",
        split="train",
    )
    example_create(project=io_project, user=io_user, messages=[{"role": "user", "content": "請求"}], label="billing")

    output = run("export_examples", "io-support", "--status", "any", "--format", "openai", "--split", "train")
    assert json.loads(output) == {"messages": [{"role": "user", "content": "荷物"}], "label": "shipping"}

    target = tmp_path / "out.csv"
    run("export_examples", "io-support", "--status", "any", "--format", "csv", "-o", str(target))
    assert target.read_text(encoding="utf-8-sig").splitlines() == [
        "text,label,split",
        "荷物,shipping,train",
        "請求,billing,",
    ]


def test_export_examples_refuses_an_unknown_filter(io_project):
    with pytest.raises(CommandError, match='status: unknown status "done"'):
        run("export_examples", "io-support", "--status", "any", "--format", "openai", "--status", "done")
