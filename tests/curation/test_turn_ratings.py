"""Annotators rate single assistant turns, 1 to 5: kept on their annotation, refused on any
other turn or value, offered by the API and shown to the reviewer of a disagreement."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from curation.core.services import InvalidExample, example_create
from curation.labeling import services as svc
from curation.models import Annotation, Example
from tests.conftest import PASSWORD

TURNS = [
    {"role": "user", "content": "Where is my order?"},
    {"role": "assistant", "content": "Which order number?"},
    {"role": "user", "content": "1234"},
    {"role": "assistant", "content": "It ships today."},
]


@pytest.fixture
def chat(project, users) -> Example:
    return example_create(project=project, user=users["admin"], messages=TURNS)


def test_ratings_of_assistant_turns_are_kept_on_the_annotation(chat, users):
    annotation = svc.annotation_submit(
        example=chat, user=users["annotator"], based_on_version=1, turn_ratings={"1": 2, "3": 5}
    )

    annotation.refresh_from_db()
    assert annotation.turn_ratings == {"1": 2, "3": 5} and annotation.status == Annotation.Status.SUBMITTED


@pytest.mark.parametrize(
    "ratings,field,says",
    [
        ({"0": 3}, "turn_ratings.0", "message 0 is not an assistant turn"),
        ({"1": 6}, "turn_ratings.1", "from 1 to 5"),
        ({"1": 0}, "turn_ratings.1", "from 1 to 5"),
        ({"1": True}, "turn_ratings.1", "from 1 to 5"),
        ({"1": "4"}, "turn_ratings.1", "from 1 to 5"),
        ({"9": 4}, "turn_ratings", "not the index of a message"),
        ({"one": 4}, "turn_ratings", "not the index of a message"),
        ([4, 5], "turn_ratings", "expected an object"),
    ],
)
def test_a_rating_of_another_turn_or_out_of_range_is_refused(chat, users, ratings, field, says):
    with pytest.raises(InvalidExample) as refused:
        svc.annotation_submit(example=chat, user=users["annotator"], based_on_version=1, turn_ratings=ratings)

    assert refused.value.field == field and says in refused.value.message
    assert not Annotation.objects.filter(example=chat, status=Annotation.Status.SUBMITTED).exists()


def test_ratings_follow_the_annotators_own_edit_of_the_turns(chat, users):
    edited = [*TURNS[:2], {"role": "assistant", "content": "Let me check."}, *TURNS[3:]]

    annotation = svc.annotation_submit(
        example=chat, user=users["annotator"], based_on_version=1, messages=edited, turn_ratings={"2": 4}
    )

    assert annotation.turn_ratings == {"2": 4}


def test_a_draft_keeps_the_valid_ratings_and_drops_the_rest(chat, users):
    draft = svc.annotation_save_draft(
        example=chat, user=users["annotator"], based_on_version=1, turn_ratings={"1": 3, "2": 4, "3": 9}
    )

    assert draft.turn_ratings == {"1": 3}


def test_the_label_page_sends_a_rating_per_assistant_turn(client, project, chat, users):
    client.login(username="annie", password=PASSWORD)
    html = client.get(f"/p/{project.slug}/label/").content.decode()
    assert html.count('name="turn_rating"') == len(TURNS) + 1  # every turn, and the new-turn template

    response = client.post(
        f"/p/{project.slug}/label/{chat.pk}/submit/",
        {
            "version": 1,
            "role": [t["role"] for t in TURNS],
            "content": [t["content"] for t in TURNS],
            "turn_rating": ["", "", "", "4"],
        },
    )

    assert response.status_code == 302
    assert Annotation.objects.get(example=chat, annotator=users["annotator"]).turn_ratings == {"3": 4}


def test_the_api_takes_and_returns_turn_ratings(project, chat, users):
    api = APIClient()
    api.login(username="annie", password=PASSWORD)

    response = api.post(
        f"/api/projects/{project.slug}/examples/{chat.pk}/annotation/",
        {"based_on_version": 1, "turn_ratings": {"3": 5}},
        format="json",
    )
    refused = api.post(
        f"/api/projects/{project.slug}/examples/{chat.pk}/annotation/",
        {"based_on_version": 1, "turn_ratings": {"2": 5}},
        format="json",
    )

    assert response.status_code == 201 and response.json()["turn_ratings"] == {"3": 5}
    assert refused.status_code == 400 and "not an assistant turn" in refused.json()["turn_ratings.2"][0]


def test_the_reviewer_of_a_disagreement_sees_each_annotators_turn_ratings(client, project, chat, users):
    project.annotations_per_example = 2
    project.save()
    svc.annotation_submit(
        example=chat, user=users["annotator"], based_on_version=1, label="billing", turn_ratings={"3": 2}
    )
    svc.annotation_submit(
        example=chat, user=users["reviewer"], based_on_version=1, label="shipping", turn_ratings={"1": 5}
    )

    client.login(username="rhea", password=PASSWORD)
    html = client.get(f"/p/{project.slug}/disagreements/{chat.pk}/").content.decode()

    assert "turn 4: 2/5" in html and "turn 2: 5/5" in html
