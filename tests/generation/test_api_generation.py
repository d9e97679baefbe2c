"""The generation API as a script uses it: templates, synthetic jobs, the draft review loop and
preference pairs. Reviewers and admins may do all of it; annotators get 403, outsiders 404."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from curation.connections.services import embedded_connection
from curation.generation.templates import template_save
from curation.models import Draft, Example, GenerationJob, Membership, PreferencePair, Project, PromptTemplate, Role
from curation.review.services import draft_approve, draft_reject, drafts_rank

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'
API_KEY = "sk-test-secret-do-not-store"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def rhea(users) -> APIClient:
    return client_for(users["reviewer"])


def base(project) -> str:
    return f"/api/projects/{project.slug}/"


def job_settings(template: PromptTemplate, **changes) -> dict:
    settings = {
        "template": template.pk,
        "count": 3,
        "candidates": 2,
        "topics": ["refunds", "delivery"],
        "task_types": ["customer support"],
        "temperature": 0.8,
        "max_new_tokens": 128,
        "critique": True,
        "seed": 7,
    }
    settings.update(changes)
    return settings


# --- who may -----------------------------------------------------------------------------

ENDPOINTS = [
    ("get", "templates/"),
    ("post", "templates/"),
    ("get", "templates/{template}/"),
    ("get", "generation-jobs/"),
    ("post", "generation-jobs/"),
    ("get", "generation-jobs/{job}/"),
    ("post", "generation-jobs/{job}/cancel/"),
    ("post", "generation-jobs/{job}/resume/"),
    ("get", "generation-stats/"),
    ("get", "drafts/"),
    ("post", "drafts/rank/"),
    ("get", "drafts/{draft}/"),
    ("post", "drafts/{draft}/decide/"),
    ("get", "preference-pairs/"),
    ("get", "preference-pairs/export/"),
]


@pytest.fixture
def objects(drafts) -> dict[str, int]:
    made = drafts(count=1, candidates=2)
    return {"template": made[0].template_id, "job": made[0].job_id, "draft": made[0].example_id}


def call(client: APIClient, project, method: str, path: str, objects: dict[str, int]):
    url = base(project) + path.format(**objects)
    return client.get(url) if method == "get" else client.post(url, {}, format="json")


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_outsiders_get_404_and_annotators_403(method, path, project, users, objects):
    assert call(client_for(users["outsider"]), project, method, path, objects).status_code == 404
    response = call(client_for(users["annotator"]), project, method, path, objects)
    assert response.status_code == 403
    assert Draft.objects.filter(decision=Draft.Decision.PENDING).count() == 2
    assert GenerationJob.objects.count() == 1 and PromptTemplate.objects.count() == 1


@pytest.mark.parametrize("method,path", ENDPOINTS)
@pytest.mark.parametrize("role", ["reviewer", "admin"])
def test_reviewers_and_admins_are_let_in(role, method, path, project, users, objects):
    response = call(client_for(users[role]), project, method, path, objects)
    # An empty POST is refused for what it lacks (400) or because the job is done (409), never for who sent it.
    expected = {200} if method == "get" else {200, 202, 400, 409}
    assert response.status_code in expected, (response.status_code, response.content)


def test_anonymous_callers_are_refused(project, objects):
    assert APIClient().get(base(project) + "drafts/").status_code in (401, 403)


# --- templates ---------------------------------------------------------------------------


def test_saving_a_template_makes_versions_only_when_it_changes(rhea, project):
    body = {"name": "support", "text": "Write a message about {topic}.", "few_shot": 2}
    first = rhea.post(base(project) + "templates/", body, format="json")
    assert first.status_code == 201, first.content
    assert (first.json()["version"], first.json()["created_by"]) == (1, "rhea")

    same = rhea.post(base(project) + "templates/", body, format="json")
    assert same.status_code == 200
    assert same.json()["id"] == first.json()["id"]

    changed = rhea.post(base(project) + "templates/", {**body, "text": "Ask about {topic}."}, format="json")
    assert changed.status_code == 201
    assert changed.json()["version"] == 2

    listed = rhea.get(base(project) + "templates/").json()
    assert [(t["name"], t["version"], t["text"]) for t in listed] == [("support", 2, "Ask about {topic}.")]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"name": "x", "text": "About {topc}."}, "text"),
        ({"name": "x", "text": "   "}, "text"),
        ({"name": "", "text": "About {topic}."}, "name"),
        ({"name": "x", "text": "About {topic}.", "few_shot": 11}, "few_shot"),
    ],
)
def test_a_bad_template_is_refused_naming_the_field(rhea, project, body, field):
    response = rhea.post(base(project) + "templates/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert not PromptTemplate.objects.exists()


def test_a_template_shows_its_versions_and_its_drafts_stats(rhea, project, users, drafts, template):
    made = drafts(count=2, candidates=1)
    draft_reject(draft=made[0], user=users["reviewer"], version=made[0].example.version, reasons=["tone"])
    template_save(project=project, user=users["admin"], name="support", text="New {topic}", few_shot=1)

    body = rhea.get(base(project) + f"templates/{template.pk}/").json()

    assert body["version"] == 1
    assert [(v["version"], v["created_by"]) for v in body["versions"]] == [(2, "adam"), (1, "rhea")]
    assert body["stats"]["drafts"] == 2
    assert body["stats"]["rejected"] == 1
    assert body["stats"]["rejection_reasons"] == {"tone": 1}


def test_another_projects_template_is_not_found(rhea, project, users):
    other = Project.objects.create(name="Other", slug="other", kind=Project.Kind.CHAT)
    Membership.objects.create(project=other, user=users["reviewer"], role=Role.REVIEWER)
    foreign = template_save(project=other, user=users["reviewer"], name="t", text="About {topic}")
    assert rhea.get(base(project) + f"templates/{foreign.pk}/").status_code == 404


# --- jobs --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["backend", "top"])
def test_a_request_carrying_an_api_key_is_refused_and_keeps_nothing(
    rhea, project, template, django_capture_on_commit_callbacks, where
):
    body = job_settings(template, **({"backend": {"api_key": API_KEY}} if where == "backend" else {}))
    if where == "top":
        body["api_key"] = API_KEY
    with django_capture_on_commit_callbacks() as callbacks:
        response = rhea.post(base(project) + "generation-jobs/", body, format="json")
    assert response.status_code == 400
    errors = response.json()
    if where == "backend":
        assert "(you sent backend.api_key)" in errors["connection"][0]
    else:
        assert "Do not send the API key" in errors["api_key"][0]
    assert API_KEY not in response.content.decode()
    assert not GenerationJob.objects.exists() and not callbacks


def test_a_valid_job_is_queued_once_and_never_keeps_an_api_key(
    rhea, project, users, template, django_capture_on_commit_callbacks, monkeypatch
):
    from curation.connections.services import connection_create

    monkeypatch.setenv("SHIKOMI_SECRET_TEST_KEY", API_KEY)
    gpu = connection_create(
        project=project,
        user=users["admin"],
        name="gpu",
        kind="openai",
        base_url="http://127.0.0.1:9/v1",
        model="tiny",
        secret="SHIKOMI_SECRET_TEST_KEY",
    )
    body = job_settings(template, connection="gpu")

    with django_capture_on_commit_callbacks() as callbacks:
        response = rhea.post(base(project) + "generation-jobs/", body, format="json")

    assert response.status_code == 202, response.content
    assert len(callbacks) == 1
    job = GenerationJob.objects.get()
    assert job.pk == response.json()["id"]
    assert (job.kind, job.status, job.template_id, job.total) == ("synthetic", "queued", template.pk, 3)
    assert job.config["backend"] == {"connection": gpu.pk}
    assert (job.config["candidates"], job.config["critique"], job.config["seed"]) == (2, True, 7)
    stored = json.dumps([job.config, job.backend, job.error, job.errors])
    assert API_KEY not in stored
    assert API_KEY not in response.content.decode()
    shown = response.json()
    assert shown["template"] == {"id": template.pk, "name": "support", "version": 1}
    assert shown["stats"]["drafts"] == 0 and shown["errors"] == []


def test_a_job_without_a_template_uses_the_projects_first(rhea, project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = rhea.post(base(project) + "generation-jobs/", {"count": 1}, format="json")
    assert response.status_code == 202, response.content
    assert len(callbacks) == 1
    assert response.json()["template"]["name"] == "default"
    assert response.json()["config"]["backend"] == {"connection": embedded_connection().pk}


@pytest.mark.parametrize(
    "changes,error",
    [
        ({"count": 0}, ["count"]),
        ({"candidates": 9}, ["candidates"]),
        ({"candidates": 2, "temperature": 0}, ["temperature"]),
        ({"max_new_tokens": 5}, ["max_new_tokens"]),
        ({"count": "many"}, ["count"]),
        ({"backend": {"kind": "openai", "base_url": "ftp://x", "model": "m"}}, ["connection"]),
        ({"connection": "telepathy"}, ["connection"]),
        ({"run": 999}, ["run"]),
    ],
)
def test_bad_job_settings_are_refused_naming_the_field(
    rhea, project, template, changes, error, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = rhea.post(base(project) + "generation-jobs/", job_settings(template, **changes), format="json")
    assert response.status_code == 400, response.content
    found = response.json()
    for key in error:
        assert list(found) == [key], found
        found = found[key]
    assert isinstance(found, list) and found[0]
    assert not GenerationJob.objects.exists() and not callbacks


def test_a_template_of_another_project_is_refused(rhea, project, users, template, django_capture_on_commit_callbacks):
    other = Project.objects.create(name="Other", slug="other", kind=Project.Kind.CHAT)
    foreign = template_save(project=other, user=users["reviewer"], name="t", text="About {topic}")
    with django_capture_on_commit_callbacks() as callbacks:
        response = rhea.post(base(project) + "generation-jobs/", job_settings(foreign), format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["template"]
    assert not GenerationJob.objects.exists() and not callbacks


def test_jobs_are_listed_newest_first_with_their_stats(rhea, project, users, drafts):
    first = drafts(count=2, candidates=1)
    second = drafts(count=1, candidates=1)
    draft_approve(draft=first[0], user=users["reviewer"], version=first[0].example.version)

    body = rhea.get(base(project) + "generation-jobs/").json()

    assert body["count"] == 2
    assert [j["id"] for j in body["results"]] == [second[0].job_id, first[0].job_id]
    older = body["results"][1]
    assert (older["status"], older["created_count"], older["error_count"]) == ("done", 2, 0)
    assert older["stats"]["approved"] == 1 and older["stats"]["acceptance_rate"] == 1.0
    assert older["backend"].startswith("local:")


def test_a_job_shows_its_errors_and_cancels_and_resumes(
    rhea, project, template, run_job, django_capture_on_commit_callbacks
):
    job = run_job(count=1)
    GenerationJob.objects.filter(pk=job.pk).update(errors=[{"key": "p0", "error": "the model wrote no request"}])
    url = base(project) + f"generation-jobs/{job.pk}/"

    detail = rhea.get(url).json()
    assert detail["errors"] == [{"key": "p0", "error": "the model wrote no request"}]
    assert detail["error_count"] == 1

    done = rhea.post(url + "resume/")
    assert done.status_code == 409 and done.json()["detail"]
    assert rhea.post(url + "cancel/").status_code == 409

    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.RUNNING)
    assert rhea.post(url + "resume/").status_code == 409
    cancelled = rhea.post(url + "cancel/")
    assert cancelled.status_code == 202
    assert cancelled.json()["cancel_requested"] is True

    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.CANCELLED)
    with django_capture_on_commit_callbacks() as callbacks:
        resumed = rhea.post(url + "resume/")
    assert resumed.status_code == 202
    assert resumed.json()["status"] == "queued" and resumed.json()["cancel_requested"] is False
    assert len(callbacks) == 1


def test_a_queued_job_is_cancelled_at_once(rhea, project, template, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        job_id = rhea.post(base(project) + "generation-jobs/", job_settings(template), format="json").json()["id"]
    response = rhea.post(base(project) + f"generation-jobs/{job_id}/cancel/")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"


def test_another_projects_job_is_not_found(rhea, project, users, run_job):
    job = run_job(count=1)
    other = Project.objects.create(name="Other", slug="other", kind=Project.Kind.CHAT)
    Membership.objects.create(project=other, user=users["reviewer"], role=Role.REVIEWER)
    assert rhea.get(f"/api/projects/other/generation-jobs/{job.pk}/").status_code == 404
    assert rhea.post(f"/api/projects/other/generation-jobs/{job.pk}/cancel/").status_code == 404


def test_generation_stats_are_given_per_job_and_per_template_version(rhea, project, users, drafts, template):
    made = drafts(count=3, candidates=1)
    draft_approve(draft=made[0], user=users["reviewer"], version=made[0].example.version)
    draft_reject(draft=made[1], user=users["reviewer"], version=made[1].example.version, reasons=["off_task", "tone"])

    body = rhea.get(base(project) + "generation-stats/").json()

    (job,) = body["jobs"]
    assert job["id"] == made[0].job_id and job["template"]["id"] == template.pk
    assert job["stats"]["acceptance_rate"] == 0.5
    assert job["stats"]["rejection_reasons"] == {"off_task": 1, "tone": 1}
    ((row),) = body["templates"]
    assert (row["id"], row["name"], row["version"]) == (template.pk, "support", 1)
    assert row["stats"]["pending"] == 1


# --- drafts ------------------------------------------------------------------------------


def test_drafts_are_pending_by_default_and_filter_by_decision_and_job(rhea, project, users, drafts):
    first = drafts(count=2, candidates=1)
    second = drafts(count=1, candidates=1)
    draft_reject(draft=first[0], user=users["reviewer"], version=first[0].example.version, reasons=["tone"])

    def ids(query: str = "") -> list[int]:
        response = rhea.get(base(project) + "drafts/" + query)
        assert response.status_code == 200, response.content
        return [d["id"] for d in response.json()["results"]]

    assert ids() == [first[1].example_id, second[0].example_id]
    assert ids("?decision=rejected") == [first[0].example_id]
    assert ids("?decision=all") == [first[0].example_id, first[1].example_id, second[0].example_id]
    assert ids(f"?job={second[0].job_id}") == [second[0].example_id]
    assert ids(f"?job={first[0].job_id}&decision=all") == [first[0].example_id, first[1].example_id]
    assert list(rhea.get(base(project) + "drafts/?decision=maybe").json()) == ["decision"]
    assert list(rhea.get(base(project) + "drafts/?job=abc").json()) == ["job"]


def test_a_draft_shows_what_the_reviewer_needs(rhea, project, drafts, template):
    made = drafts(count=1, candidates=3, critique=True)
    Draft.objects.filter(pk=made[0].pk).update(
        flags=[{"code": "near_duplicate", "example": made[1].example_id, "similarity": 0.93}, {"code": "truncated"}]
    )

    body = rhea.get(base(project) + f"drafts/{made[0].example_id}/").json()

    assert body["id"] == made[0].example_id
    assert body["version"] == made[0].example.version
    assert body["status"] == "draft" and body["source"] == "synthetic" and body["decision"] == "pending"
    assert body["messages"][-1]["role"] == "assistant"
    assert body["template"] == {"id": template.pk, "name": "support", "version": 1}
    assert body["job"] == made[0].job_id and body["backend"] == made[0].job.backend
    assert (body["group"], body["candidate"], body["target"]) == ("p0", 0, 1)
    assert "Topic:" in body["request"]
    assert body["critique"] == "too short." and body["first_answer"].startswith("Answer")
    assert body["original"] == body["messages"][-1]["content"]
    assert [f["code"] for f in body["flags"]] == ["near_duplicate", "truncated"]
    assert body["flags"][0]["message"] == f"Near duplicate of example #{made[1].example_id} (93% alike)."
    assert body["flags"][0]["similarity"] == 0.93
    assert body["candidates"] == [made[1].example_id, made[2].example_id]


def test_the_draft_list_does_not_query_per_draft(rhea, project, drafts, django_assert_max_num_queries):
    drafts(count=6, candidates=2)
    with django_assert_max_num_queries(8):
        response = rhea.get(base(project) + "drafts/")
    assert len(response.json()["results"]) == 12
    assert all(len(d["candidates"]) == 1 for d in response.json()["results"])


def test_a_draft_of_another_project_or_a_plain_example_is_not_found(rhea, project, example):
    assert rhea.get(base(project) + f"drafts/{example.pk}/").status_code == 404
    assert (
        rhea.post(base(project) + f"drafts/{example.pk}/decide/", {"action": "approve", "version": 1}).status_code
        == 404
    )


def decide(client: APIClient, project, draft: Draft, **body):
    body.setdefault("version", Example.objects.get(pk=draft.example_id).version)
    return client.post(base(project) + f"drafts/{draft.example_id}/decide/", body, format="json")


def test_approving_a_draft_makes_it_an_approved_example(rhea, project, drafts):
    (draft,) = drafts(count=1)
    response = decide(rhea, project, draft, action="approve", label="billing", note="fine")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["decision"], body["status"], body["label"], body["reviewed_by"]) == (
        "approved",
        "approved",
        "billing",
        "rhea",
    )
    assert body["version"] == draft.example.version + 1
    assert body["edit_distance"] == 0.0
    assert not PreferencePair.objects.exists()


def test_an_edited_draft_is_approved_and_makes_a_preference_pair(rhea, project, drafts):
    (draft,) = drafts(count=1)
    messages = [*draft.example.messages[:-1], {"role": "assistant", "content": "A better answer, written by hand."}]

    response = decide(rhea, project, draft, action="approve", messages=messages)

    assert response.status_code == 200, response.content
    assert response.json()["decision"] == "edited"
    assert response.json()["messages"] == messages
    assert response.json()["edit_distance"] > 0
    pair = PreferencePair.objects.get()
    assert (pair.origin, pair.chosen["content"], pair.rejected["content"]) == (
        "edit",
        "A better answer, written by hand.",
        draft.original,
    )
    assert pair.prompt == messages[:-1]


def test_an_unknown_label_or_broken_conversation_is_refused_and_changes_nothing(rhea, project, drafts):
    (draft,) = drafts(count=1)

    label = decide(rhea, project, draft, action="approve", label="refunds")
    broken = decide(rhea, project, draft, action="approve", messages=[{"role": "assistant", "content": ""}])

    assert (label.status_code, list(label.json())) == (400, ["label"])
    assert (broken.status_code, list(broken.json())) == (400, ["messages"])
    draft.refresh_from_db()
    assert draft.decision == "pending"
    assert Example.objects.get(pk=draft.example_id).status == "draft"


def test_a_rejection_needs_a_reason_and_keeps_them(rhea, project, drafts):
    first, second = drafts(count=2)

    refused = decide(rhea, project, first, action="reject")
    assert refused.status_code == 400
    assert list(refused.json()) == ["reasons"]
    first.refresh_from_db()
    assert first.decision == "pending"

    unknown = decide(rhea, project, first, action="reject", reasons=["ugly"])
    assert list(unknown.json()) == ["reasons"]

    response = decide(rhea, project, first, action="reject", reasons=["tone", "wrong_facts"], note="too chatty")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["decision"], body["status"], body["reasons"], body["note"]) == (
        "rejected",
        "rejected",
        ["tone", "wrong_facts"],
        "too chatty",
    )


@pytest.mark.parametrize(
    "body,field",
    [
        ({"action": "approve"}, "version"),
        ({"action": "approve", "version": "x"}, "version"),
        ({"version": 1}, "action"),
    ],
)
def test_a_decision_without_a_version_or_action_is_refused(rhea, project, drafts, body, field):
    (draft,) = drafts(count=1)
    response = rhea.post(base(project) + f"drafts/{draft.example_id}/decide/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_a_stale_version_is_refused_and_nothing_changes(rhea, project, drafts):
    (draft,) = drafts(count=1)
    before = Example.objects.get(pk=draft.example_id)

    response = decide(
        rhea,
        project,
        draft,
        action="approve",
        version=before.version + 3,
        messages=[*before.messages[:-1], {"role": "assistant", "content": "Changed."}],
    )
    assert response.status_code == 409
    assert "version" in response.json()["detail"]
    after = Example.objects.get(pk=draft.example_id)
    assert (after.version, after.status, after.messages) == (before.version, "draft", before.messages)
    draft.refresh_from_db()
    assert draft.decision == "pending" and draft.reviewed_by is None
    assert not PreferencePair.objects.exists()


def test_a_second_reviewer_is_told_who_decided_first(rhea, project, users, drafts):
    (draft,) = drafts(count=1)
    version = draft.example.version
    assert decide(rhea, project, draft, action="approve", version=version).status_code == 200

    response = decide(client_for(users["admin"]), project, draft, action="reject", version=version, reasons=["tone"])

    assert response.status_code == 409
    assert "rhea" in response.json()["detail"]
    draft.refresh_from_db()
    assert draft.decision == "approved"


def test_ranking_three_candidates_approves_the_best_and_makes_three_pairs(rhea, project, drafts):
    made = drafts(count=1, candidates=3)
    order = [made[2].example_id, made[0].example_id, made[1].example_id]
    versions = {str(d.example_id): d.example.version for d in made}

    response = rhea.post(base(project) + "drafts/rank/", {"order": order, "versions": versions}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["pairs"] == 3
    assert (body["best"]["id"], body["best"]["decision"], body["best"]["rank"]) == (order[0], "approved", 1)
    assert PreferencePair.objects.filter(origin="ranking").count() == 3
    ranks = dict(Draft.objects.filter(example_id__in=order).values_list("example_id", "rank"))
    assert [ranks[pk] for pk in order] == [1, 2, 3]


@pytest.mark.parametrize("mangle,field", [("one", "order"), ("no_version", "versions"), ("bad_key", "versions")])
def test_a_bad_ranking_is_refused_naming_the_field(rhea, project, drafts, mangle, field):
    made = drafts(count=1, candidates=2)
    order = [d.example_id for d in made]
    versions = {str(d.example_id): d.example.version for d in made}
    if mangle == "one":
        order = order[:1]
    elif mangle == "no_version":
        versions.pop(str(order[1]))
    else:
        versions["first"] = 1
    response = rhea.post(base(project) + "drafts/rank/", {"order": order, "versions": versions}, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
    assert not Draft.objects.exclude(decision="pending").exists()


def test_a_ranking_with_a_stale_version_changes_nothing(rhea, project, drafts):
    made = drafts(count=1, candidates=2)
    order = [d.example_id for d in made]
    versions = {str(order[0]): made[0].example.version, str(order[1]): made[1].example.version + 1}
    response = rhea.post(base(project) + "drafts/rank/", {"order": order, "versions": versions}, format="json")
    assert response.status_code == 409
    assert not Draft.objects.exclude(decision="pending").exists()
    assert not PreferencePair.objects.exists()


def test_hostile_model_output_comes_back_as_the_same_plain_string(rhea, project, drafts, backend):
    backend.replies = {"Question": HOSTILE}
    (draft,) = drafts(count=1)

    body = rhea.get(base(project) + f"drafts/{draft.example_id}/").json()

    assert body["original"] == HOSTILE
    assert body["messages"][-1]["content"] == HOSTILE
    edited = [*body["messages"][:-1], {"role": "assistant", "content": HOSTILE + " (checked)"}]
    assert decide(rhea, project, draft, action="approve", messages=edited).status_code == 200
    line = rhea.get(base(project) + "preference-pairs/export/?format=standard")
    record = json.loads(b"".join(line.streaming_content))
    assert (record["chosen"], record["rejected"]) == (HOSTILE + " (checked)", HOSTILE)


# --- preference pairs --------------------------------------------------------------------


@pytest.fixture
def pairs(project, users, drafts) -> list[PreferencePair]:
    """Three pairs from a ranking of three candidates and one from an edit."""
    ranked = drafts(count=1, candidates=3)
    drafts_rank(
        project=project,
        user=users["reviewer"],
        order=[d.example_id for d in ranked],
        versions={d.example_id: d.example.version for d in ranked},
    )
    (edited,) = drafts(count=1, topics=["invoices"])
    messages = [*edited.example.messages[:-1], {"role": "assistant", "content": "Edited answer."}]
    draft_approve(draft=edited, user=users["admin"], version=edited.example.version, messages=messages)
    return list(PreferencePair.objects.order_by("id"))


def test_preference_pairs_are_listed_and_filtered_by_origin(rhea, project, pairs):
    body = rhea.get(base(project) + "preference-pairs/").json()
    assert body["count"] == 4
    assert [p["origin"] for p in body["results"]] == ["ranking", "ranking", "ranking", "edit"]
    edit = body["results"][3]
    assert (edit["chosen"], edit["created_by"], edit["example"], edit["job"]) == (
        {"role": "assistant", "content": "Edited answer."},
        "adam",
        pairs[3].example_id,
        pairs[3].job_id,
    )
    assert edit["prompt"][-1]["role"] == "user"

    only_edits = rhea.get(base(project) + "preference-pairs/?origin=edit").json()
    assert [p["id"] for p in only_edits["results"]] == [pairs[3].pk]
    assert list(rhea.get(base(project) + "preference-pairs/?origin=gift").json()) == ["origin"]


def test_preference_pairs_export_as_conversational_jsonl(rhea, project, pairs):
    response = rhea.get(base(project) + "preference-pairs/export/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="support-preferences.jsonl"'
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 4
    for line, pair in zip(lines, pairs, strict=True):
        record = json.loads(line)
        assert set(record) == {"prompt", "chosen", "rejected"}
        assert record["prompt"] == pair.prompt
        assert record["chosen"] == [pair.chosen] and record["chosen"][0]["role"] == "assistant"
        assert record["rejected"] == [pair.rejected] and record["rejected"][0]["role"] == "assistant"


def test_preference_pairs_export_as_standard_jsonl(rhea, project, pairs):
    response = rhea.get(base(project) + "preference-pairs/export/?format=standard")

    lines = b"".join(response.streaming_content).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert [set(r) for r in records] == [{"prompt", "chosen", "rejected"}] * 4
    assert all(isinstance(r[key], str) for r in records for key in ("prompt", "chosen", "rejected"))
    assert records[3]["prompt"] == pairs[3].prompt[-1]["content"]
    assert records[3]["chosen"] == "Edited answer."


def test_an_unknown_export_format_is_refused(rhea, project, pairs):
    response = rhea.get(base(project) + "preference-pairs/export/?format=csv")
    assert response.status_code == 400
    assert list(response.json()) == ["format"]


def test_the_schema_documents_the_generation_endpoints(rhea):
    paths = rhea.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert {"get", "post"} <= set(paths["/api/projects/{slug}/generation-jobs/"])
    assert "post" in paths["/api/projects/{slug}/drafts/{example_id}/decide/"]
    assert "get" in paths["/api/projects/{slug}/preference-pairs/export/"]
