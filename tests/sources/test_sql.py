"""A SQL source: an admin names the operator's secret (a database address), writes a SELECT and
maps its columns as a CSV's; the import goes through the file import's checks and atomic write."""

from __future__ import annotations

import sqlite3

import pytest
from django.db import connection

from curation.models import Example, ImportJob, Source
from curation.sources.sql import QueryRefused, query_clean
from tests.conftest import wait_for
from tests.sources import fixtures_sql
from tests.sources.fixtures_sql import MAPPING, SECRET, define_sql, import_now, make_db

# The fixtures of fixtures_sql.py, offered to this module's tests.
admin_client, tickets_db = fixtures_sql.admin_client, fixtures_sql.tickets_db


def test_an_admin_defines_a_query_source_and_imports_it_with_provenance(
    project, admin_client, tickets_db, django_capture_on_commit_callbacks
):
    response = define_sql(admin_client, project)
    source = Source.objects.get(project=project, name="Tickets")
    assert response.status_code == 302 and response["Location"] == f"/p/{project.slug}/sources/{source.pk}/"
    assert source.secret == SECRET and "sqlite" not in str(source.options)  # the address stays in the secret
    assert source.options["row_limit"] == 100_000

    job = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.SUCCEEDED, job.error
    assert (job.rows_read, job.rows_created) == (3, 3)
    examples = list(Example.objects.filter(project=project).order_by("source_line"))
    assert [(e.source_object, e.source_line, e.label.name) for e in examples] == [
        ("query", 1, "shipping"),
        ("query", 2, "billing"),
        ("query", 3, "shipping"),
    ]
    assert examples[1].messages == [
        {"role": "user", "content": "I was charged twice."},
        {"role": "assistant", "content": "We refunded the second charge."},
    ]
    source.refresh_from_db()
    assert source.synced_at is not None
    page = admin_client.get(f"/p/{project.slug}/imports/{job.pk}/").content.decode()
    assert "Succeeded" in page


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM tickets",
        "UPDATE tickets SET topic = 'billing'",
        "SELECT 1; DROP TABLE tickets",
        "WITH gone AS (DELETE FROM tickets RETURNING *) SELECT * FROM gone",
        "WITH x AS (SELECT 1 AS a) INSERT INTO tickets (question) SELECT a FROM x",
        "PRAGMA writable_schema = 1",
    ],
)
def test_a_query_that_is_not_one_select_is_refused(project, admin_client, tickets_db, query):
    response = define_sql(admin_client, project, query=query)

    assert response.status_code == 400
    assert not Source.objects.filter(project=project).exists()
    with pytest.raises(QueryRefused):
        query_clean(query)


def test_words_inside_strings_and_comments_are_not_statements():
    query = "SELECT 'please delete me' AS question, answer -- update later\nFROM tickets"
    assert query_clean(query + ";") == query


def test_a_write_that_gets_past_the_check_is_refused_by_the_read_only_database(
    project, admin_client, tickets_db, django_capture_on_commit_callbacks
):
    define_sql(admin_client, project)
    source = Source.objects.get(project=project)
    # As if the check missed it: the database itself is opened read-only.
    source.options["query"] = "WITH x AS (SELECT 'x' AS a) INSERT INTO tickets (question) SELECT a FROM x"
    source.save()

    job = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.FAILED
    assert "the database refused the query" in job.error and "readonly" in job.error.replace("-", "")
    with sqlite3.connect(tickets_db) as db:
        assert db.execute("SELECT count(*) FROM tickets").fetchone()[0] == 3


def test_more_rows_than_the_row_limit_imports_nothing(
    project, admin_client, tickets_db, django_capture_on_commit_callbacks
):
    define_sql(admin_client, project, row_limit=2)
    source = Source.objects.get(project=project)

    job = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.FAILED
    assert "more than 2 rows" in job.error and "row limit" in job.error
    assert not Example.objects.filter(project=project).exists()


def test_a_query_that_runs_past_its_timeout_is_stopped(
    project, admin_client, tickets_db, django_capture_on_commit_callbacks
):
    endless = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
        "SELECT i AS question, i AS answer, 'billing' AS topic FROM n WHERE i < 0"
    )
    define_sql(admin_client, project, query=endless, timeout=1)
    source = Source.objects.get(project=project)

    job = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.FAILED
    assert "ran longer than 1 seconds" in job.error
    assert not Example.objects.filter(project=project).exists()


