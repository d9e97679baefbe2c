"""The data card (README.md) an export can carry: its numbers are those of the examples the
export writes, and everything a person typed is escaped in its YAML and its Markdown."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import api_token_create
from curation.core.services import example_create
from curation.io.card import fenced, md, percentile, token_count
from curation.io.exports import example_export
from curation.models import Draft, Example, ImportJob, Label, Project, Source
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def unzip(chunks) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    return {name: archive.read(name) for name in archive.namelist()}


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    head, _rest = card[4:].split("\n---\n", 1)
    return yaml.safe_load(head)


def table(card: str, heading: str, nth: int = 0) -> dict[str, list[str]]:
    """The ``nth`` table under ``heading`` (before the next heading): first cell -> the other
    cells (as written, escaped)."""
    section = card.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    tables = re.findall(r"(?m)^(?:\|.*\|\n?)+", section)
    if len(tables) <= nth:
        return {}
    rows = {}
    for line in tables[nth].splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture
def demo() -> Project:
    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    # A mix of statuses and splits, so the selection matters.
    ids = list(project.examples.order_by("pk").values_list("pk", flat=True))
    Example.objects.filter(pk__in=ids[::2]).update(status=Example.Status.APPROVED)
    Example.objects.filter(pk__in=ids[::3]).update(split=Example.Split.TRAIN)
    Example.objects.filter(pk__in=ids[1::5]).update(split=Example.Split.TEST)
    return project


def test_the_demo_projects_card_counts_what_the_export_holds(demo):
    export = example_export(project=demo, format="openai", card=True)
    files = unzip(export.chunks)
    assert set(files) == {"kumo-support-openai.jsonl", "README.md"}
    records = [json.loads(line) for line in files["kumo-support-openai.jsonl"].decode().splitlines()]
    card = files["README.md"].decode()
    exported = Example.objects.filter(project=demo, status=Example.Status.APPROVED)
    assert len(records) == exported.count() > 0

    meta = front_matter(card)
    assert meta["pretty_name"] == "Kumo Coffee support assistant"
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "kumo-support-openai.jsonl"}]}
    ]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["task_categories"] == ["text-generation"]
    assert "ja" in meta["language"] and "en" in meta["language"]
    assert meta["license"] == "unknown"

    splits = Counter(exported.values_list("split", flat=True))
    by_split = table(card, "### By split")
    assert {name.lower(): int(n[0]) for name, n in by_split.items()} == dict(splits)
    labels = Counter(exported.values_list("label__name", flat=True))
    by_label = table(card, "### By label")
    assert {name: int(n[0]) for name, n in by_label.items()} == {
        (k if k else "(no label)"): v for k, v in labels.items()
    }
    assert table(card, "### By status") == {"Approved": [str(len(records))]}
    origins = Counter(exported.values_list("source", flat=True))
    assert {k: int(v[0]) for k, v in table(card, "### By origin").items()} == {
        str(dict(Example.Source.choices)[s]): n for s, n in origins.items()
    }

    lengths = table(card, "## Text length")
    for split, n in splits.items():
        counts = sorted(
            token_count("\n".join(m["content"] for m in e.messages if isinstance(m.get("content"), str)))
            for e in exported.filter(split=split)
        )
        row = lengths[dict(Example.Split.choices)[split]]
        assert int(row[0]) == n and int(row[1]) == counts[0] and int(row[4]) == counts[-1]
        assert int(row[3]) == percentile(counts, 95)
    # The guidelines, verbatim, in a fence.
    assert fenced(demo.guidelines) in card
    assert table(card, "## Quality checks") == {}  # no check has run: a sentence, no table
    assert "No quality check has been run" in card


def test_the_card_of_every_status_one_file_per_split(demo, users):
    drafts = Draft.objects.filter(project=demo)
    first = drafts.first()
    first.decision = Draft.Decision.REJECTED
    first.save()
    export = example_export(project=demo, format="openai", status="any", per_split=True, card=True)
    files = unzip(export.chunks)
    card = files["README.md"].decode()
    meta = front_matter(card)
    every = Example.objects.filter(project=demo)
    splits = Counter(every.values_list("split", flat=True))
    paths = {f["split"]: f["path"] for f in meta["configs"][0]["data_files"]}
    assert set(paths) == set(splits)
    for split, path in paths.items():
        assert len(files[path].decode().splitlines()) == splits[split]
    statuses = Counter(every.values_list("status", flat=True))
    names = dict(Example.Status.choices)
    assert {k: int(v[0]) for k, v in table(card, "### By status").items()} == {
        str(names[s]): n for s, n in statuses.items()
    }
    origins = Counter(every.values_list("source", flat=True))
    assert {k: int(v[0]) for k, v in table(card, "### By origin").items()} == {
        str(dict(Example.Source.choices)[s]): n for s, n in origins.items()
    }
    decisions = table(card, "### Generated drafts")
    assert decisions["Rejected"] == ["1", "1"]
    waiting = drafts.filter(decision=Draft.Decision.PENDING).count()
    assert decisions["Waiting for review"] == [str(waiting), str(waiting)]


def test_the_card_leaves_out_what_the_format_cannot_hold(project, users):
    author = users["admin"]
    example_create(
        project=project,
        user=author,
        messages=[{"role": "user", "content": "a b c"}, {"role": "assistant", "content": "d"}],
    )
    three_turns = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "y"},
        {"role": "user", "content": "z"},
        {"role": "assistant", "content": "w"},
    ]
    example_create(project=project, user=author, messages=three_turns)
    Example.objects.update(status=Example.Status.APPROVED)
    export = example_export(project=project, format="csv", card=True)
    assert export.skipped_total == 1
    card = unzip(export.chunks)["README.md"].decode()
    assert table(card, "### By split") == {"Unassigned": ["1"]}
    assert table(card, "## Text length")["Unassigned"] == ["1", "4", "4", "4", "4"]
    assert table(card, "## Export options")["Left out by the format"] == ["several turns (1)"]


def test_typed_text_is_escaped_in_the_yaml_and_the_markdown(project, users):
    tricky = "a|b *c* <script>x</script> [l](u) #h\n---\nkey: v"
    project.name = 'Name: "quoted" | # not a comment\n---'
    project.description = tricky
    project.guidelines = "Use ```fences``` and\n---\n| pipes |\n````four````"
    project.save()
    Label.objects.create(project=project, name="x|y*<b>")
    source = Source.objects.create(
        project=project, name="wiki | *pages*", kind=Source.Kind.WEB, licence="CC BY-SA 4.0 | other", description=tricky
    )
    job = ImportJob.objects.create(
        project=project,
        format="openai",
        filename="f.jsonl",
        path="/x",
        status=ImportJob.Status.SUCCEEDED,
        source=source,
    )
    example = example_create(
        project=project,
        user=users["admin"],
        label="x|y*<b>",
        messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        status=Example.Status.APPROVED,
    )
    Example.objects.filter(pk=example.pk).update(import_job=job, source=Example.Source.IMPORTED)
    card = unzip(example_export(project=project, format="openai", card=True).chunks)["README.md"].decode()
    meta = front_matter(card)
    assert meta["pretty_name"] == project.name
    assert meta["license"] == "other" and meta["license_name"] == "CC BY-SA 4.0 | other"
    assert "<script>" not in card and "<b>" not in card
    assert table(card, "### By label") == {md("x|y*<b>"): ["1"]}
    assert md("x|y*<b>") == r"x\|y\*&lt;b&gt;"
    sources = table(card, "## Sources and licences")
    assert sources[md("wiki | *pages*")] == ["Web pages", md("CC BY-SA 4.0 | other"), md(tricky), "1"]
    # The description cannot end the front matter or open a heading.
    assert "\n---\n" not in card.split("\n---\n", 2)[2]
    assert "\n#h" not in card and md(tricky) in card
    # The guidelines sit in a fence longer than any run of backticks they hold.
    assert "`````markdown\n" + project.guidelines + "\n`````" in card


def test_token_counts_take_each_cjk_character_as_a_token():
    assert token_count("Hello, world!  東京へ行く") == 2 + 5
    assert token_count("") == 0
    assert percentile(list(range(1, 21)), 95) == 19
    assert percentile(list(range(1, 61)), 95) == 57
    assert percentile([7], 95) == 7


def test_the_export_page_and_the_api_give_a_zip_with_the_card(project, users, example):
    Example.objects.update(status=Example.Status.APPROVED)
    client = Client()
    client.login(username=users["reviewer"].username, password=PASSWORD)
    page = client.get(f"/p/{project.slug}/export/")
    assert b'name="card"' in page.content and b"Include a data card (README.md)" in page.content
    response = client.get(f"/p/{project.slug}/export/", {"format": "csv", "card": "on", "status": "approved"})
    assert response["Content-Type"] == "application/zip"
    assert 'filename="support-csv.zip"' in response["Content-Disposition"]
    files = unzip(response.streaming_content)
    assert set(files) == {"support-csv.csv", "README.md"}
    assert "Where is my order?" in files["support-csv.csv"].decode()

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token " + api_token_create(user=users["reviewer"], name="t")[1])
    response = api.get(f"/api/projects/{project.slug}/export/", {"format": "parquet", "card": "true"})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    files = unzip(response.streaming_content)
    assert set(files) == {"support-parquet.parquet", "README.md"}
    assert front_matter(files["README.md"].decode())["configs"][0]["data_files"][0]["path"] == "support-parquet.parquet"
    plain = api.get(f"/api/projects/{project.slug}/export/", {"format": "openai"})
    assert plain["Content-Type"] != "application/zip"


def test_the_quality_and_review_sections_count_the_exported_examples_only(project, users):
    from django.utils import timezone

    from curation.models import Annotation, DuplicateCluster, ExampleCheck, QualityScan

    def chat(text: str, status: str) -> Example:
        messages = [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]
        return example_create(project=project, user=users["admin"], messages=messages, status=status, label="billing")

    kept, other, rejected = chat("one", "approved"), chat("two", "approved"), chat("three", "rejected")
    scan = QualityScan.objects.create(
        project=project, number=3, status=QualityScan.Status.DONE, config={}, finished_at=timezone.now()
    )
    cluster = DuplicateCluster.objects.create(scan=scan, size=2, similarity=0.9, splits=["unassigned"])
    for example in (kept, rejected):
        ExampleCheck.objects.create(
            scan=scan, example=example, content_hash=example.content_hash, pii_count=1, pii=[{"kind": "email"}]
        )
    ExampleCheck.objects.create(scan=scan, example=other, content_hash=other.content_hash, cluster=cluster)
    labels = {"annotator": "billing", "reviewer": "billing"}
    for role, label in labels.items():
        for example in (kept, other):
            Annotation.objects.create(
                example=example,
                annotator=users[role],
                status=Annotation.Status.SUBMITTED,
                label=project.labels.get(name=label if example is kept else "shipping"),
                based_on_version=1,
            )
    card = unzip(example_export(project=project, format="openai", card=True).chunks)["README.md"].decode()
    findings = table(card, "## Quality checks")
    assert findings["Personal data"] == ["1"] and findings["Near duplicates"] == ["1"]
    assert findings["Format problems"] == ["0"]
    assert "number 3" in card
    assert table(card, "## Quality checks", 1) == {
        "Leakage between splits": ["passed"],
        "Personal data": ["not enforced"],
    }
    assert table(card, "## Review process") == {"2": ["2"]}
    assert "Krippendorff's alpha): 1.000" in card
