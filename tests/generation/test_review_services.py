"""The review loop's services: decisions, conflicts, preference pairs and statistics."""

from __future__ import annotations

import json
import random

import pytest
from django.core.exceptions import PermissionDenied

from curation.core.services import example_update
from curation.generation import ConfigError
from curation.generation.stats import job_stats, template_stats
from curation.models import Draft, Example, PreferencePair
from curation.review.services import (
    ReviewConflict,
    draft_approve,
    draft_reject,
    drafts_rank,
    edit_distance,
    next_group,
    preferences_jsonl,
)


def edited(draft: Draft, answer: str) -> list[dict[str, str]]:
    messages = [dict(m) for m in draft.example.messages]
    messages[draft.target]["content"] = answer
    return messages


def naive_levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def test_edit_distance_matches_the_textbook_algorithm():
    rng = random.Random(5)
    alphabet = "abcé字 "
    for _ in range(300):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert edit_distance(a, b) == naive_levenshtein(a, b), (a, b)
    assert edit_distance("kitten", "sitting") == 3


def test_approving_makes_the_draft_an_approved_example(drafts, users):
    draft = drafts(count=1)[0]
    draft = draft_approve(draft=draft, user=users["reviewer"], version=draft.example.version)
    draft.example.refresh_from_db()
    assert draft.decision == Draft.Decision.APPROVED and draft.reviewed_by == users["reviewer"]
    assert draft.example.status == Example.Status.APPROVED and draft.edit_distance == 0.0
    assert not PreferencePair.objects.exists()


def test_an_edit_approves_and_records_the_edit_as_a_preference(drafts, users):
    draft = drafts(count=1)[0]
    original = draft.example.messages[-1]["content"]
    draft = draft_approve(
        draft=draft, user=users["reviewer"], version=1, messages=edited(draft, "We refund within 5 days.")
    )
    assert draft.decision == Draft.Decision.EDITED and 0 < draft.edit_distance <= 1
    pair = PreferencePair.objects.get()
    assert (pair.chosen, pair.rejected, pair.origin) == (
        {"role": "assistant", "content": "We refund within 5 days."},
        {"role": "assistant", "content": original},
        "edit",
    )
    assert pair.prompt == draft.example.messages[: draft.target] and pair.example_id == draft.example_id


def test_approving_an_empty_answer_is_refused(drafts, backend, users):
    backend.replies["Question 1"] = ""
    draft = drafts(count=1)[0]
    with pytest.raises(ConfigError) as caught:
        draft_approve(draft=draft, user=users["reviewer"], version=1)
    assert caught.value.field == "messages"
    draft.refresh_from_db()
    assert draft.decision == Draft.Decision.PENDING


def test_rejecting_needs_a_known_reason_and_a_note_for_other(drafts, users):
    draft = drafts(count=1)[0]
    for reasons, note, field in (([], "", "reasons"), (["boring"], "", "reasons"), (["other"], " ", "note")):
        with pytest.raises(ConfigError) as caught:
            draft_reject(draft=draft, user=users["reviewer"], version=1, reasons=reasons, note=note)
        assert caught.value.field == field
    draft = draft_reject(draft=draft, user=users["reviewer"], version=1, reasons=["wrong_facts", "tone"], note="No.")
    draft.example.refresh_from_db()
    assert draft.decision == Draft.Decision.REJECTED and draft.reasons == ["wrong_facts", "tone"]
    assert draft.example.status == Example.Status.REJECTED


def test_a_second_decision_on_the_same_draft_is_refused_and_names_the_first(drafts, users):
    draft = drafts(count=1)[0]
    draft_approve(draft=Draft.objects.get(pk=draft.pk), user=users["reviewer"], version=1)
    with pytest.raises(ReviewConflict, match="rhea has already decided"):
        draft_reject(draft=Draft.objects.get(pk=draft.pk), user=users["admin"], version=1, reasons=["tone"])
    assert Example.objects.get(pk=draft.example_id).status == Example.Status.APPROVED


def test_a_decision_on_a_stale_version_is_refused_and_changes_nothing(drafts, users):
    draft = drafts(count=1)[0]
    example_update(example=draft.example, user=users["annotator"], version=1, messages=edited(draft, "Changed."))
    with pytest.raises(ReviewConflict, match="version 2"):
        draft_approve(draft=Draft.objects.get(pk=draft.pk), user=users["reviewer"], version=1)
    draft.refresh_from_db()
    assert draft.decision == Draft.Decision.PENDING and draft.example.status == Example.Status.DRAFT


def test_annotators_may_not_decide(drafts, users):
    draft = drafts(count=1)[0]
    with pytest.raises(PermissionDenied):
        draft_approve(draft=draft, user=users["annotator"], version=1)
    draft.refresh_from_db()
    assert draft.decision == Draft.Decision.PENDING


def test_ranking_approves_the_best_sets_the_others_aside_and_records_every_pair(drafts, users, project):
    group = drafts(count=1, candidates=3)
    order = [group[2].example_id, group[0].example_id, group[1].example_id]
    best = drafts_rank(project=project, user=users["reviewer"], order=order, versions=dict.fromkeys(order, 1))
    assert best.example_id == order[0] and best.rank == 1
    decided = {d.example_id: (d.decision, d.rank, d.example.status) for d in Draft.objects.select_related("example")}
    assert decided[order[1]] == (Draft.Decision.RANKED_LOWER, 2, Example.Status.REJECTED)
    assert decided[order[0]] == (Draft.Decision.APPROVED, 1, Example.Status.APPROVED)
    texts = {d.example_id: d.example.messages[-1]["content"] for d in group}
    pairs = [(p.chosen["content"], p.rejected["content"]) for p in PreferencePair.objects.order_by("id")]
    assert pairs == [
        (texts[order[0]], texts[order[1]]),
        (texts[order[0]], texts[order[2]]),
        (texts[order[1]], texts[order[2]]),
    ]
    assert {p.origin for p in PreferencePair.objects.all()} == {"ranking"}


