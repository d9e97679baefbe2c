"""Combined rules through the services: a combination is checked against the project's rules
when saved, previews and runs use the rules it combines (active or not), and a rule that a
combination uses cannot be deleted from under it."""

from __future__ import annotations

import pytest

from curation.models import RuleRun
from curation.rules import services as svc
from curation.rules.spec import RuleError

pytestmark = pytest.mark.django_db


def keywords(project, admin, name: str, words: list[str], label: str, active: bool = True):
    return svc.rule_create(
        project=project,
        user=admin,
        name=name,
        kind="keywords",
        params={"keywords": words},
        label=label,
        target="user",
        active=active,
    )


def combine(project, admin, name: str, op: str, rules: list[int], label: str = "billing"):
    return svc.rule_create(
        project=project,
        user=admin,
        name=name,
        kind="combine",
        params={"op": op, "rules": rules},
        label=label,
        target="user",
    )


def test_a_combination_of_missing_rules_or_a_cycle_is_refused_when_saved(project, corpus, users):
    admin = users["admin"]
    refund = keywords(project, admin, "refund", ["refund"], "billing")
    with pytest.raises(RuleError, match="no rule 999"):
        combine(project, admin, "bad", "or", [refund.pk, 999])
    first = combine(project, admin, "first", "not", [refund.pk])
    second = combine(project, admin, "second", "and", [refund.pk, first.pk])
    with pytest.raises(RuleError, match="cycle"):
        svc.rule_update(rule=first, user=admin, version=first.version, params={"op": "not", "rules": [second.pk]})


def test_a_preview_and_a_run_use_an_inactive_rule_that_a_combination_names(project, corpus, users):
    admin = users["admin"]
    refund = keywords(project, admin, "refund", ["refund"], "billing", active=False)
    parcel = keywords(project, admin, "parcel", ["parcel"], "shipping", active=False)
    both = combine(project, admin, "refund and parcel", "and", [refund.pk, parcel.pk])
    keywords(project, admin, "invoice", ["invoice"], "billing")

    data = svc.rule_clean(
        project=project,
        name="",
        kind="combine",
        params={"op": "and", "rules": [refund.pk, parcel.pk]},
        label="billing",
        target="user",
        require_name=False,
    )
    preview = svc.rule_preview(project=project, rule=data)
    assert preview.hits == 1  # "Refund my parcel shipping cost please"

    run = svc.rule_run_create(project=project, user=admin)
    assert [r["id"] for r in run.rules] == [both.pk, both.pk + 1]
    run = svc.rule_run_execute(run=run)
    assert run.status == RuleRun.Status.DONE, run.error
    votes = {w.example.first_user_text: w.votes for w in run.weak_labels.select_related("example")}
    assert votes["Refund my parcel shipping cost please"] == {str(both.pk): "billing"}
    assert votes["Can I get a refund for the grinder?"] == {}


def test_a_rule_a_combination_uses_cannot_be_deleted(project, corpus, users):
    admin = users["admin"]
    refund = keywords(project, admin, "refund", ["refund"], "billing")
    combine(project, admin, "not refund", "not", [refund.pk])

    with pytest.raises(RuleError, match="not refund"):
        svc.rule_delete(rule=refund, user=admin)


def test_the_page_and_the_api_say_why_a_combined_rule_stays(client, project, corpus, users):
    from rest_framework.test import APIClient

    admin = users["admin"]
    refund = keywords(project, admin, "refund", ["refund"], "billing")
    combine(project, admin, "not refund", "not", [refund.pk])
    client.force_login(admin)

    page = client.post(f"/p/{project.slug}/rules/{refund.pk}/delete/", follow=True)
    assert "not refund" in page.content.decode()
    api = APIClient()
    api.force_authenticate(admin)
    response = api.delete(f"/api/projects/{project.slug}/rules/{refund.pk}/")
    assert response.status_code == 400 and "not refund" in str(response.json())
    assert project.rules.filter(pk=refund.pk).exists()
