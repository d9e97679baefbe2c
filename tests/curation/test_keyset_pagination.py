"""The examples list API pages by key: every page follows from where the last one ended, so a
walk sees each example once, whatever is added while it walks, in every order the list offers."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from curation.core.selectors import SORTS
from curation.core.services import content_hash
from curation.models import Example, Label
from curation.workspace import selectors
from tests.conftest import PASSWORD

PAGE = 7


@pytest.fixture
def api(users) -> APIClient:
    client = APIClient()
    client.login(username="annie", password=PASSWORD)
    return client


def chat(i: int) -> list[dict]:
    return [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]


def make(project, i: int, **fields) -> Example:
    return Example.objects.create(project=project, messages=chat(i), content_hash=content_hash(chat(i)), **fields)


@pytest.fixture
def fifty(project, users) -> list[Example]:
    """50 examples with ties and gaps in every sort field: three labels and none, four
    statuses, a few answer counts, and change times that repeat."""
    labels = [*Label.objects.filter(project=project), Label.objects.create(project=project, name="returns"), None]
    statuses = [s for s, _ in Example.Status.choices]
    splits = [s for s, _ in Example.Split.choices]
    examples = [
        make(
            project,
            i,
            label=labels[i % len(labels)],
            status=statuses[i % 3],
            split=splits[i % 4],
            annotation_count=i % 3,
        )
        for i in range(50)
    ]
    base = timezone.now() - timedelta(days=1)
    for i, example in enumerate(examples):  # updated_at is auto_now: set it past save()
        Example.objects.filter(pk=example.pk).update(updated_at=base + timedelta(minutes=i % 9))
    return examples


def walk(api: APIClient, url: str, params: dict | None = None) -> list[list[int]]:
    """Every page's ids, following `next` from the first page."""
    return follow(api, api.get(url, {"page_size": PAGE, **(params or {})}))


def follow(api: APIClient, response) -> list[list[int]]:
    """The ids of this page and of every page its `next` links lead to."""
    pages = []
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append([row["id"] for row in body["results"]])
        if not body["next"]:
            return pages
        response = api.get(body["next"])


def url(project) -> str:
    return f"/api/projects/{project.slug}/examples/"


def test_a_walk_of_pages_of_seven_sees_all_fifty_once_in_order(api, project, fifty):
    pages = walk(api, url(project))
    ids = [pk for page in pages for pk in page]
    assert [len(page) for page in pages] == [7] * 7 + [1]
    assert ids == sorted(e.pk for e in fifty)
    first = api.get(url(project), {"page_size": PAGE}).json()
    assert first["count"] == 50 and first["previous"] is None


@pytest.mark.parametrize("sort", list(SORTS))
def test_every_order_walks_the_same_rows_as_the_whole_list(api, project, fifty, sort):
    expected = list(selectors.example_list(project=project, filters={"sort": sort}).values_list("pk", flat=True))
    ids = [pk for page in walk(api, url(project), {"sort": sort}) for pk in page]
    assert ids == expected
    assert len(set(ids)) == 50


def test_examples_without_a_label_come_first_in_label_order(api, project, fifty):
    body = api.get(url(project), {"sort": "label", "page_size": PAGE}).json()
    assert [row["label"] for row in body["results"]] == [None] * PAGE


def test_an_insert_during_the_walk_neither_repeats_nor_skips(api, project, fifty):
    """Oldest first: the new example is met at the end. Newest first: it lies before the
    position already passed, so the pages after it do not shift."""
    for sort, new_at_end in (("id", True), ("-id", False)):
        first = api.get(url(project), {"page_size": PAGE, "sort": sort}).json()
        seen = [row["id"] for row in first["results"]]
        added = make(project, 1000 + len(seen), status="approved")
        rest = [pk for page in follow(api, api.get(first["next"])) for pk in page]
        seen += rest
        assert len(seen) == len(set(seen)), "a row came twice"
        expected = sorted((e.pk for e in fifty), reverse=sort == "-id")
        assert seen == ([*expected, added.pk] if new_at_end else expected)
        added.delete()


