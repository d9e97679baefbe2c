"""Withdrawing a rule set's labels: only that version's, never a label a person has set since
(that one is reported), every change in the example's history."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from rest_framework.test import APIClient

from curation.core.services import example_update
from curation.models import Example, ExampleRevision
from curation.rules.accepting import weak_labels_accept, weak_labels_withdraw, withdrawal_plan
from tests.conftest import PASSWORD
from tests.rules.weak import label_of, make_run


@pytest.fixture
def accepted(project, users):
    """v1's labels on u1 and u2 (majority vote), then v2's on u3."""
    admin = users["admin"]
    v1 = make_run(project, admin)
    assert weak_labels_accept(run=v1, user=admin, threshold=0.6, source="majority") == 2
    v2 = make_run(project, admin, number=2, rows={"u3": (None, ("shipping", 0.99), ("shipping", 1.0))})
    assert weak_labels_accept(run=v2, user=admin, threshold=0.9) == 1
    return v1, v2


def example(text: str) -> Example:
    return Example.objects.get(messages__0__content=text)


def test_withdrawing_removes_only_that_versions_labels_and_keeps_a_persons_later_change(project, users, accepted):
    v1, v2 = accepted
    u2 = example("u2")
    example_update(example=u2, user=users["annotator"], version=u2.version, label="billing")
    plan = withdrawal_plan(run=v1)
    assert (plan.withdrawn, plan.kept_count) == (1, 1)

    done = weak_labels_withdraw(run=v1, user=users["admin"])

    assert (done.withdrawn, done.kept_count) == (1, 1)
    assert [(k.text, k.label, k.by) for k in done.kept] == [("u2", "billing", "annie")]
    assert label_of(project, "u1") is None and example("u1").weak_label is None
    assert label_of(project, "u2") == "billing"  # the person's label
    assert label_of(project, "u3") == "shipping" and example("u3").weak_label.run == v2  # another version's
    assert [label_of(project, t) for t in ("g1", "g2", "g3", "g4")] == ["billing", "billing", "shipping", "shipping"]
    revision = ExampleRevision.objects.filter(example=example("u1")).first()
    assert (revision.before["label"], revision.after["label"]) == ("billing", None)
    assert revision.after["label_source"] == {"rule_set": 1, "model": "majority", "withdrawn": True}
    assert revision.user == users["admin"]
    # Withdrawing again finds nothing to take off; the person's label is still reported as kept.
    again = weak_labels_withdraw(run=v1, user=users["admin"])
    assert (again.withdrawn, again.kept_count) == (0, 1)


def test_a_label_replaced_by_a_newer_rule_set_is_neither_withdrawn_nor_reported(project, users, accepted):
    v1, _v2 = accepted
    v3 = make_run(project, users["admin"], number=3, rows={"u1": (None, ("shipping", 0.99), ("shipping", 1.0))})
    weak_labels_accept(run=v3, user=users["admin"], threshold=0.9)
    done = weak_labels_withdraw(run=v1, user=users["admin"])
    assert (done.withdrawn, done.kept_count) == (1, 0)  # u2 only
    assert label_of(project, "u1") == "shipping"


def test_the_run_page_offers_withdrawing_and_reports_what_was_kept(client, project, users, accepted):
    v1, _v2 = accepted
    u2 = example("u2")
    example_update(example=u2, user=users["annotator"], version=u2.version, label="billing")
    client.login(username="adam", password=PASSWORD)
    page = client.get(f"/p/{project.slug}/rules/runs/{v1.pk}/").content.decode()
    assert "1 example carries a label accepted from this rule set." in page
    url = f"/p/{project.slug}/rules/runs/{v1.pk}/withdraw/"
    plan = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "Withdraw 1 label" in plan and 'id="withdraw-kept"' in plan and "annie" in plan
    done = client.post(url, headers={"HX-Request": "true"}).content.decode()
    assert "1 label of rule set v1 withdrawn" in done and "u2" in done
    assert label_of(project, "u1") is None and label_of(project, "u2") == "billing"
    rules = client.get(f"/p/{project.slug}/rules/").content.decode()
    assert f'href="/p/{project.slug}/rules/runs/{_v2.pk}/withdraw/#withdraw"' in rules


def test_the_api_withdraws_and_lists_the_kept_labels(project, users, accepted):
    v1, _v2 = accepted
    u2 = example("u2")
    example_update(example=u2, user=users["annotator"], version=u2.version, label="billing")
    api = APIClient()
    api.login(username="adam", password=PASSWORD)
    url = f"/api/projects/{project.slug}/rule-runs/{v1.pk}/withdraw/"
    assert api.get(url).json()["withdrawn"] == 1
    body = api.post(url).json()
    assert (body["withdrawn"], body["kept"]) == (1, 1)
    assert body["kept_examples"][0]["text"] == "u2" and body["kept_examples"][0]["by"] == "annie"


@pytest.mark.parametrize("who", ["annotator", "reviewer"])
def test_only_admins_may_withdraw(client, project, users, accepted, who):
    v1, _v2 = accepted
    with pytest.raises(PermissionDenied):
        weak_labels_withdraw(run=v1, user=users[who])
    client.login(username=users[who].username, password=PASSWORD)
    assert client.post(f"/p/{project.slug}/rules/runs/{v1.pk}/withdraw/").status_code == 403
    api = APIClient()
    api.login(username=users[who].username, password=PASSWORD)
    assert api.post(f"/api/projects/{project.slug}/rule-runs/{v1.pk}/withdraw/").status_code == 403
    assert label_of(project, "u1") == "billing"
