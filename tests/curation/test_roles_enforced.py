"""Roles mean what they say: only admins move examples between splits in bulk (as on the
Splits page), an approval covers the content a reviewer saw, and Django admin cannot change an
example behind the services' back."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from curation.core.services import example_create, example_update
from curation.labeling import services as annotations
from curation.models import Annotation, Example, ExampleRevision
from tests.conftest import PASSWORD


def api_for(username: str) -> APIClient:
    client = APIClient()
    client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def approved(project, users) -> Example:
    example = example_create(
        project=project,
        user=users["reviewer"],
        messages=[{"role": "user", "content": "Where is my order?"}, {"role": "assistant", "content": "On its way."}],
        label="shipping",
        status=Example.Status.APPROVED,
    )
    assert example.status == Example.Status.APPROVED
    return example


# --- splits in bulk ----------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["annie", "rhea"])
def test_only_an_admin_may_change_splits_through_the_bulk_page(client, project, example, username):
    client.login(username=username, password=PASSWORD)
    response = client.post(
        f"/p/{project.slug}/examples/bulk/",
        {"scope": "selected", "ids": [example.pk], "field": "split", "value": "test"},
    )
    assert response.status_code == 403  # Django's 403 page, as for an annotator's bulk approval
    example.refresh_from_db()
    assert example.split == Example.Split.UNASSIGNED and example.version == 1


def test_an_annotator_cannot_change_splits_of_every_matching_example(client, project, example):
    client.login(username="annie", password=PASSWORD)
    response = client.post(
        f"/p/{project.slug}/examples/bulk/", {"scope": "filtered", "field": "split", "value": "train"}
    )
    assert response.status_code == 403
    example.refresh_from_db()
    assert example.split == Example.Split.UNASSIGNED


def test_an_annotator_cannot_move_one_example_to_another_split(client, project, example):
    page = client
    page.login(username="annie", password=PASSWORD)
    form = {"version": 1, "role": ["user", "assistant"], "content": ["Where is my order?", "On its way."]}
    response = page.post(f"/p/{project.slug}/examples/{example.pk}/edit/", form | {"split": "train"})
    assert response.status_code == 403
    response = api_for("annie").patch(
        f"/api/projects/{project.slug}/examples/{example.pk}/", {"version": 1, "split": "train"}, format="json"
    )
    assert response.status_code == 403 and "Only admins may move an example" in response.json()["detail"]
    example.refresh_from_db()
    assert example.split == Example.Split.UNASSIGNED and example.version == 1
    # The page offers no split to an annotator, and an edit that keeps the split still saves.
    assert b'name="split"' not in page.get(f"/p/{project.slug}/examples/{example.pk}/").content
    response = page.post(f"/p/{project.slug}/examples/{example.pk}/edit/", form | {"content": ["Where?", "Soon."]})
    assert response.status_code == 302
    response = api_for("adam").patch(
        f"/api/projects/{project.slug}/examples/{example.pk}/", {"version": 2, "split": "test"}, format="json"
    )
    assert response.status_code == 200
    example.refresh_from_db()
    assert example.split == Example.Split.TEST


def test_an_annotator_cannot_change_splits_through_the_bulk_api(project, example):
    for body in ({"ids": [example.pk]}, {"filters": {}}):
        response = api_for("annie").post(
            f"/api/projects/{project.slug}/examples/bulk/", {"field": "split", "value": "test", **body}, format="json"
        )
        assert response.status_code == 403
        assert "Only admins may move examples between splits" in response.json()["detail"]
    example.refresh_from_db()
    assert example.split == Example.Split.UNASSIGNED


def test_an_admin_still_changes_splits_in_bulk(project, example):
    response = api_for("adam").post(
        f"/api/projects/{project.slug}/examples/bulk/",
        {"field": "split", "value": "test", "ids": [example.pk]},
        format="json",
    )
    assert response.status_code == 200 and response.json() == {"changed": 1}
    example.refresh_from_db()
    assert example.split == Example.Split.TEST


def test_an_annotator_may_still_label_in_bulk(project, example):
    response = api_for("annie").post(
        f"/api/projects/{project.slug}/examples/bulk/",
        {"field": "label", "value": "billing", "ids": [example.pk]},
        format="json",
    )
    assert response.status_code == 200
    example.refresh_from_db()
    assert example.label.name == "billing"


# --- an approval covers the content a reviewer saw -----------------------------------------


def test_an_annotators_edit_of_an_approved_example_sends_it_back_to_review(client, project, approved):
    client.login(username="annie", password=PASSWORD)
    response = client.post(
        f"/p/{project.slug}/examples/{approved.pk}/edit/",
        {
            "version": approved.version,
            "role": ["user", "assistant"],
            "content": ["Where is my order?", "It was cancelled."],
            "label": "shipping",
            "split": approved.split,
            "status": approved.status,  # the form sends the status it showed
        },
    )
    assert response.status_code == 302
    approved.refresh_from_db()
    assert approved.status == Example.Status.NEEDS_REVIEW
    assert approved.messages[1]["content"] == "It was cancelled."
    revision = approved.revisions.first()
    assert revision.user.username == "annie"
    assert revision.before["status"] == "approved" and revision.after["status"] == "needs_review"


def test_an_annotators_label_change_through_the_api_sends_it_back_to_review(project, approved):
    response = api_for("annie").patch(
        f"/api/projects/{project.slug}/examples/{approved.pk}/", {"version": 1, "label": "billing"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "needs_review"
    revision = ExampleRevision.objects.filter(example=approved).first()
    assert revision.before["status"] == "approved" and revision.after["status"] == "needs_review"


def test_a_reviewers_edit_keeps_the_approval(project, approved, users):
    changed = example_update(example=approved, user=users["reviewer"], version=1, label="billing")
    assert changed.status == Example.Status.APPROVED


def test_an_annotators_change_outside_the_content_keeps_the_approval(project, approved, users):
    changed = example_update(example=approved, user=users["annotator"], version=1, metadata={"note": "checked"})
    assert changed.status == Example.Status.APPROVED


def test_an_annotators_answer_that_relabels_an_approved_example_sends_it_back(project, approved, users):
    annotations.annotation_submit(example=approved, user=users["annotator"], based_on_version=1, label="billing")
    approved.refresh_from_db()
    assert approved.label.name == "billing" and approved.status == Example.Status.NEEDS_REVIEW


def test_an_annotators_bulk_relabel_sends_approved_examples_back_to_review(project, approved, example):
    response = api_for("annie").post(
        f"/api/projects/{project.slug}/examples/bulk/",
        {"field": "label", "value": "billing", "ids": [approved.pk, example.pk]},
        format="json",
    )
    assert response.status_code == 200 and response.json() == {"changed": 2}
    approved.refresh_from_db()
    assert approved.status == Example.Status.NEEDS_REVIEW and approved.label.name == "billing"
    revision = ExampleRevision.objects.filter(example=approved).first()
    assert revision.after["status"] == "needs_review" and revision.after["label"] == "billing"
    example.refresh_from_db()
    assert example.status == Example.Status.NEEDS_REVIEW  # it was never approved


# --- Django admin ----------------------------------------------------------------------------


@pytest.fixture
def root(client, users):
    client.login(username="root", password=PASSWORD)
    return client


def test_django_admin_cannot_change_an_examples_messages_label_or_status(root, approved):
    response = root.post(
        f"/admin/curation/example/{approved.pk}/change/",
        {
            "project": approved.project_id,
            "messages": '[{"role": "user", "content": "Changed behind your back"}]',
            "label": "",
            "source": "human",
            "status": "approved",
            "split": "train",
            "metadata": "{}",
            "content_hash": "x",
        },
    )
    assert response.status_code == 403
    approved.refresh_from_db()
    assert approved.messages[0]["content"] == "Where is my order?" and approved.version == 1
    assert approved.revisions.count() == 1


def test_django_admin_shows_an_example_read_only(root, approved):
    response = root.get(f"/admin/curation/example/{approved.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Where is my order?" in page and 'name="messages"' not in page and 'name="_save"' not in page


def test_django_admin_cannot_add_or_delete_examples_or_rewrite_answers(root, approved, users):
    assert root.get("/admin/curation/example/add/").status_code == 403
    assert root.post(f"/admin/curation/example/{approved.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Example.objects.filter(pk=approved.pk).exists()
    answer = annotations.annotation_save_draft(
        example=approved, user=users["annotator"], based_on_version=1, label="billing"
    )
    response = root.post(
        f"/admin/curation/annotation/{answer.pk}/change/",
        {"example": approved.pk, "annotator": users["admin"].pk, "status": "submitted", "based_on_version": 1},
    )
    assert response.status_code == 403
    assert Annotation.objects.get(pk=answer.pk).annotator == users["annotator"]
