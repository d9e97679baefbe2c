"""An export "with Shikomi fields" says where each label came from (``label_source``): a person,
or a rule set version with the model the label was taken from and its confidence; nothing for an
example without a label. Every export format writes it (JSON formats as an object, CSV/TSV and
Parquet as JSON text), and importing the file gives back the same examples with the labels as a
person's: the field is Shikomi's own, never metadata, never a rule label in the new project."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from curation.core.services import example_create
from curation.io.exports import example_export, export_preview
from curation.io.imports import example_import_path
from curation.models import Example, ImportJob, Label, Project, RuleRun, WeakLabel
from curation.rules.selectors import label_source

pytestmark = pytest.mark.django_db

# (export format, import format)
FORMATS = [
    ("openai", "openai"),
    ("alpaca", "alpaca"),
    ("sharegpt", "sharegpt"),
    ("prompt_completion", "prompt_completion"),
    ("csv", "csv"),
    ("tsv", "tsv"),
    ("parquet", "hf"),
]


def chat(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def make_project(slug: str) -> Project:
    project = Project.objects.create(name=slug, slug=slug, kind=Project.Kind.CHAT)
    Label.objects.create(project=project, name="billing")
    Label.objects.create(project=project, name="shipping")
    return project


def accept(example: Example, run: RuleRun, label: str, source: str, confidence: float, share: float) -> None:
    """What accepting a weak label leaves behind: the label set, and the weak label it came from."""
    weak = WeakLabel.objects.create(
        run=run,
        example=example,
        label=Label.objects.get(project=example.project, name=label),
        confidence=confidence,
        majority_label=Label.objects.get(project=example.project, name=label),
        majority_confidence=share,
        accepted_from=source,
    )
    Example.objects.filter(pk=example.pk).update(label=weak.label, weak_label=weak)


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user(username="sourcer", password="x" * 12)


@pytest.fixture
def labeled(owner) -> tuple[Project, dict[str, Example]]:
    """A person's label, a label from the label model of rule set v3, one from majority vote of
    rule set v2, and an example without a label."""
    project = make_project("label-sources")
    made = {
        "person": example_create(
            project=project,
            user=owner,
            messages=chat("請求書を再発行できますか？", "はい、すぐにお送りします。"),
            label="billing",
            split="train",
            metadata={"ticket": "T-1"},
        ),
        "label model": example_create(
            project=project, user=owner, messages=chat("Where is my parcel?", "It left the depot."), split="test"
        ),
        "majority": example_create(
            project=project, user=owner, messages=chat("荷物はどこ？", "配送中です。"), split="validation"
        ),
        "none": example_create(project=project, user=owner, messages=chat("Hi", "Hello! How can I help?")),
    }
    v2 = RuleRun.objects.create(project=project, number=2, status=RuleRun.Status.DONE)
    v3 = RuleRun.objects.create(project=project, number=3, status=RuleRun.Status.DONE)
    accept(made["label model"], v3, "shipping", WeakLabel.Source.LABEL_MODEL, confidence=0.93, share=1.0)
    accept(made["majority"], v2, "shipping", WeakLabel.Source.MAJORITY, confidence=0.55, share=0.67)
    Example.objects.filter(pk=made["person"].pk).update(status=Example.Status.APPROVED)
    return project, {name: Example.objects.get(pk=e.pk) for name, e in made.items()}


EXPECTED = {
    "person": {"source": "person"},
    "label model": {"source": "rules", "rule_set": 3, "model": "label_model", "probability": 0.93},
    "majority": {"source": "rules", "rule_set": 2, "model": "majority", "probability": 0.67},
    "none": None,
}


def export_file(tmp_path: Path, project: Project, format: str, **options: Any) -> Path:
    export = example_export(project=project, format=format, status="any", **options)
    assert export.skipped == {}
    path = tmp_path / export.filename
    path.write_bytes(b"".join(export.chunks))
    return path


def records(path: Path, format: str) -> list[dict[str, Any]]:
    """The file's records as dicts, label_source decoded where it is JSON text."""
    if format in ("openai", "prompt_completion"):
        return [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    if format in ("alpaca", "sharegpt"):
        return json.loads(path.read_text("utf-8"))
    if format in ("csv", "tsv"):
        text = path.read_text("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text), delimiter="," if format == "csv" else "\t"))
        # compact JSON text, or an empty cell without a label
        return [{**r, "id": int(r["id"]), "label_source": json.loads(r["label_source"] or "null")} for r in rows]
    table = pq.read_table(path)
    assert str(table.schema.field("label_source").type) == "string"
    return [{**r, "label_source": json.loads(r["label_source"] or "null")} for r in table.to_pylist()]


@pytest.mark.parametrize(("export_format", "import_format"), FORMATS)
def test_every_format_writes_the_label_source_and_the_import_leaves_it_out(
    tmp_path, owner, labeled, export_format, import_format
):
    project, made = labeled

    path = export_file(tmp_path, project, export_format, shikomi_fields=True)

    by_id = {r["id"]: r["label_source"] for r in records(path, export_format)}
    assert by_id == {e.pk: EXPECTED[name] for name, e in made.items()}
    # The same notion as the examples browser's filter and the API's label_source.
    examples = Example.objects.select_related("weak_label__run").filter(project=project)
    assert by_id == {e.pk: label_source(e) for e in examples}

    copy = make_project(f"copy-{export_format}")
    job = example_import_path(project=copy, user=owner, path=path, format=import_format)
    assert job.status == ImportJob.Status.SUCCEEDED, (job.error, (job.report or {}).get("errors"))
    again = list(Example.objects.filter(project=copy).select_related("label").order_by("pk"))
    assert [(e.messages, e.label.name if e.label else None, e.split, e.status, e.metadata) for e in again] == [
        (e.messages, e.label.name if e.label else None, e.split, e.status, e.metadata) for e in made.values()
    ]
    # Labels a file brings are a person's to the project that imports them.
    assert all("label_source" not in e.metadata for e in again)
    assert [label_source(e) for e in again] == [None if e.label is None else {"source": "person"} for e in again]
    assert not WeakLabel.objects.filter(example__project=copy).exists()


@pytest.mark.parametrize("format", ["openai", "csv", "parquet"])
def test_without_shikomi_fields_there_is_no_label_source(tmp_path, labeled, format):
    project, _made = labeled

    path = export_file(tmp_path, project, format)

    if format == "openai":
        assert all("label_source" not in json.loads(line) for line in path.read_text("utf-8").splitlines())
    elif format == "csv":
        assert path.read_text("utf-8-sig").splitlines()[0] == "system,instruction,output,label,split"
    else:
        assert "label_source" not in pq.read_table(path).schema.names


def test_a_csv_label_source_cell_is_compact_json(tmp_path, labeled):
    project, made = labeled

    text = export_file(tmp_path, project, "csv", shikomi_fields=True).read_text("utf-8-sig")

    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header[-4:] == ["id", "status", "metadata", "label_source"]
    cells = {int(row[-4]): row[-1] for row in rows}
    assert cells[made["person"].pk] == '{"source":"person"}'
    assert cells[made["majority"].pk] == '{"source":"rules","rule_set":2,"model":"majority","probability":0.67}'
    assert cells[made["none"].pk] == ""


def test_a_file_from_before_the_label_source_column_still_reads_as_shikomis(tmp_path, owner):
    """id, status and metadata without label_source: still an export with Shikomi fields."""
    path = tmp_path / "old.csv"
    path.write_text(
        "system,instruction,input,output,label,split,id,status,metadata\r\n"
        ',Hi,,Hello!,billing,train,7,approved,"{""k"": 1}"\r\n',
        "utf-8",
    )
    project = make_project("old-csv")

    job = example_import_path(project=project, user=owner, path=path, format="csv")

    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    example = Example.objects.get(project=project)
    assert (example.label.name, example.status, example.metadata) == ("billing", "approved", {"k": 1})


def test_the_export_reads_label_sources_in_the_rows_query(labeled, django_assert_max_num_queries):
    project, _made = labeled
    Example.objects.bulk_create(
        Example(project=project, messages=chat(f"質問 {i}", "回答"), content_hash=f"h{i}") for i in range(300)
    )

    export = example_export(project=project, format="openai", status="any", shikomi_fields=True)
    with django_assert_max_num_queries(4):  # no query per row
        lines = b"".join(export.chunks).decode().splitlines()

    assert len(lines) == 304
    assert sum('"label_source": {"source": "rules"' in line for line in lines) == 2


def test_the_preview_shows_the_label_source_with_shikomi_fields(labeled):
    project, _made = labeled

    with_fields = export_preview(project=project, format="openai", status="any", shikomi_fields=True)
    without = export_preview(project=project, format="openai", status="any")

    assert '"label_source": {"source": "rules", "rule_set": 3, "model": "label_model"' in with_fields.records
    assert "label_source" not in without.records


def test_the_export_page_says_label_source_comes_with_shikomi_fields(client, project, users):
    client.force_login(users["reviewer"])

    page = client.get(f"/p/{project.slug}/export/")

    assert page.status_code == 200
    assert "where its label came from (label_source" in page.content.decode()