def test_a_ranking_must_hold_every_open_candidate_of_one_prompt(drafts, users, project):
    made = drafts(count=2, candidates=2)
    ids = [d.example_id for d in made]
    for order, message in (
        ([ids[0]], "at least two"),
        ([ids[0], ids[2]], "same prompt"),
        ([ids[0], 99999], "No such drafts"),
    ):
        with pytest.raises(ConfigError, match=message):
            drafts_rank(project=project, user=users["reviewer"], order=order, versions=dict.fromkeys(ids, 1))
    made3 = drafts(count=1, candidates=3)
    with pytest.raises(ConfigError, match="missing"):
        drafts_rank(
            project=project,
            user=users["reviewer"],
            order=[made3[0].example_id, made3[1].example_id],
            versions=dict.fromkeys(range(99), 1) | {made3[0].example_id: 1, made3[1].example_id: 1},
        )
    assert not Draft.objects.exclude(decision=Draft.Decision.PENDING).exists()


def test_the_queue_serves_the_candidates_of_one_prompt_at_a_time(drafts, users):
    made = drafts(count=2, candidates=2)
    first = next_group(made[0].project)
    assert [d.example_id for d in first] == [made[0].example_id, made[1].example_id]
    skipped = next_group(made[0].project, after=made[1].pk)  # the last draft of the prompt skipped
    assert [d.group for d in skipped] == ["p1", "p1"]


def test_statistics_per_job_and_template(drafts, users, project, template):
    made = drafts(count=4)
    draft_approve(draft=made[0], user=users["reviewer"], version=1)
    draft_approve(draft=made[1], user=users["reviewer"], version=1, messages=edited(made[1], "x"))
    draft_reject(draft=made[2], user=users["reviewer"], version=1, reasons=["tone", "format"])
    stats = job_stats(project)[made[0].job_id]
    assert (stats.drafts, stats.pending, stats.approved, stats.edited, stats.rejected) == (4, 1, 1, 1, 1)
    assert stats.acceptance_rate == pytest.approx(2 / 3)
    edit = Draft.objects.get(pk=made[1].pk).edit_distance
    assert stats.mean_edit == pytest.approx(edit / 2, abs=1e-4)  # the plain approval counts as 0
    assert {code for code, _label, _n in stats.reasons} == {"tone", "format"}
    ((used, by_template),) = template_stats(project)
    assert used == template and by_template.as_dict()["acceptance_rate"] == pytest.approx(2 / 3)


def test_preferences_export_in_both_shapes_trl_reads(drafts, users, project):
    draft = drafts(count=1)[0]
    draft_approve(draft=draft, user=users["reviewer"], version=1, messages=edited(draft, "Better <b>answer</b>."))
    (line,) = list(preferences_jsonl(project))
    record = json.loads(line)
    assert record["prompt"] == [{"role": "user", "content": "Question 1 about refunds?"}]
    assert record["chosen"] == [{"role": "assistant", "content": "Better <b>answer</b>."}]
    assert record["rejected"][0]["role"] == "assistant"
    (line,) = list(preferences_jsonl(project, format="standard"))
    assert json.loads(line)["prompt"] == "Question 1 about refunds?"
    with pytest.raises(ConfigError):
        list(preferences_jsonl(project, format="xml"))


def test_augmented_drafts_go_through_the_same_review(
    project, users, example, backend, django_capture_on_commit_callbacks
):
    from curation.generation.augment import augment_execute
    from curation.generation.tasks import augment_start

    backend.replies["Where is my order?"] = "Where has my order got to?"
    job = augment_start(project=project, user=users["reviewer"], example_ids=[example.pk])
    augment_execute(job=job, backend=backend)
    draft = Draft.objects.get(job=job)
    assert draft.example.source == Example.Source.AUGMENTED and draft.example.messages[draft.target]["role"] == "user"
    draft = draft_approve(
        draft=draft,
        user=users["reviewer"],
        version=1,
        messages=[
            {"role": "user", "content": "Where has my parcel got to?"},
            {"role": "assistant", "content": "On its way."},
        ],
    )
    assert draft.decision == Draft.Decision.EDITED
    assert not PreferencePair.objects.exists()  # the prompt changed, not an answer: nothing to prefer


def test_a_draft_approved_on_the_example_pages_leaves_the_queue_as_approved(drafts, users, project):
    from curation.core.services import example_bulk_update

    made = drafts(count=3)
    example_update(example=made[0].example, user=users["reviewer"], version=1, status=Example.Status.APPROVED)
    example_bulk_update(
        project=project, user=users["reviewer"], changes={"status": "rejected"}, ids=[made[1].example_id]
    )
    example_update(example=made[2].example, user=users["annotator"], version=1, status=Example.Status.NEEDS_REVIEW)
    decisions = list(Draft.objects.order_by("id").values_list("decision", "reviewed_by"))
    assert decisions[:2] == [("approved", users["reviewer"].pk), ("rejected", users["reviewer"].pk)]
    assert decisions[2] == ("pending", None)
    assert next_group(project) == []  # the third is no longer a draft either
