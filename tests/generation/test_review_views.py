"""The draft review queue and the preference pairs pages: roles checked on the server,
decisions applied once, stale or doubled decisions refused, model text escaped."""

from __future__ import annotations

import json

import pytest

from curation.core.services import example_update
from curation.models import Draft, Example, GenerationJob, PreferencePair, Project
from curation.workspace.navigation import MENU_QUERIES

HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(1)>"


def url(project: Project, name: str = "", **query) -> str:
    base = f"/p/{project.slug}/drafts/{name}"
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def decide(client, draft: Draft, **data):
    data.setdefault("version", draft.example.version)
    return client.post(f"/p/{draft.project.slug}/drafts/{draft.example_id}/decide/", data)


def notices(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def answer(draft: Draft) -> str:
    return draft.example.messages[draft.target]["content"]


@pytest.fixture
def reviewer(client, users):
    client.force_login(users["reviewer"])
    return client


# --- who may do what --------------------------------------------------------------------------


def test_outsiders_get_404_and_annotators_403_on_every_review_page(client, project, users, drafts):
    draft = drafts(count=1)[0]
    pages = [
        ("get", url(project), {}),
        ("post", url(project, f"{draft.example_id}/decide/"), {"action": "approve", "version": 1}),
        ("post", url(project, "rank/"), {"order": [draft.example_id]}),
        ("get", f"/p/{project.slug}/preferences/", {}),
        ("get", f"/p/{project.slug}/preferences/export/", {}),
    ]
    for role, status in (("outsider", 404), ("annotator", 403)):
        client.force_login(users[role])
        for method, address, data in pages:
            assert getattr(client, method)(address, data).status_code == status, (role, address)
    draft.refresh_from_db()
    assert draft.decision == Draft.Decision.PENDING
    assert draft.example.status == Example.Status.DRAFT


def test_a_draft_of_another_project_is_not_found(reviewer, project, users, drafts):
    draft = drafts(count=1)[0]
    other = Project.objects.create(name="Other", slug="other")
    other.memberships.create(user=users["reviewer"], role="reviewer")
    response = reviewer.post(f"/p/{other.slug}/drafts/{draft.example_id}/decide/", {"action": "approve", "version": 1})
    assert response.status_code == 404
    assert (
        reviewer.get(f"/p/{project.slug}/drafts/?job={GenerationJob.objects.create(project=other).pk}").status_code
        == 404
    )


# --- one candidate: approve, edit, reject -----------------------------------------------------


def test_the_queue_shows_the_draft_with_what_the_model_wrote_marked(reviewer, project, drafts):
    draft = drafts(count=2)[0]
    page = reviewer.get(url(project)).content.decode()
    assert "2 drafts wait for review in this project" in page
    assert f'data-example="{draft.example_id}"' in page
    assert "written by the model" in page and answer(draft) in page
    assert f'href="/p/{project.slug}/generate/{draft.job_id}/"' in page
    assert f'href="/p/{project.slug}/generate/templates/{draft.template_id}/"' in page and "support v1" in page
    assert "refunds" in page  # the topic
    assert "What the model was asked" in page and "Topic: refunds" in page
    assert f'name="version" value="{draft.example.version}"' in page
    assert 'name="reasons" value="wrong_facts" data-shortcut="1"' in page
    assert 'data-shortcut="8"' in page


def test_a_reviewer_approves_a_draft(reviewer, project, users, drafts):
    draft, second = drafts(count=2)
    response = decide(reviewer, draft, action="approve")
    assert response.status_code == 302 and response.url == url(project)
    draft.refresh_from_db()
    assert draft.decision == Draft.Decision.APPROVED and draft.reviewed_by == users["reviewer"]
    assert draft.example.status == Example.Status.APPROVED
    assert not PreferencePair.objects.exists()
    page = reviewer.get(response.url)
    assert "Approved." in notices(page)
    assert f'data-example="{second.example_id}"' in page.content.decode()


def test_an_unchanged_edit_form_approves_without_counting_an_edit(reviewer, project, drafts):
    draft = drafts(count=1)[0]
    user_text = draft.example.messages[0]["content"]
    decide(reviewer, draft, action="approve", user=user_text, answer=answer(draft).replace("\n", "\r\n"))
    draft.refresh_from_db()
    assert draft.decision == Draft.Decision.APPROVED
    assert not PreferencePair.objects.exists()


def test_editing_then_approving_records_a_preference_pair(reviewer, project, drafts):
    draft = drafts(count=1)[0]
    original = answer(draft)
    response = decide(
        reviewer,
        draft,
        action="approve",
        user="Where is my refund for order 42?",
        answer="Refunds arrive within five days.\r\nSorry for the wait.",
    )
    assert "Edited and approved: a preference pair was recorded." in notices(reviewer.get(response.url))
    draft.refresh_from_db()
    example = draft.example
    assert draft.decision == Draft.Decision.EDITED and example.status == Example.Status.APPROVED
    assert example.messages[0] == {"role": "user", "content": "Where is my refund for order 42?"}
    assert example.messages[-1] == {
        "role": "assistant",
        "content": "Refunds arrive within five days.\nSorry for the wait.",
    }
    assert draft.edit_distance and draft.edit_distance > 0
    pair = PreferencePair.objects.get()
    assert pair.origin == PreferencePair.Origin.EDIT and pair.example == example
    assert pair.chosen == {"role": "assistant", "content": "Refunds arrive within five days.\nSorry for the wait."}
    assert pair.rejected == {"role": "assistant", "content": original}
    assert pair.prompt == [{"role": "user", "content": "Where is my refund for order 42?"}]


def test_a_rejection_needs_a_reason(reviewer, project, drafts):
    _first, draft = drafts(count=2)
    response = decide(reviewer, draft, action="reject", note="meh")
    # Back at the same draft, with the problem named.
    assert response.status_code == 302
    page = reviewer.get(response.url)
    assert "Reasons: Choose at least one reason." in notices(page)
    assert f'data-example="{draft.example_id}"' in page.content.decode()
    response = decide(reviewer, draft, action="reject", reasons=["other"])
    assert "Note: Say in the note what is wrong when the reason is Other." in notices(reviewer.get(response.url))
    draft.refresh_from_db()
    assert draft.decision == Draft.Decision.PENDING and draft.example.status == Example.Status.DRAFT
    assert draft.example.version == 1


def test_a_reviewer_rejects_a_draft_with_reasons_and_a_note(reviewer, project, users, drafts):
    draft = drafts(count=1)[0]
    response = decide(reviewer, draft, action="reject", reasons=["wrong_facts", "tone"], note="made-up policy")
    assert "Rejected." in notices(reviewer.get(response.url))
    draft.refresh_from_db()
    assert draft.decision == Draft.Decision.REJECTED
    assert draft.reasons == ["wrong_facts", "tone"] and draft.note == "made-up policy"
    assert draft.example.status == Example.Status.REJECTED
    assert "No drafts wait for review" in reviewer.get(url(project)).content.decode()


def test_a_stale_version_is_refused_and_nothing_changes(reviewer, project, users, drafts):
    draft = drafts(count=1)[0]
    seen = draft.example.version
    edited = [dict(m) for m in draft.example.messages]
    edited[-1]["content"] = "Changed by an annotator meanwhile."
    example_update(example=draft.example, user=users["annotator"], version=seen, messages=edited)
    response = decide(reviewer, draft, action="approve", version=seen)
    assert any("changed by someone else" in m for m in notices(reviewer.get(response.url)))
    draft.refresh_from_db()
    assert draft.decision == Draft.Decision.PENDING and draft.reviewed_by is None
    assert draft.example.status == Example.Status.DRAFT
    assert draft.example.messages[-1]["content"] == "Changed by an annotator meanwhile."


def test_the_second_of_two_reviewers_deciding_one_draft_gets_a_conflict(client, project, users, drafts):
    draft = drafts(count=1)[0]
    version = draft.example.version
    client.force_login(users["admin"])
    decide(client, draft, action="reject", reasons=["tone"], version=version)
    client.force_login(users["reviewer"])
    response = decide(client, draft, action="approve", version=version)
    assert "adam has already decided this draft: Rejected." in notices(client.get(response.url))
    draft.refresh_from_db()
    assert draft.decision == Draft.Decision.REJECTED and draft.reviewed_by == users["admin"]
    assert draft.example.status == Example.Status.REJECTED


# --- several candidates: ranking --------------------------------------------------------------


def rank(client, project, order: list[Draft], **extra):
    data = {"order": [d.example_id for d in order], **{f"version_{d.example_id}": d.example.version for d in order}}
    data.update(extra)
    return client.post(url(project, "rank/"), data)


def test_the_queue_offers_the_candidates_of_one_prompt_for_ranking(
    reviewer, project, drafts, django_assert_max_num_queries
):
    made = drafts(count=1, candidates=5)
    with django_assert_max_num_queries(12):
        page = reviewer.get(url(project)).content.decode()
    assert '<ol id="ranking"' in page
    positions = [page.index(f'name="order" value="{d.example_id}"') for d in made]
    assert positions == sorted(positions)
    for d in made:
        assert f'name="version_{d.example_id}" value="1"' in page and answer(d) in page
    assert "Save ranking (the first becomes the example)" in page and 'name="reject_all"' in page


def test_ranking_three_candidates_approves_the_first_and_records_three_pairs(reviewer, project, users, drafts):
    first, second, third = drafts(count=1, candidates=3)
    response = rank(reviewer, project, [third, first, second], note="the third is clearest")
    assert response.status_code == 302
    assert any("3 preference pairs were recorded" in m for m in notices(reviewer.get(response.url)))
    for d in (first, second, third):
        d.refresh_from_db()
    assert (third.decision, third.rank, third.example.status) == (Draft.Decision.APPROVED, 1, Example.Status.APPROVED)
    assert (first.decision, first.rank) == (Draft.Decision.RANKED_LOWER, 2)
    assert (second.decision, second.rank) == (Draft.Decision.RANKED_LOWER, 3)
    assert first.example.status == second.example.status == Example.Status.REJECTED
    pairs = [(p.chosen["content"], p.rejected["content"]) for p in PreferencePair.objects.order_by("id")]
    assert pairs == [
        (answer(third), answer(first)),
        (answer(third), answer(second)),
        (answer(first), answer(second)),
    ]
    assert {p.origin for p in PreferencePair.objects.all()} == {PreferencePair.Origin.RANKING}


def test_a_ranking_that_leaves_a_candidate_out_is_refused(reviewer, project, drafts):
    first, second, third = drafts(count=1, candidates=3)
    response = rank(reviewer, project, [first, second])
    assert any(m.startswith("Ranking: Rank every open candidate") for m in notices(reviewer.get(response.url)))
    assert Draft.objects.filter(decision=Draft.Decision.PENDING).count() == 3
    assert not PreferencePair.objects.exists()


def test_reject_all_rejects_every_candidate_with_the_reasons(reviewer, project, drafts):
    made = drafts(count=1, candidates=3)
    response = rank(reviewer, project, made, reject_all="1")
    assert "Reasons: Choose at least one reason." in notices(reviewer.get(response.url))
    assert Draft.objects.filter(decision=Draft.Decision.PENDING).count() == 3
    response = rank(reviewer, project, made, reject_all="1", reasons=["off_task", "low_quality"])
    assert "Rejected all 3 candidates." in notices(reviewer.get(response.url))
    for d in made:
        d.refresh_from_db()
        assert d.decision == Draft.Decision.REJECTED and d.reasons == ["off_task", "low_quality"]
        assert d.example.status == Example.Status.REJECTED
    assert not PreferencePair.objects.exists()


# --- the queue: job filter, skip, flags, escaping ---------------------------------------------


def test_the_queue_filters_by_job_and_skips_a_prompt(reviewer, project, drafts):
    first_job = drafts(count=2, candidates=2)
    second_job = drafts(count=1)
    job = second_job[0].job
    page = reviewer.get(url(project, job=job.pk)).content.decode()
    assert "5 drafts wait for review in this project" in page and "1 of them from job" in page
    assert f'data-example="{second_job[0].example_id}"' in page
    assert f'name="job" value="{job.pk}"' in page

    page = reviewer.get(url(project)).content.decode()
    assert f'data-example="{first_job[0].example_id}"' in page
    # Skip the first prompt (both its candidates): the next prompt comes.
    skip = f"?after={first_job[0].example_id}"
    assert skip in page
    page = reviewer.get(url(project) + skip).content.decode()
    assert f'data-example="{first_job[2].example_id}"' in page
    assert f'name="order" value="{first_job[0].example_id}"' not in page
    # Skipping the only prompt of a job leaves nothing after it, with a way back.
    page = reviewer.get(url(project, job=job.pk, after=second_job[0].example_id)).content.decode()
    assert "No more drafts after the one you skipped" in page
    assert f"/drafts/?job={job.pk}" in page


def test_deciding_in_a_filtered_queue_returns_to_that_job(reviewer, project, drafts):
    drafts(count=1)
    draft = drafts(count=1)[0]
    response = decide(reviewer, draft, action="approve", job=draft.job_id)
    assert response.url == url(project, job=draft.job_id)


def test_flags_are_shown_with_the_draft(reviewer, project, backend, drafts):
    backend.truncate = {"Question"}
    drafts(count=1)
    page = reviewer.get(url(project)).content.decode()
    assert 'class="review-flag flag-truncated"' in page
    assert "Cut off: the model reached the token limit before it finished." in page


def test_an_empty_queue_points_to_generation(reviewer, project):
    page = reviewer.get(url(project)).content.decode()
    assert "No drafts wait for review" in page
    assert f'href="/p/{project.slug}/generate/"' in page


def test_hostile_model_text_is_escaped_in_the_queue_and_the_pairs(reviewer, project, backend, drafts):
    backend.replies = {"about refunds?": HOSTILE}
    made = drafts(count=1, candidates=2)
    assert answer(made[0]) == HOSTILE
    page = reviewer.get(url(project)).content.decode()
    assert HOSTILE not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;" in page
    decide(reviewer, made[0], action="approve", answer="A calm answer.")  # pairs need a ranking or edit
    pair = PreferencePair.objects.get()
    assert pair.rejected["content"] == HOSTILE
    page = reviewer.get(f"/p/{project.slug}/preferences/").content.decode()
    assert HOSTILE not in page and "<img src=x" not in page and "&lt;script&gt;alert(1)" in page


# --- preference pairs -------------------------------------------------------------------------


def test_the_pairs_page_counts_by_origin_and_lists_pairs(reviewer, project, drafts, django_assert_max_num_queries):
    ranked = drafts(count=1, candidates=3)
    rank(reviewer, project, ranked)
    edited = drafts(count=1)[0]
    decide(reviewer, edited, action="approve", answer="Edited answer.")
    with django_assert_max_num_queries(10 + MENU_QUERIES):
        response = reviewer.get(f"/p/{project.slug}/preferences/")
    page = response.content.decode()
    assert "4 pairs in all" in page and "Ranking: <strong>3</strong>" in page and "Edit: <strong>1</strong>" in page
    assert f'href="/p/{project.slug}/examples/{edited.example_id}/"' in page
    assert 'value="conversational" checked' in page and 'value="standard"' in page


def test_pairs_download_as_jsonl_in_both_formats(reviewer, project, drafts):
    rank(reviewer, project, drafts(count=1, candidates=2))
    question = PreferencePair.objects.get().prompt[-1]["content"]
    for chosen_format in ("conversational", "standard"):
        response = reviewer.get(f"/p/{project.slug}/preferences/export/?format={chosen_format}")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/jsonl; charset=utf-8"
        assert 'filename="support-preferences.jsonl"' in response["Content-Disposition"]
        lines = b"".join(response.streaming_content).decode().splitlines()
        records = [json.loads(line) for line in lines]
        assert len(records) == 1 and set(records[0]) == {"prompt", "chosen", "rejected"}
        if chosen_format == "standard":
            assert records[0]["prompt"] == question and isinstance(records[0]["chosen"], str)
        else:
            assert records[0]["prompt"][-1] == {"role": "user", "content": question}
            assert records[0]["chosen"][0]["role"] == "assistant"
    default = reviewer.get(f"/p/{project.slug}/preferences/export/")
    assert isinstance(json.loads(b"".join(default.streaming_content))["prompt"], list)


def test_an_unknown_export_format_is_a_400_naming_the_formats(reviewer, project):
    response = reviewer.get(f"/p/{project.slug}/preferences/export/?format=csv")
    assert response.status_code == 400
    assert "conversational, standard" in response.content.decode()


def test_in_a_classification_project_the_reviewer_sets_the_label_and_edits_the_request(reviewer, project, drafts):
    project.kind = Project.Kind.CLASSIFICATION
    project.save()
    draft = drafts(count=1)[0]
    assert draft.example.messages[draft.target]["role"] == "user"
    page = reviewer.get(url(project)).content.decode()
    assert '<select name="label">' in page and '<option value="shipping"' in page
    assert 'name="user"' not in page and 'name="answer"' in page  # the model wrote the user message
    response = decide(reviewer, draft, action="approve", label="shipping", answer="Where is parcel 7?")
    assert "Edited and approved." in notices(reviewer.get(response.url))
    draft.refresh_from_db()
    assert draft.decision == Draft.Decision.EDITED
    assert draft.example.label.name == "shipping"
    assert draft.example.messages[draft.target]["content"] == "Where is parcel 7?"
    assert not PreferencePair.objects.exists()  # pairs are for assistant answers
    other = drafts(count=1)[0]
    response = decide(reviewer, other, action="approve", label="returns")
    assert any(m.startswith("Label: 'returns' is not a label") for m in notices(reviewer.get(response.url)))
    other.refresh_from_db()
    assert other.decision == Draft.Decision.PENDING
