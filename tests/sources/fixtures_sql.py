"""A SQLite database made by the test, named by one of the operator's secrets, and helpers to
define a source and import from it as an admin would (through the pages)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from curation.models import ImportJob, Source
from tests.conftest import PASSWORD

SECRET = "SHIKOMI_SECRET_TICKETS_DB"
TICKETS = [
    ("Where is my parcel?", "It left the warehouse today.", "shipping"),
    ("I was charged twice.", "We refunded the second charge.", "billing"),
    ("Can I change the address?", "Yes, until it ships.", "shipping"),
]


def make_db(path: Path, rows: list[tuple[str, str, str]] = TICKETS) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE tickets (id INTEGER PRIMARY KEY, question TEXT, answer TEXT, topic TEXT)")
        db.executemany("INSERT INTO tickets (question, answer, topic) VALUES (?, ?, ?)", rows)
    return path


@pytest.fixture
def tickets_db(tmp_path, monkeypatch) -> Path:
    """The database file, and the operator's secret that names it."""
    path = make_db(tmp_path / "tickets.sqlite3")
    monkeypatch.setenv(SECRET, f"sqlite:///{path}")
    return path


@pytest.fixture
def admin_client(users) -> Client:
    client = Client()
    assert client.login(username=users["admin"].username, password=PASSWORD)
    return client


QUERY = "SELECT question, answer, topic FROM tickets ORDER BY id"
MAPPING = "instruction=question,output=answer,label=topic"


def define_sql(client: Client, project: Any, **overrides: Any):
    data = {
        "name": "Tickets",
        "kind": "sql",
        "secret": SECRET,
        "query": QUERY,
        "mapping": MAPPING,
        "licence": "CC-BY-4.0",
        "description": "The support desk's answered tickets.",
    } | overrides
    return client.post(f"/p/{project.slug}/sources/new/", data)


def import_now(client: Client, project: Any, source: Source, capture, **options: Any) -> ImportJob:
    with capture(execute=True):
        response = client.post(f"/p/{project.slug}/sources/{source.pk}/import/", options)
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.get(source=source, pk=int(response["Location"].rstrip("/").split("/")[-1]))
    return job
