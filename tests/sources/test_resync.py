"""Importing a query source again: rows already present are skipped and reported; a row that
changed at the same place (object and line) is reported and left alone, or, with "update changed
rows", becomes a new revision of its example (and an approved one goes back to review)."""

from __future__ import annotations

import sqlite3

from curation.models import Example, ExampleRevision, ImportJob, Source
from tests.sources import fixtures_sql
from tests.sources.fixtures_sql import define_sql, import_now

admin_client, tickets_db = fixtures_sql.admin_client, fixtures_sql.tickets_db


def test_a_resync_of_a_query_skips_present_rows_and_updates_changed_ones_only_when_asked(
    project, admin_client, tickets_db, django_capture_on_commit_callbacks
):
    define_sql(admin_client, project)
    source = Source.objects.get(project=project)
    first = import_now(admin_client, project, source, django_capture_on_commit_callbacks)
    assert first.rows_created == 3

    again = import_now(admin_client, project, source, django_capture_on_commit_callbacks)
    assert again.status == ImportJob.Status.SUCCEEDED
    assert (again.rows_created, again.report["already_present"], again.report["changed_total"]) == (0, 3, 0)
    assert {d["duplicate_of"].split()[0] for d in again.report["duplicates"]} == {"example"}

    example = Example.objects.get(project=project, source_line=2)
    example.status = Example.Status.APPROVED
    example.save()
    with sqlite3.connect(tickets_db) as db:
        db.execute("UPDATE tickets SET answer = 'We refunded it within a day.' WHERE id = 2")
        db.execute("INSERT INTO tickets (question, answer, topic) VALUES ('New one?', 'Yes.', 'billing')")

    reported = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    example.refresh_from_db()
    assert (reported.rows_created, reported.report["changed_total"], reported.report["updated_total"]) == (1, 1, 0)
    assert reported.report["already_present"] == 2
    assert example.messages[1]["content"] == "We refunded the second charge."
    assert Example.objects.filter(project=project).count() == 4
    page = admin_client.get(f"/p/{project.slug}/sources/{source.pk}/").content.decode()
    assert f'href="/p/{project.slug}/examples/{example.pk}/"' in page

    updated = import_now(admin_client, project, source, django_capture_on_commit_callbacks, update_changed="on")

    example.refresh_from_db()
    assert (updated.rows_created, updated.report["updated_total"]) == (0, 1)
    assert example.messages[1]["content"] == "We refunded it within a day."
    assert example.status == Example.Status.NEEDS_REVIEW  # the approval was of the old answer
    assert ExampleRevision.objects.filter(example=example, action=ExampleRevision.Action.UPDATE).count() == 1
    assert Example.objects.filter(project=project).count() == 4

    quiet = import_now(admin_client, project, source, django_capture_on_commit_callbacks)
    assert (quiet.rows_created, quiet.report["already_present"], quiet.report["changed_total"]) == (0, 4, 0)


def test_a_failed_resync_updates_nothing(project, admin_client, tickets_db, django_capture_on_commit_callbacks):
    define_sql(admin_client, project)
    source = Source.objects.get(project=project)
    import_now(admin_client, project, source, django_capture_on_commit_callbacks)
    with sqlite3.connect(tickets_db) as db:
        db.execute("UPDATE tickets SET answer = 'Changed.' WHERE id = 1")
        db.execute("UPDATE tickets SET answer = '' WHERE id = 3")  # a bad row: the import fails whole

    failed = import_now(admin_client, project, source, django_capture_on_commit_callbacks, update_changed="on")

    assert failed.status == ImportJob.Status.FAILED
    assert failed.report["updated_total"] == 0
    assert Example.objects.get(project=project, source_line=1).messages[1]["content"] == "It left the warehouse today."
