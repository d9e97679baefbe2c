"""The source pages: the menu entry, editing and deleting, and the web and documents kinds imported
through the page (a loopback web site, uploaded PDF and HTML files) as SourceDocument rows."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from curation.models import ImportJob, Source, SourceDocument
from tests.conftest import PASSWORD
from tests.sources import fixtures_sql
from tests.sources.fixtures_sql import QUERY, define_sql, import_now

admin_client, tickets_db = fixtures_sql.admin_client, fixtures_sql.tickets_db


def test_the_menu_offers_sources_to_admins_only(project, users, admin_client):
    assert f'href="/p/{project.slug}/sources/"' in admin_client.get(f"/p/{project.slug}/").content.decode()
    reviewer = Client()
    reviewer.login(username=users["reviewer"].username, password=PASSWORD)
    assert f'href="/p/{project.slug}/sources/"' not in reviewer.get(f"/p/{project.slug}/").content.decode()
    assert reviewer.get(f"/p/{project.slug}/sources/").status_code == 403


def test_an_admin_edits_and_deletes_a_source(project, admin_client, tickets_db):
    define_sql(admin_client, project)
    source = Source.objects.get(project=project)
    form = admin_client.get(f"/p/{project.slug}/sources/{source.pk}/edit/").content.decode()
    assert "label=topic,instruction=question,output=answer" in form

    response = admin_client.post(
        f"/p/{project.slug}/sources/{source.pk}/edit/",
        {"name": "Tickets", "kind": "sql", "secret": source.secret, "query": QUERY + " LIMIT 1", "timeout": 5},
    )
    source.refresh_from_db()
    assert response.status_code == 302
    assert source.options["query"].endswith("LIMIT 1") and source.options["timeout"] == 5
    assert source.options["mapping"] == {}

    refused = admin_client.post(
        f"/p/{project.slug}/sources/{source.pk}/edit/",
        {"name": "Tickets", "kind": "sql", "secret": source.secret, "query": "DROP TABLE tickets"},
    )
    assert refused.status_code == 400 and "Only a SELECT query" in refused.content.decode()

    admin_client.post(f"/p/{project.slug}/sources/{source.pk}/delete/")
    assert not Source.objects.filter(pk=source.pk).exists()


def test_a_web_source_stores_its_pages_and_reports_refused_ones_then_resyncs(
    project, admin_client, web_serve, web_html, django_capture_on_commit_callbacks
):
    site = web_serve(
        {
            "/robots.txt": (404, {"Content-Type": "text/plain"}, b""),
            "/returns": (200, {"Content-Type": "text/html"}, web_html("Returns", "<p>Return within 30 days.</p>")),
            "/shipping": (200, {"Content-Type": "text/html"}, web_html("Shipping", "<p>We ship in two days.</p>")),
        }
    )
    urls = "\n".join(site.url(p) for p in ("/returns", "/shipping", "/missing"))
    response = admin_client.post(
        f"/p/{project.slug}/sources/new/",
        {"name": "Help pages", "kind": "web", "urls": urls, "delay_seconds": 0, "licence": "proprietary"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    source = Source.objects.get(project=project, name="Help pages")

    job = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.SUCCEEDED, job.error
    documents = {d.title: d for d in SourceDocument.objects.filter(source=source)}
    assert set(documents) == {"Returns", "Shipping"}
    assert "Return within 30 days." in documents["Returns"].text
    assert documents["Returns"].location == site.url("/returns")
    assert [r["object"] for r in job.report["refused"]] == [site.url("/missing")]
    page = admin_client.get(f"/p/{project.slug}/sources/{source.pk}/").content.decode()
    assert site.url("/missing") in page

    again = import_now(admin_client, project, source, django_capture_on_commit_callbacks)
    assert (again.rows_created, again.report["already_present"]) == (0, 2)

    site.routes["/returns"] = (200, {"Content-Type": "text/html"}, web_html("Returns", "<p>Return within 60 days.</p>"))
    changed = import_now(admin_client, project, source, django_capture_on_commit_callbacks)
    assert (changed.report["changed_total"], changed.report["updated_total"]) == (1, 0)
    assert "30 days" in SourceDocument.objects.get(source=source, title="Returns").text

    updated = import_now(admin_client, project, source, django_capture_on_commit_callbacks, update_changed="on")
    assert updated.report["updated_total"] == 1
    assert "60 days" in SourceDocument.objects.get(source=source, title="Returns").text
    assert SourceDocument.objects.filter(source=source).count() == 2


def test_uploaded_documents_are_stored_once_per_text(
    project, admin_client, doc_pdf, django_capture_on_commit_callbacks
):
    admin_client.post(f"/p/{project.slug}/sources/new/", {"name": "Manuals", "kind": "documents"})
    source = Source.objects.get(project=project, name="Manuals")
    pdf = doc_pdf([["The warranty lasts two years."]], title="Warranty")
    html = b"<html><head><title>Care</title></head><body><main><p>Wipe with a dry cloth.</p></main></body></html>"

    def upload():
        return [
            SimpleUploadedFile("warranty.pdf", pdf, content_type="application/pdf"),
            SimpleUploadedFile("care.html", html, content_type="text/html"),
            SimpleUploadedFile("empty.txt", b"", content_type="text/plain"),
        ]

    job = import_now(admin_client, project, source, django_capture_on_commit_callbacks, files=upload())

    assert job.status == ImportJob.Status.SUCCEEDED, job.error
    stored = {d.location: d for d in SourceDocument.objects.filter(source=source)}
    assert set(stored) == {"warranty.pdf", "care.html"}
    assert "two years" in stored["warranty.pdf"].text and stored["warranty.pdf"].content_type == "application/pdf"
    assert [r["object"] for r in job.report["refused"]] == ["empty.txt"]

    again = import_now(admin_client, project, source, django_capture_on_commit_callbacks, files=upload())
    assert again.rows_created == 0 and again.report["already_present"] == 2
    assert SourceDocument.objects.filter(source=source).count() == 2


def test_an_unsupported_upload_is_refused_before_anything_is_kept(project, admin_client):
    admin_client.post(f"/p/{project.slug}/sources/new/", {"name": "Manuals", "kind": "documents"})
    source = Source.objects.get(project=project, name="Manuals")

    response = admin_client.post(
        f"/p/{project.slug}/sources/{source.pk}/import/",
        {"files": [SimpleUploadedFile("tool.exe", b"MZ", content_type="application/octet-stream")]},
    )

    assert response.status_code == 400 and "tool.exe: not a supported type" in response.content.decode()
    assert not ImportJob.objects.filter(source=source).exists()
