"""Sources in a real browser: an admin defines a query source, sees only the fields its kind
reads, previews the first rows and imports them; a reviewer reads a grounded draft's passage
beside it, and hostile text in the document stays text."""

from __future__ import annotations

import hashlib

import pytest

from curation.generation.synthetic import synthetic_execute
from curation.generation.tasks import synthetic_start
from curation.generation.templates import template_save
from curation.models import Example, ImportJob, Source, SourceDocument
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD
from tests.generation.conftest import ScriptedBackend
from tests.sources.fixtures_sql import QUERY, SECRET, make_db

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def test_an_admin_defines_a_query_source_previews_it_and_imports_it(
    page, live_server, project, users, tmp_path, monkeypatch, screenshot
):
    monkeypatch.setenv(SECRET, f"sqlite:///{make_db(tmp_path / 'tickets.sqlite3')}")
    base = live_server.url
    sign_in(page, base, users["admin"].username, PASSWORD)
    page.goto(f"{base}/p/{project.slug}/")
    page.get_by_role("link", name="Sources", exact=True).click()
    page.wait_for_url(f"**/p/{project.slug}/sources/")
    page.click("text=New source")

    form = page.locator("#source-form")
    form.locator("input[name=name]").fill("Support tickets")
    form.locator("input[name=kind][value=sql]").check()
    # Only the query's fields show; a bucket's and a web source's are hidden.
    assert form.locator("textarea[name=query]").is_visible()
    assert form.locator("input[name=bucket]").is_hidden() and form.locator("textarea[name=urls]").is_hidden()
    form.locator("select[name=secret]").select_option(SECRET)
    form.locator("textarea[name=query]").fill(QUERY)
    form.locator("input[name=mapping]").fill("instruction=question,output=answer,label=topic")
    form.locator("input[name=licence]").fill("CC-BY-4.0")
    screenshot(page, "form")
    form.locator("input[name=kind][value=s3]").check()
    assert form.locator("input[name=bucket]").is_visible() and form.locator("textarea[name=query]").is_hidden()
    form.locator("input[name=kind][value=sql]").check()
    form.locator("button[type=submit]").click()

    source = Source.objects.get(project=project)
    page.wait_for_url(f"**/p/{project.slug}/sources/{source.pk}/")
    page.click("text=Preview the first rows")
    preview = page.locator("#source-preview")
    preview.locator("text=Where is my parcel?").wait_for()
    assert "I was charged twice." in preview.inner_text()
    page.click("text=Import now")
    page.wait_for_url(f"**/p/{project.slug}/imports/**")
    job = ImportJob.objects.get(source=source)
    assert job.status == ImportJob.Status.SUCCEEDED and job.rows_created == 3
    assert Example.objects.filter(project=project, import_job=job, source_object="query").count() == 3
    assert page.get_by_role("link", name="Back to the source").is_visible()
    screenshot(page, "imported")


def test_a_reviewer_reads_the_passage_a_draft_was_grounded_in(
    page, live_server, project, users, screenshot, django_capture_on_commit_callbacks
):
    text = f"Refunds take 3.5 days by card. {HOSTILE} Gift cards are never refunded."
    handbook = Source.objects.create(project=project, name="Handbook", kind=Source.Kind.DOCUMENTS)
    SourceDocument.objects.create(
        project=project,
        source=handbook,
        title="Refund policy",
        location="https://shop.example/refunds",
        text=text,
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        characters=len(text),
    )
    template = template_save(
        project=project,
        user=users["reviewer"],
        name="grounded",
        text="Write a customer question that this passage answers.\n\n{document}",
        few_shot=0,
    )
    job = synthetic_start(
        project=project, user=users["reviewer"], template=template, count=1, candidates=1, topics=["refunds"]
    )
    synthetic_execute(job=job, backend=ScriptedBackend())

    base = live_server.url
    sign_in(page, base, users["reviewer"].username, PASSWORD)
    page.goto(f"{base}/p/{project.slug}/drafts/")
    passage = page.locator("#review-passage")
    passage.wait_for()
    assert "Refund policy" in passage.inner_text() and "Gift cards are never refunded." in passage.inner_text()
    assert HOSTILE in passage.inner_text()  # shown as text
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("main img[src=x]").count() == 0
    screenshot(page)
