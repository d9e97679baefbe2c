from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from curation.models import Example, ExampleRevision
from tests.conftest import PASSWORD


@pytest.fixture
def api(users) -> APIClient:
    client = APIClient()
    client.login(username="annie", password=PASSWORD)
    return client


def url(project, example=None) -> str:
    base = f"/api/projects/{project.slug}/examples/"
    return f"{base}{example.pk}/" if example else base


def test_it_updates_an_example_and_records_before_and_after(api, project, example):
    response = api.patch(url(project, example), {"version": 1, "label": "billing"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 2
    example.refresh_from_db()
    assert example.label.name == "billing"
    revision = example.revisions.first()
    assert revision.action == ExampleRevision.Action.UPDATE
    assert revision.before["label"] == "shipping" and revision.after["label"] == "billing"
    assert revision.user.username == "annie"


def test_a_stale_version_is_refused_with_409_and_the_current_state(api, project, example, users):
    first = APIClient()
    first.login(username="rhea", password=PASSWORD)
    new_messages = [
        {"role": "user", "content": "Where is my order?"},
        {"role": "assistant", "content": "Shipped today."},
    ]
    assert (
        first.patch(url(project, example), {"version": 1, "messages": new_messages}, format="json").status_code == 200
    )

    response = api.patch(url(project, example), {"version": 1, "label": "billing"}, format="json")

    assert response.status_code == 409
    body = response.json()
    assert body["current"]["version"] == 2
    assert body["current"]["messages"][1]["content"] == "Shipped today."
    example.refresh_from_db()
    assert example.label.name == "shipping", "the stale write must not land"
    assert example.revisions.count() == 2  # create + the reviewer's update


def test_an_unknown_label_is_refused_naming_the_field(api, project, example):
    response = api.patch(url(project, example), {"version": 1, "label": "refunds"}, format="json")
    assert response.status_code == 400
    assert "refunds" in response.json()["label"][0]
    assert "billing" in response.json()["label"][0]


def test_a_message_without_content_is_refused(api, project):
    response = api.post(url(project), {"messages": [{"role": "user", "content": ""}]}, format="json")
    assert response.status_code == 400
    assert "messages[0].content" in response.json()
    assert not Example.objects.filter(project=project).exists()


def test_an_annotator_creates_an_example_with_a_revision(api, project):
    messages = [
        {"role": "user", "content": "返品できますか？"},
        {"role": "assistant", "content": "はい、30日以内です。"},
    ]
    response = api.post(url(project), {"messages": messages, "label": "shipping", "split": "train"}, format="json")
    assert response.status_code == 201, response.content
    example = Example.objects.get(pk=response.json()["id"])
    assert example.messages == messages and example.split == "train" and example.source == "human"
    assert example.revisions.get().action == ExampleRevision.Action.CREATE


def test_the_list_filters_and_paginates(api, project, example, users):
    from curation.core.services import example_create

    for i in range(60):
        example_create(
            project=project,
            user=users["admin"],
            label="billing",
            split="train",
            messages=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
        )
    body = api.get(url(project), {"label": "billing"}).json()
    assert body["count"] == 60 and len(body["results"]) == 50 and body["next"]
    assert api.get(url(project), {"label": "shipping"}).json()["count"] == 1
    assert api.get(url(project), {"split": "train", "label": "shipping"}).json()["count"] == 0


def test_the_list_does_not_query_per_example(api, project, example, users, django_assert_max_num_queries):
    from curation.core.services import example_create

    for i in range(30):
        example_create(
            project=project,
            user=users["admin"],
            label="billing",
            messages=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
        )
    with django_assert_max_num_queries(8):
        assert api.get(url(project)).status_code == 200


def test_a_token_authenticates_api_calls(project, users, example):
    client = APIClient()
    token = client.post("/api/auth/token/", {"username": "rhea", "password": PASSWORD}).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(url(project)).json()["count"] == 1
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert client.get(url(project)).status_code == 401


def test_the_openapi_schema_describes_the_example_endpoints(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/projects/{slug}/examples/{example_id}/" in paths
    assert "patch" in paths["/api/projects/{slug}/examples/{example_id}/"]


def test_the_docs_page_is_served_from_local_files(api):
    response = api.get("/api/docs/")
    assert response.status_code == 200
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in response.content