def test_a_delete_during_the_walk_skips_nothing_else(api, project, fifty):
    first = api.get(url(project), {"page_size": PAGE}).json()
    ids = sorted(e.pk for e in fifty)
    Example.objects.filter(pk__in=[ids[PAGE - 1], ids[PAGE]]).delete()  # the page's last row and the next one
    rest = [pk for page in follow(api, api.get(first["next"])) for pk in page]
    assert rest == ids[PAGE + 1 :]


def test_previous_links_walk_back_through_the_same_pages(api, project, fifty):
    forward = []
    body = api.get(url(project), {"page_size": PAGE, "sort": "label"}).json()
    forward.append([row["id"] for row in body["results"]])
    while body["next"]:
        body = api.get(body["next"]).json()
        forward.append([row["id"] for row in body["results"]])
    backward = [[row["id"] for row in body["results"]]]
    while body["previous"]:
        body = api.get(body["previous"]).json()
        backward.append([row["id"] for row in body["results"]])
    assert backward == forward[::-1]
    assert body["next"], "the first page reached going back links forward again"


def test_filters_travel_with_the_cursor(api, project, fifty):
    billing = sorted(e.pk for e in fifty if e.label and e.label.name == "billing")
    pages = walk(api, url(project), {"label": "billing", "sort": "-updated"})
    walked = [pk for page in pages for pk in page]
    assert sorted(walked) == billing and len(walked) == len(set(walked))
    assert api.get(url(project), {"label": "billing", "page_size": PAGE}).json()["count"] == len(billing)


def test_a_late_page_seeks_by_key_and_skips_no_rows(api, project, fifty):
    body = api.get(url(project), {"page_size": PAGE}).json()
    for _ in range(5):
        body = api.get(body["next"]).json()
    with CaptureQueriesContext(connection) as late:
        api.get(body["next"])
    with CaptureQueriesContext(connection) as first:
        api.get(url(project), {"page_size": PAGE})
    assert not any("OFFSET" in q["sql"].upper() for q in late.captured_queries)
    assert len(late.captured_queries) == len(first.captured_queries)


def cursor(values: list, reverse: int = 0) -> str:
    return base64.urlsafe_b64encode(json.dumps({"p": values, "r": reverse}).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not a cursor"},
        {"cursor": cursor(["x"])},
        {"cursor": cursor([1, 2])},  # two values for an order by id alone
        {"cursor": cursor([None])},
        {"cursor": cursor(["not a date", 5]), "sort": "-updated"},
        {"cursor": base64.urlsafe_b64encode(b"\xff\xfe").decode()},
    ],
)
def test_a_bad_cursor_is_refused_naming_it(api, project, fifty, params):
    response = api.get(url(project), params)
    assert response.status_code == 400
    assert "next and previous links" in response.json()["cursor"][0]


@pytest.mark.parametrize("size", ["0", "201", "ten", "-3"])
def test_a_bad_page_size_is_refused_naming_it(api, project, fifty, size):
    response = api.get(url(project), {"page_size": size})
    assert response.status_code == 400 and "200" in response.json()["page_size"][0]


def test_numbered_pages_still_answer_as_before(api, project, fifty):
    second = api.get(url(project), {"page": 2, "page_size": 20}).json()
    assert [row["id"] for row in second["results"]] == sorted(e.pk for e in fifty)[20:40]
    assert second["count"] == 50 and "page=3" in second["next"] and "page_size=20" in second["next"]
    assert api.get(url(project), {"page": 9}).status_code == 404


def test_the_schema_documents_the_cursor(api, project):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/projects/{slug}/examples/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"cursor", "page_size", "page"} <= names
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    paginated = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert {"count", "next", "previous", "results"} <= set(paginated["properties"])
