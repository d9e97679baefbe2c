"""Accepting weak labels from the label model or from majority vote: the panel's coverage and
accuracy on people's labels (worked out by hand on tests/rules/weak.py), the preview, and the
question asked before an older rule set moves labels back."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from curation.models import Example, ExampleRevision, RuleRun
from curation.rules import accepting
from curation.rules.accepting import NeedsConfirmation, accept_summary, weak_labels_accept
from curation.rules.services import rule_run_execute
from curation.rules.tasks import rule_run_start
from tests.conftest import PASSWORD
from tests.rules.conftest import write_rules
from tests.rules.weak import label_of, make_run


@pytest.fixture
def run(project, users) -> RuleRun:
    return make_run(project, users["admin"])


def curve(summary) -> dict[float, tuple]:
    return {p.threshold: (p.covered, p.correct, p.coverage, p.accuracy, p.acceptable) for p in summary.curve}


def test_the_curve_gives_coverage_and_accuracy_on_peoples_labels_for_each_source(run):
    lm = curve(accept_summary(run=run, source="label_model", threshold=0.65))
    # g1 right at 0.95, g2 wrong at 0.7, g3 right at 0.9, g4 wrong at 0.6; u1 0.97, u2 0.55 to write.
    assert lm[0.5] == (4, 2, 1.0, 0.5, 2)
    assert lm[0.65] == (3, 2, 0.75, pytest.approx(2 / 3), 1)
    assert lm[0.75] == (2, 2, 0.5, 1.0, 1)
    assert lm[0.95] == (1, 1, 0.25, 1.0, 1)
    mv = curve(accept_summary(run=run, source="majority", threshold=0.5))
    # Majority vote: g1 1.0, g2 0.67 and g3 1.0 right, no decision on g4.
    assert mv[0.5] == (3, 3, 0.75, 1.0, 2)
    assert mv[0.65] == (3, 3, 0.75, 1.0, 2)  # u2 0.67 still
    assert mv[0.7] == (2, 2, 0.5, 1.0, 1)


def test_the_chosen_threshold_is_on_the_curve_and_the_preview_lists_what_would_be_written(run, project):
    summary = accept_summary(run=run, source="majority", threshold=0.6)
    assert 0.6 in [p.threshold for p in summary.curve]
    assert (summary.point.gold, summary.point.covered, summary.point.correct) == (4, 3, 3)
    assert (summary.acceptable, summary.new, summary.relabel, summary.newest) == (2, 2, 0, None)
    assert [(r["text"], r["label"], r["confidence"], r["current"]) for r in summary.preview] == [
        ("u1", "billing", 1.0, None),
        ("u2", "shipping", 0.67, None),
    ]


def test_majority_vote_labels_are_accepted_with_their_source_in_the_history(run, project, users):
    changed = weak_labels_accept(run=run, user=users["admin"], threshold=0.6, source="majority")
    assert changed == 2
    assert (label_of(project, "u1"), label_of(project, "u2"), label_of(project, "u3")) == ("billing", "shipping", None)
    assert label_of(project, "g4") == "shipping"  # a person's label stays
    example = Example.objects.select_related("weak_label").get(messages__0__content="u2")
    assert example.weak_label.run == run and example.weak_label.accepted_from == "majority"
    assert example.weak_label.accepted_confidence == 0.67
    revision = ExampleRevision.objects.filter(example=example).first()
    assert revision.after["label_source"] == {"rule_set": 1, "model": "majority", "probability": 0.67}
    # The label model at 0.6 would give u1 the same label: only the source changes, and that is written.
    assert accept_summary(run=run, source="label_model", threshold=0.6).acceptable == 1
    assert weak_labels_accept(run=run, user=users["admin"], threshold=0.6, source="majority") == 0


def test_majority_vote_from_a_real_run_agrees_with_the_runs_own_figures(corpus, project, users):
    admin = users["admin"]
    write_rules(project, admin)
    run = rule_run_execute(run=RuleRun.objects.get(pk=rule_run_start(project=project, user=admin).pk))
    point = accept_summary(run=run, source="majority", threshold=0.0).point
    assert point.coverage == pytest.approx(run.metrics["majority"]["coverage"])
    assert point.accuracy == pytest.approx(run.metrics["majority"]["accuracy"])
    refund = run.weak_labels.get(example__messages__0__content="Refund my parcel shipping cost please")
    # Two billing votes (refund, cost) against one shipping vote (parcel).
    assert (refund.majority_label.name, refund.majority_confidence) == ("billing", pytest.approx(2 / 3))


def test_a_run_with_too_few_rules_offers_only_majority_vote(project, users):
    run = make_run(project, users["admin"], model="majority")
    assert accepting.sources_of(run) == ["majority"]
    with pytest.raises(accepting.RuleError):
        weak_labels_accept(run=run, user=users["admin"], threshold=0.5, source="label_model")


def test_accepting_an_older_run_asks_first_and_says_how_many_labels_would_change(run, project, users):
    admin = users["admin"]
    newer = make_run(project, admin, number=2, rows={"u1": (None, ("shipping", 0.99), ("shipping", 1.0))})
    assert weak_labels_accept(run=newer, user=admin, threshold=0.9) == 1
    with pytest.raises(NeedsConfirmation) as question:
        weak_labels_accept(run=run, user=admin, threshold=0.5)
    assert (question.value.summary.acceptable, question.value.summary.relabel) == (2, 1)
    assert question.value.summary.from_newer == 1 and question.value.status == 409
    assert "would write 2 labels" in question.value.message and "older than v2" in question.value.message
    assert label_of(project, "u1") == "shipping"  # nothing written
    assert weak_labels_accept(run=run, user=admin, threshold=0.5, confirm=True) == 2
    assert label_of(project, "u1") == "billing"


def test_the_run_page_shows_the_curve_and_asks_before_accepting_an_older_run(client, run, project, users):
    admin = users["admin"]
    newer = make_run(project, admin, number=2, rows={"u1": (None, ("shipping", 0.99), ("shipping", 1.0))})
    weak_labels_accept(run=newer, user=admin, threshold=0.9)
    client.login(username="adam", password=PASSWORD)
    url = f"/p/{project.slug}/rules/runs/{run.pk}/accept/"
    part = client.get(url, {"threshold": "0.6", "source": "majority"}, headers={"HX-Request": "true"}).content.decode()
    assert 'id="accept-curve"' in part and 'id="accept-preview"' in part and "u2" in part
    assert "Rule set v2 is newer than v1" in part
    asked = client.post(url, {"threshold": "0.6", "source": "majority"})
    assert asked.status_code == 409 and "Accept anyway (2 labels)" in asked.content.decode()
    assert label_of(project, "u1") == "shipping"
    done = client.post(url, {"threshold": "0.6", "source": "majority", "confirm": "1"}, follow=True)
    assert "2 examples labeled from rule set v1. Source: majority vote." in done.content.decode()
    page = client.get(f"/p/{project.slug}/rules/runs/{run.pk}/").content.decode()
    assert 'value="majority" checked' in page  # the better source on people's labels is chosen


def test_the_api_accepts_from_majority_vote_and_answers_409_for_an_older_run(client, run, project, users):
    from rest_framework.test import APIClient

    api = APIClient()
    api.login(username="adam", password=PASSWORD)
    url = f"/api/projects/{project.slug}/rule-runs/{run.pk}/accept/"
    summary = api.get(url, {"threshold": 0.5, "source": "majority"}).json()
    assert (summary["coverage"], summary["accuracy"], summary["acceptable"]) == (0.75, 1.0, 2)
    assert [r["text"] for r in summary["preview"]] == ["u1", "u2"]
    make_run(project, users["admin"], number=2, rows={"u3": (None, ("billing", 0.99), ("billing", 1.0))})
    refused = api.post(url, {"threshold": 0.5, "source": "majority"}, format="json")
    assert refused.status_code == 409 and refused.json()["acceptable"] == 2 and refused.json()["newest"] == 2
    accepted = api.post(url, {"threshold": 0.5, "source": "majority", "confirm": True}, format="json")
    assert accepted.json() == {"accepted": 2}


@pytest.mark.parametrize("who", ["annotator", "reviewer"])
def test_only_admins_may_accept(client, run, project, users, who):
    from rest_framework.test import APIClient

    with pytest.raises(PermissionDenied):
        weak_labels_accept(run=run, user=users[who], threshold=0.5, source="majority")
    client.login(username=users[who].username, password=PASSWORD)
    url = f"/p/{project.slug}/rules/runs/{run.pk}/accept/"
    assert client.post(url, {"threshold": "0.5", "source": "majority"}).status_code == 403
    api = APIClient()
    api.login(username=users[who].username, password=PASSWORD)
    api_url = f"/api/projects/{project.slug}/rule-runs/{run.pk}/accept/"
    assert api.post(api_url, {"threshold": 0.5, "source": "majority"}, format="json").status_code == 403
    assert not Example.objects.filter(weak_label__isnull=False).exists()
