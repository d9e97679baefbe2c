"""The weak-supervision API as a script or a front end uses it: admins write, preview and
apply rules, read the weak labels and accept them; nobody else may touch rules."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from curation.models import Example, Label, LabelingRule, Membership, Project, Role, RuleRun
from curation.rules import spec as S
from curation.rules.services import rule_create, rule_run_execute
from curation.rules.tasks import rule_run_start
from tests.conftest import PASSWORD
from tests.rules.conftest import write_rules

KEYWORD_RULE = {"name": "refunds", "kind": "keywords", "params": {"keywords": ["refund"]}, "label": "billing"}


def client_for(username: str | None) -> APIClient:
    client = APIClient()
    if username:
        client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def adam(users) -> APIClient:
    return client_for("adam")


def base(project) -> str:
    return f"/api/projects/{project.slug}/"


@pytest.fixture
def run(corpus, project, users) -> RuleRun:
    write_rules(project, users["admin"])
    return rule_run_execute(run=RuleRun.objects.get(pk=rule_run_start(project=project, user=users["admin"]).pk))


@pytest.fixture
def other(users) -> Project:
    """A second project adam also administers, to check ids never cross projects."""
    other = Project.objects.create(name="Other", slug="other", kind=Project.Kind.CHAT)
    Label.objects.create(project=other, name="billing")
    Label.objects.create(project=other, name="shipping")
    Membership.objects.create(project=other, user=users["admin"], role=Role.ADMIN)
    return other


# --- rules ----------------------------------------------------------------------------


def test_an_admin_creates_lists_edits_and_deletes_a_rule(adam, corpus, project):
    response = adam.post(base(project) + "rules/", KEYWORD_RULE, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["name"], created["kind"], created["label"], created["version"]) == (
        "refunds",
        "keywords",
        "billing",
        1,
    )
    assert created["params"]["keywords"] == ["refund"] and created["target"] == "user"
    assert created["created_by"] == "adam"
    # Three examples ask for a refund; one of them a person labeled billing.
    assert created["stats"]["saved"]["hits"] == 3 and created["stats"]["saved"]["accuracy"] == 1.0

    listed = adam.get(base(project) + "rules/").json()
    assert [r["id"] for r in listed] == [created["id"]]
    assert listed[0]["stats"] == created["stats"]

    url = base(project) + f"rules/{created['id']}/"
    response = adam.patch(url, {"version": 1, "params": {"keywords": ["refund", "invoice"]}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 2 and response.json()["stats"]["saved"]["hits"] == 5
    assert adam.get(url).json()["params"]["keywords"] == ["refund", "invoice"]

    history = adam.get(url + "history/").json()
    assert [h["version"] for h in history] == [2, 1]
    assert history[1]["spec"]["params"]["keywords"] == ["refund"] and history[0]["edited_by"] == "adam"
    assert history[0]["stats"]["saved"]["hits"] == 5

    assert adam.delete(url).status_code == 204
    assert not LabelingRule.objects.exists()
    assert adam.get(url).status_code == 404


def test_an_admin_can_switch_a_rule_off(adam, project, users):
    rule = rule_create(project=project, user=users["admin"], **KEYWORD_RULE, target="user")
    response = adam.patch(base(project) + f"rules/{rule.pk}/", {"version": 1, "active": False}, format="json")
    assert response.status_code == 200 and response.json()["active"] is False


@pytest.mark.parametrize("who", ["annie", "rhea"])
def test_annotators_and_reviewers_may_not_read_or_write_rules(who, project, users, run):
    rule = LabelingRule.objects.first()
    client = client_for(who)
    rule_url = base(project) + f"rules/{rule.pk}/"
    run_url = base(project) + f"rule-runs/{run.pk}/"
    assert client.get(base(project) + "rules/").status_code == 403
    assert client.post(base(project) + "rules/", KEYWORD_RULE, format="json").status_code == 403
    assert client.post(base(project) + "rules/preview/", KEYWORD_RULE, format="json").status_code == 403
    assert client.get(rule_url).status_code == 403
    assert client.get(rule_url + "history/").status_code == 403
    assert client.patch(rule_url, {"version": 1, "name": "mine"}, format="json").status_code == 403
    assert client.delete(rule_url).status_code == 403
    assert client.get(base(project) + "rule-runs/").status_code == 403
    assert client.post(base(project) + "rule-runs/").status_code == 403
    assert client.get(run_url).status_code == 403
    assert client.get(run_url + "weak-labels/").status_code == 403
    assert client.post(run_url + "accept/", {"threshold": 0.5}, format="json").status_code == 403
    rule.refresh_from_db()
    assert rule.name == "billing words" and rule.version == 1
    assert LabelingRule.objects.count() == 3 and RuleRun.objects.count() == 1
    assert not Example.objects.filter(weak_label__isnull=False).exists()


def test_outsiders_get_404_and_anonymous_callers_401(project, users, run):
    rule = LabelingRule.objects.first()
    outsider, anonymous = client_for("outsider"), client_for(None)
    for path in ("rules/", f"rules/{rule.pk}/", f"rule-runs/{run.pk}/", f"rule-runs/{run.pk}/weak-labels/"):
        assert outsider.get(base(project) + path).status_code == 404
        assert anonymous.get(base(project) + path).status_code == 401
    assert outsider.delete(base(project) + f"rules/{rule.pk}/").status_code == 404
    assert anonymous.delete(base(project) + f"rules/{rule.pk}/").status_code == 401
    assert LabelingRule.objects.count() == 3


def test_a_superuser_may_work_with_rules(project, users):
    response = client_for("root").post(base(project) + "rules/", KEYWORD_RULE, format="json")
    assert response.status_code == 201 and response.json()["created_by"] == "root"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"kind": "regex", "params": {"pattern": r"(a)\1"}}, "pattern", "Back-references"),
        ({"kind": "regex", "params": {"pattern": r"foo(?=bar)"}}, "pattern", "Lookahead"),
        ({"params": {"keywords": []}}, "keywords", "at least one"),
        ({"params": {"keywords": ["refund"], "mode": "some"}}, "mode", "any or all"),
        ({"kind": "length", "params": {"min": 10, "max": 2}}, "max", "below the minimum"),
        ({"label": "refunds"}, "label", "project's labels"),
        ({"name": "  "}, "name", "name"),
        ({"kind": "python"}, "kind", "python"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(adam, project, changes, field, words):
    response = adam.post(base(project) + "rules/", {**KEYWORD_RULE, **changes}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field] and words in body[field][0]
    assert not LabelingRule.objects.exists()


def test_a_second_rule_with_the_same_name_is_refused(adam, project, users):
    rule_create(project=project, user=users["admin"], **KEYWORD_RULE, target="user")
    response = adam.post(base(project) + "rules/", KEYWORD_RULE, format="json")
    assert response.status_code == 400 and "exists" in response.json()["name"][0]


def test_a_bad_edit_is_refused_naming_the_field_and_changes_nothing(adam, project, users):
    rule = rule_create(project=project, user=users["admin"], **KEYWORD_RULE, target="user")
    url = base(project) + f"rules/{rule.pk}/"
    response = adam.patch(url, {"version": 1, "kind": "regex", "params": {"pattern": r"(x)\1"}}, format="json")
    assert response.status_code == 400 and "pattern" in response.json()
    assert adam.patch(url, {"name": "no version"}, format="json").json() == {"version": ["This field is required."]}
    rule.refresh_from_db()
    assert (rule.kind, rule.version) == ("keywords", 1)


def test_a_stale_edit_is_refused_with_409_and_the_current_rule(adam, project, users):
    rule = rule_create(project=project, user=users["admin"], **KEYWORD_RULE, target="user")
    url = base(project) + f"rules/{rule.pk}/"
    assert client_for("root").patch(url, {"version": 1, "name": "refund words"}, format="json").status_code == 200

    response = adam.patch(url, {"version": 1, "label": "shipping"}, format="json")

    assert response.status_code == 409
    body = response.json()
    assert "version 2" in body["detail"]
    assert body["current"]["version"] == 2 and body["current"]["name"] == "refund words"
    assert body["current"]["label"] == "billing" and "saved" in body["current"]["stats"]
    rule.refresh_from_db()
    assert rule.label.name == "billing", "the stale write must not land"


def test_a_rule_of_another_project_is_not_found(adam, project, other, users):
    theirs = rule_create(project=other, user=users["admin"], **KEYWORD_RULE, target="user")
    url = base(project) + f"rules/{theirs.pk}/"
    assert adam.get(url).status_code == 404
    assert adam.get(url + "history/").status_code == 404
    assert adam.patch(url, {"version": 1, "name": "taken"}, format="json").status_code == 404
    assert adam.delete(url).status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "refunds"


def test_listing_rules_costs_the_same_for_many_rules(adam, project, users, django_assert_max_num_queries):
    for i in range(15):
        rule_create(
            project=project,
            user=users["admin"],
            name=f"rule {i}",
            kind=S.KEYWORDS,
            params={"keywords": [f"word{i}"]},
            label="billing",
            target="user",
        )
    with django_assert_max_num_queries(8):
        response = adam.get(base(project) + "rules/")
    assert len(response.json()) == 15 and all("saved" in r["stats"] for r in response.json())


# --- preview --------------------------------------------------------------------------


def test_the_preview_gives_offsets_that_slice_the_text_to_what_matched(adam, corpus, project):
    rule = {"kind": "keywords", "params": {"keywords": "refund, parcel"}, "label": "billing"}
    response = adam.post(base(project) + "rules/preview/", rule, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["hits"], body["scanned"], body["total"], body["limited"]) == (6, 12, 12, False)
    assert body["coverage"] == 0.5
    # Among people's labels it hit one billing and two shipping examples.
    assert (body["gold_hits"], body["correct"]) == (3, 1) and body["accuracy"] == pytest.approx(1 / 3)
    assert len(body["sample"]) == 6
    for item in body["sample"]:
        assert item["text"] == Example.objects.get(pk=item["id"]).first_user_text
        assert item["matches"]
        for start, end in item["matches"]:
            assert item["text"][start:end].lower() in ("refund", "parcel")
    both = next(item for item in body["sample"] if item["text"] == "Refund my parcel shipping cost please")
    assert [both["text"][a:b] for a, b in both["matches"]] == ["Refund", "parcel"]
    assert next(item for item in body["sample"] if item["id"] == corpus[1].pk)["gold"] == "billing"
    assert not LabelingRule.objects.exists(), "a preview saves nothing"


def test_the_preview_finds_japanese_text_and_refuses_a_bad_pattern(adam, corpus, project):
    rule = {"kind": "regex", "params": {"pattern": "返金"}, "label": "billing"}
    body = adam.post(base(project) + "rules/preview/", rule, format="json").json()
    assert body["hits"] == 1
    [item] = body["sample"]
    assert [item["text"][a:b] for a, b in item["matches"]] == ["返金"] and item["gold"] is None

    bad = {**rule, "params": {"pattern": "(unclosed"}}
    response = adam.post(base(project) + "rules/preview/", bad, format="json")
    assert response.status_code == 400 and "regular expression" in response.json()["pattern"][0]


# --- runs -----------------------------------------------------------------------------


def test_starting_a_run_applies_the_rules_and_the_run_shows_analysis_and_metrics(
    adam, corpus, project, users, django_capture_on_commit_callbacks
):
    write_rules(project, users["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        response = adam.post(base(project) + "rule-runs/")
    assert response.status_code == 202, response.content
    started = response.json()
    assert started["number"] == 1 and started["total"] == 12 and started["created_by"] == "adam"

    run = adam.get(base(project) + f"rule-runs/{started['id']}/").json()
    assert run["status"] == "done", run["error"]
    assert run["progress"] == 1.0 and run["processed"] == 12 and run["finished_at"]
    assert [row["name"] for row in run["analysis"]] == ["billing words", "parcel", "amounts"]
    assert run["analysis"][1]["polarity"] == ["shipping"] and run["analysis"][1]["accuracy"] == 1.0
    assert run["metrics"]["model"] == "label_model" and run["metrics"]["majority"]["accuracy"] == 1.0
    assert run["label_names"] == ["billing", "shipping"] and len(run["rules"]) == 3

    listed = adam.get(base(project) + "rule-runs/").json()
    assert listed["count"] == 1 and listed["results"][0]["status"] == "done"
    assert "analysis" not in listed["results"][0]
    # The rule's history now carries this run's figures.
    rule = LabelingRule.objects.get(name="parcel")
    assert adam.get(base(project) + f"rules/{rule.pk}/history/").json()[0]["stats"]["run"]["number"] == 1


def test_a_run_without_active_rules_is_refused_naming_why(adam, project, users):
    rule = rule_create(project=project, user=users["admin"], **KEYWORD_RULE, target="user", active=False)
    response = adam.post(base(project) + "rule-runs/")
    assert response.status_code == 400 and "active rule" in response.json()["rules"][0]
    assert not RuleRun.objects.exists() and rule.pk


def test_a_run_of_another_project_is_not_found(adam, project, other, users, run):
    theirs = RuleRun.objects.create(project=other, number=1, status=RuleRun.Status.DONE)
    url = base(project) + f"rule-runs/{theirs.pk}/"
    assert adam.get(url).status_code == 404
    assert adam.get(url + "weak-labels/").status_code == 404
    assert adam.get(url + "accept/", {"threshold": 0.5}).status_code == 404
    assert adam.post(url + "accept/", {"threshold": 0.5}, format="json").status_code == 404
    assert adam.get(base(other) + f"rule-runs/{run.pk}/").status_code == 404


# --- weak labels ----------------------------------------------------------------------


def test_weak_labels_are_listed_least_confident_first_and_filtered(adam, project, run):
    url = base(project) + f"rule-runs/{run.pk}/weak-labels/"
    body = adam.get(url).json()
    assert body["count"] == 12
    confidences = [w["confidence"] for w in body["results"]]
    assert confidences == sorted(confidences)
    texts = {e.pk: e.first_user_text for e in Example.objects.filter(project=project)}

    conflicted = adam.get(url, {"conflict": "true"}).json()["results"]
    assert [texts[w["example"]] for w in conflicted] == ["Refund my parcel shipping cost please"]
    [row] = conflicted
    assert set(row["votes"].values()) == {"billing", "shipping"}
    assert set(row["probabilities"]) == {"billing", "shipping"}
    assert adam.get(url, {"conflict": "false"}).json()["count"] == 11

    sure = adam.get(url, {"min_confidence": 0.9}).json()["results"]
    assert sure and all(w["confidence"] >= 0.9 and w["label"] for w in sure)
    unsure = adam.get(url, {"max_confidence": 0.0}).json()["results"]
    assert "Hello, nice shop" in {texts[w["example"]] for w in unsure}
    assert all(w["label"] is None and w["votes"] == {} for w in unsure)
    assert adam.get(url, {"min_confidence": 0.5, "max_confidence": 0.4}).json()["count"] == 0
    descending = [w["confidence"] for w in adam.get(url, {"sort": "-confidence"}).json()["results"]]
    assert descending == sorted(descending, reverse=True)

    response = adam.get(url, {"min_confidence": "high"})
    assert response.status_code == 400 and "min_confidence" in response.json()
    assert "conflict" in adam.get(url, {"conflict": "maybe"}).json()


def test_listing_weak_labels_does_not_query_per_row(adam, project, run, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = adam.get(base(project) + f"rule-runs/{run.pk}/weak-labels/")
    assert len(response.json()["results"]) == 12


def test_accepting_weak_labels_labels_examples_and_they_show_where_the_label_came_from(adam, project, run):
    url = base(project) + f"rule-runs/{run.pk}/accept/"
    acceptable = adam.get(url, {"threshold": 0.9}).json()["acceptable"]
    assert acceptable > 0

    response = adam.post(url, {"threshold": 0.9}, format="json")

    assert response.status_code == 200 and response.json() == {"accepted": acceptable}
    assert adam.get(url, {"threshold": 0.9}).json()["acceptable"] == 0
    example = Example.objects.get(project=project, messages__0__content="I need an invoice for last month")
    shown = adam.get(base(project) + f"examples/{example.pk}/").json()
    assert shown["label"] == "billing"
    source = shown["label_source"]
    assert source["rule_set"] == 1 and source["run_id"] == run.pk and source["probability"] >= 0.9
    person = Example.objects.get(project=project, messages__0__content="I was charged twice for my order")
    assert adam.get(base(project) + f"examples/{person.pk}/").json()["label_source"] is None


def test_a_threshold_outside_zero_to_one_is_refused(adam, project, run):
    url = base(project) + f"rule-runs/{run.pk}/accept/"
    assert "threshold" in adam.post(url, {"threshold": 1.5}, format="json").json()
    assert "threshold" in adam.post(url, {}, format="json").json()
    assert adam.get(url).status_code == 400
    assert not Example.objects.filter(weak_label__isnull=False).exists()


def test_weak_labels_of_an_unfinished_run_cannot_be_accepted(adam, project, users, corpus):
    write_rules(project, users["admin"])
    queued = rule_run_start(project=project, user=users["admin"])  # its task waits for the commit
    response = adam.post(base(project) + f"rule-runs/{queued.pk}/accept/", {"threshold": 0.5}, format="json")
    assert response.status_code == 400 and "finished" in response.json()["run"][0]


def test_the_example_list_shows_label_sources_without_a_query_per_row(
    adam, project, run, users, django_assert_max_num_queries
):
    adam.post(base(project) + f"rule-runs/{run.pk}/accept/", {"threshold": 0.5}, format="json")
    with django_assert_max_num_queries(8):
        response = adam.get(base(project) + "examples/")
    sources = [e["label_source"] for e in response.json()["results"]]
    assert any(s is not None and s["rule_set"] == 1 for s in sources) and None in sources


def test_the_openapi_schema_describes_the_rule_endpoints(adam):
    paths = adam.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert {"get", "post"} <= set(paths["/api/projects/{slug}/rules/"])
    assert {"get", "patch", "delete"} <= set(paths["/api/projects/{slug}/rules/{rule_id}/"])
    assert {"get", "post"} <= set(paths["/api/projects/{slug}/rule-runs/{run_id}/accept/"])
