"""Ranking candidates when none of them is good enough: the preference between them is
recorded as ranked, but no candidate becomes an approved example; every one is rejected with
the reason "none_good_enough". In the service, on the ranking page (button and key) and in
the API."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from curation.generation.stats import NONE_GOOD_ENOUGH, REASON_LABELS, job_stats
from curation.models import Draft, Example, PreferencePair
from curation.review.services import drafts_rank


def answer(draft: Draft) -> str:
    return draft.example.messages[draft.target]["content"]


def test_the_service_records_the_preference_and_approves_none(drafts, users, project):
    first, second, third = drafts(count=1, candidates=3)
    order = [second.example_id, third.example_id, first.example_id]
    top = drafts_rank(
        project=project,
        user=users["reviewer"],
        order=order,
        versions=dict.fromkeys(order, 1),
        note="all three are cut off",
        none_good_enough=True,
    )
    assert top.example_id == second.example_id and top.decision == Draft.Decision.REJECTED
    decided = {d.example_id: d for d in Draft.objects.select_related("example")}
    for place, pk in enumerate(order, start=1):
        draft = decided[pk]
        assert (draft.decision, draft.rank, draft.reasons) == (Draft.Decision.REJECTED, place, [NONE_GOOD_ENOUGH])
        assert draft.example.status == Example.Status.REJECTED and draft.reviewed_by == users["reviewer"]
    assert decided[order[0]].note == "all three are cut off"
    assert not Example.objects.filter(status=Example.Status.APPROVED).exists()
    pairs = [(p.chosen["content"], p.rejected["content"], p.origin) for p in PreferencePair.objects.order_by("id")]
    assert pairs == [
        (answer(second), answer(third), "ranking"),
        (answer(second), answer(first), "ranking"),
        (answer(third), answer(first), "ranking"),
    ]
    assert str(REASON_LABELS[NONE_GOOD_ENOUGH]) == "None of the candidates was good enough"
    stats = job_stats(project)[first.job_id]
    assert stats.rejected == 3 and stats.accepted == 0
    assert [code for code, _label, _n in stats.reasons] == [NONE_GOOD_ENOUGH]


@pytest.fixture
def reviewer(client, users):
    client.force_login(users["reviewer"])
    return client


def test_the_ranking_page_offers_it_by_button_and_key(reviewer, project, drafts):
    first, second = drafts(count=1, candidates=2)
    page = reviewer.get(f"/p/{project.slug}/drafts/").content.decode()
    assert 'id="rank-none" name="none_good_enough" value="1"' in page and "None is good enough" in page
    assert "n = save the ranking but approve none" in page
    data = {
        "order": [second.example_id, first.example_id],
        f"version_{first.example_id}": 1,
        f"version_{second.example_id}": 1,
        "none_good_enough": "1",
    }
    response = reviewer.post(f"/p/{project.slug}/drafts/rank/", data, follow=True)
    assert "Ranking saved without approving any candidate: 1 preference pair was recorded." in (
        response.content.decode()
    )
    assert set(Draft.objects.values_list("decision", flat=True)) == {Draft.Decision.REJECTED}
    pair = PreferencePair.objects.get()
    assert (pair.chosen["content"], pair.rejected["content"]) == (answer(second), answer(first))


def test_the_api_takes_none_good_enough(users, project, drafts):
    first, second = drafts(count=1, candidates=2)
    api = APIClient()
    api.force_login(users["reviewer"])
    order = [first.example_id, second.example_id]
    response = api.post(
        f"/api/projects/{project.slug}/drafts/rank/",
        {"order": order, "versions": {str(pk): 1 for pk in order}, "none_good_enough": True},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["approved"] is False and body["pairs"] == 1 and body["best"]["decision"] == "rejected"
    assert body["best"]["reasons"] == [NONE_GOOD_ENOUGH]
    assert not Example.objects.filter(status=Example.Status.APPROVED).exists()
