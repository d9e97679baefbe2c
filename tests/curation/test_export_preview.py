"""Before a download the export page shows how many examples per split and status the chosen
options would write, what the format cannot hold, and the first records as they will be
written; approved examples only unless more statuses are ticked, on the page, in the API and
in the command."""

from __future__ import annotations

import io

from django.core.management import call_command
from rest_framework.test import APIClient

from curation.core.services import example_create
from curation.io.exports import export_preview
from curation.models import Example, Project

ASK = [{"role": "user", "content": "Where is my order?"}, {"role": "assistant", "content": "It ships today."}]
TWO = ASK + [{"role": "user", "content": "<b>Thanks</b>"}, {"role": "assistant", "content": "Welcome"}]


def fill(project, user) -> None:
    for status, split, messages in [
        ("approved", "train", ASK),
        ("approved", "train", TWO),
        ("approved", "test", ASK),
        ("needs_review", "train", ASK),
        ("rejected", "train", ASK),
        ("draft", "validation", ASK),
    ]:
        example_create(project=project, user=user, messages=messages, status=status, split=split)


def test_the_preview_counts_per_split_and_status_and_shows_the_first_records(project, users):
    fill(project, users["admin"])
    preview = export_preview(project=project, format="csv")
    assert preview.statuses == ["approved"] and preview.total == 3
    assert preview.counts["train"] == {"approved": 2, "needs_review": 1, "rejected": 1}
    assert preview.left_out() == {"needs_review": 1, "rejected": 1, "draft": 1}
    assert preview.skipped == {"several turns": 1} and preview.written == 2
    assert preview.records.count("Where is my order?") == 2 and len(preview.records.splitlines()) == 3
    wider = export_preview(project=project, format="openai", status=["approved", "needs_review"])
    assert wider.total == 4 and wider.written == 4 and len(wider.records.splitlines()) == 4
    assert export_preview(project=project, format="parquet").records is None


def test_the_page_defaults_to_approved_and_updates_the_preview(client, project, users):
    fill(project, users["admin"])
    client.force_login(users["reviewer"])
    page = client.get(f"/p/{project.slug}/export/").content.decode()
    assert 'value="approved"' in page and 'value="approved" class="export-status" id="id_status_2" checked' in page
    assert "Only approved examples are exported unless you tick more statuses" in page
    assert "<strong>3</strong> examples will be written" in page
    assert "Not included because of their status:" in page and "Needs review 1" in page
    part = client.get(
        f"/p/{project.slug}/export/preview/",
        {"format": "openai", "status": ["approved", "needs_review"], "statuses_shown": "1"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert part.startswith('\n<section class="card export-preview"') or 'id="export-preview"' in part
    assert "<strong>4</strong> examples will be written" in part and "<html" not in part
    # Records are escaped inside the <pre>.
    assert "&lt;b&gt;Thanks&lt;/b&gt;" in part and "<b>Thanks</b>" not in part
    none = client.get(
        f"/p/{project.slug}/export/preview/",
        {"format": "openai", "statuses_shown": "1"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "Status: Tick at least one status." in none


def test_the_download_takes_approved_examples_unless_told_otherwise(client, project, users, tmp_path):
    fill(project, users["admin"])
    client.force_login(users["reviewer"])
    body = b"".join(client.get(f"/p/{project.slug}/export/", {"format": "openai"}).streaming_content)
    assert len(body.splitlines()) == 3
    api = APIClient()
    api.force_authenticate(users["reviewer"])
    url = f"/api/projects/{project.slug}/export/"
    assert len(b"".join(api.get(url, {"format": "openai"}).streaming_content).splitlines()) == 3
    both = api.get(url + "?format=openai&status=approved&status=rejected")
    assert len(b"".join(both.streaming_content).splitlines()) == 4
    every = api.get(url, {"format": "openai", "status": "any"})
    assert len(b"".join(every.streaming_content).splitlines()) == Example.objects.filter(project=project).count()
    bad = api.get(url, {"format": "openai", "status": "approved,done"})
    assert bad.status_code == 400 and "status" in bad.json()
    preview = api.get(url + "preview/", {"format": "csv", "status": "approved,needs_review"}).json()
    assert preview["total"] == 4 and preview["written"] == 3 and preview["counts"]["test"] == {"approved": 1}
    out = tmp_path / "out.jsonl"
    call_command("export_examples", project.slug, "--format", "openai", "-o", str(out), stderr=io.StringIO())
    assert len(out.read_text().splitlines()) == 3


def test_the_preview_reads_a_bounded_number_of_rows(project, users, django_assert_max_num_queries):
    Project.objects.filter(pk=project.pk).update(kind=Project.Kind.CHAT)
    for i in range(30):
        example_create(
            project=project,
            user=users["admin"],
            status="approved",
            messages=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
        )
    with django_assert_max_num_queries(8):
        preview = export_preview(project=project, format="alpaca")
    assert preview.total == 30 and len(preview.records) > 0