def test_a_bad_row_fails_the_whole_import_naming_its_row_and_column(
    project, admin_client, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    path = make_db(tmp_path / "t.sqlite3", [("Q1", "A1", "billing"), ("Q2", "", "billing"), ("Q3", "A3", "nope")])
    monkeypatch.setenv(SECRET, f"sqlite:///{path}")
    define_sql(admin_client, project)
    source = Source.objects.get(project=project)

    job = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.FAILED
    assert "2 rows have errors. First, query line 2: answer" in job.error
    assert {(e["object"], e["line"]) for e in job.report["errors"]} == {("query", 2), ("query", 3)}
    assert not Example.objects.filter(project=project).exists()

    skipping = import_now(admin_client, project, source, django_capture_on_commit_callbacks, skip_bad_rows="on")
    assert skipping.status == ImportJob.Status.SUCCEEDED and skipping.rows_created == 1


def test_the_preview_shows_the_first_rows_mapped_with_their_errors(project, admin_client, tmp_path, monkeypatch):
    rows = [(f"Question {i}", "" if i == 2 else f"Answer {i}", "billing") for i in range(1, 31)]
    path = make_db(tmp_path / "many.sqlite3", rows)
    monkeypatch.setenv(SECRET, f"sqlite:///{path}")
    define_sql(admin_client, project)
    source = Source.objects.get(project=project)

    page = admin_client.get(f"/p/{project.slug}/sources/{source.pk}/preview/").content.decode()

    assert "Question 20" in page and "Question 21" not in page
    assert "Answer 1" in page
    assert "the &quot;answer&quot; cell is empty" in page
    api = admin_client.get(f"/api/projects/{project.slug}/sources/{source.pk}/preview/").json()
    assert len(api["rows"]) == 20 and api["columns"] == ["question", "answer", "topic"]
    assert api["rows"][1]["errors"][0]["field"] == "answer"
    assert not Example.objects.filter(project=project).exists()  # a preview imports nothing


def test_only_the_operators_secrets_can_be_named(project, admin_client, tickets_db):
    response = define_sql(admin_client, project, secret="DATABASE_URL")
    assert response.status_code == 400
    api = admin_client.post(
        f"/api/projects/{project.slug}/sources/",
        {"name": "X", "kind": "sql", "secret": "DATABASE_URL", "options": {"query": "SELECT 1"}},
        content_type="application/json",
    )
    assert api.status_code == 400 and "secret" in api.json()
    assert not Source.objects.exists()


def test_a_secret_that_is_gone_fails_the_import_by_name(
    project, admin_client, tickets_db, monkeypatch, django_capture_on_commit_callbacks
):
    define_sql(admin_client, project)
    source = Source.objects.get(project=project)
    monkeypatch.delenv(SECRET)

    job = import_now(admin_client, project, source, django_capture_on_commit_callbacks)

    assert job.status == ImportJob.Status.FAILED and SECRET in job.error and "sqlite" not in job.error


def test_the_api_defines_and_imports_a_source(project, admin_client, tickets_db, django_capture_on_commit_callbacks):
    created = admin_client.post(
        f"/api/projects/{project.slug}/sources/",
        {
            "name": "Tickets",
            "kind": "sql",
            "secret": SECRET,
            "options": {"query": "SELECT * FROM tickets", "mapping": MAPPING, "row_limit": 10},
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.json()
    source_id = created.json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        started = admin_client.post(f"/api/projects/{project.slug}/sources/{source_id}/imports/", {})
    assert started.status_code == 202
    job = admin_client.get(f"/api/projects/{project.slug}/imports/{started.json()['id']}/").json()
    assert job["status"] == "succeeded" and job["rows_created"] == 3
    assert job["report"]["already_present"] == 0


def test_a_source_name_is_escaped(project, admin_client, tickets_db):
    define_sql(admin_client, project, name="<script>alert(1)</script>")
    source = Source.objects.get(project=project)
    for url in (f"/p/{project.slug}/sources/", f"/p/{project.slug}/sources/{source.pk}/"):
        page = admin_client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_real_worker_imports_a_query_source(tickets_db, huey_consumer, project, users):
    from django.test import Client

    from tests.conftest import PASSWORD

    client = Client()
    client.login(username=users["admin"].username, password=PASSWORD)
    define_sql(client, project)
    source = Source.objects.get(project=project)

    response = client.post(f"/p/{project.slug}/sources/{source.pk}/import/", {})

    job = ImportJob.objects.get(source=source)
    assert response.status_code == 302
    wait_for(lambda: ImportJob.objects.filter(pk=job.pk, status__in=ImportJob.FINISHED).exists(), timeout=60)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.SUCCEEDED, job.error
    assert Example.objects.filter(project=project, source_object="query").count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_postgresql_query_runs_read_only(project, users, monkeypatch, django_capture_on_commit_callbacks):
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL pass")
    settings = connection.settings_dict
    url = (
        f"postgresql://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST'] or 'localhost'}"
        f":{settings['PORT'] or 5432}/{settings['NAME']}"
    )
    monkeypatch.setenv(SECRET, url)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE source_tickets (question text, answer text, topic text)")
        cursor.execute("INSERT INTO source_tickets VALUES ('Q1', 'A1', 'billing'), ('Q2', 'A2', 'shipping')")
        cursor.execute("CREATE SEQUENCE source_numbers")
    try:
        from django.test import Client

        from tests.conftest import PASSWORD

        client = Client()
        client.login(username=users["admin"].username, password=PASSWORD)
        define_sql(client, project, query="SELECT * FROM source_tickets ORDER BY question")
        source = Source.objects.get(project=project)
        job = import_now(client, project, source, django_capture_on_commit_callbacks)
        assert job.status == ImportJob.Status.SUCCEEDED, job.error
        assert job.rows_created == 2

        # Past the check (set on the row, not through the form): the database itself refuses.
        source.options["query"] = "WITH gone AS (DELETE FROM source_tickets RETURNING *) SELECT * FROM gone"
        source.save()
        failed = import_now(client, project, source, django_capture_on_commit_callbacks)
        assert failed.status == ImportJob.Status.FAILED and "the database refused the query" in failed.error
        # A SELECT that writes through a function passes the check; the read-only transaction stops it.
        source.options["query"] = "SELECT nextval('source_numbers')::text AS question, 'a' AS answer, 'b' AS topic"
        source.save()
        failed = import_now(client, project, source, django_capture_on_commit_callbacks)
        assert failed.status == ImportJob.Status.FAILED and "read-only transaction" in failed.error
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM source_tickets")
            assert cursor.fetchone()[0] == 2

        source.options.update(query="SELECT pg_sleep(5) AS question, 'a' AS answer, 'billing' AS topic", timeout=1)
        source.save()
        slow = import_now(client, project, source, django_capture_on_commit_callbacks)
        assert slow.status == ImportJob.Status.FAILED and "ran longer than 1 seconds" in slow.error
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE source_tickets")
            cursor.execute("DROP SEQUENCE source_numbers")
