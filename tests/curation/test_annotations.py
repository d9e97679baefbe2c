from __future__ import annotations

import pytest

from curation.core.services import InvalidExample, StaleVersion, example_create, example_update
from curation.labeling import services as svc
from curation.models import Annotation, Example


def chat(q: str, a: str = "An answer.") -> list[dict]:
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


@pytest.fixture
def three(project, users) -> list[Example]:
    return [example_create(project=project, user=users["admin"], messages=chat(f"q{i}")) for i in range(3)]


def submit(example, user, **kw):
    example.refresh_from_db()
    return svc.annotation_submit(example=example, user=user, based_on_version=example.version, **kw)


def test_the_queue_never_shows_a_person_an_example_twice(project, users, three):
    annie = users["annotator"]
    seen = []
    while (example := svc.queue_next(project=project, user=annie)) is not None:
        seen.append(example.pk)
        submit(example, annie, label="billing")
    assert seen == [e.pk for e in three]
    assert svc.queue_remaining(project=project, user=annie) == 0


def test_several_annotators_see_the_same_example_when_the_project_asks_for_it(project, users, three):
    project.annotations_per_example = 2
    project.save()
    first = svc.queue_next(project=project, user=users["annotator"])
    submit(first, users["annotator"], label="billing")
    assert svc.queue_next(project=project, user=users["reviewer"]).pk == first.pk
    submit(first, users["reviewer"], label="billing")
    # Two answers are enough: the admin is offered the others only.
    assert svc.queue_next(project=project, user=users["admin"]).pk != first.pk


def test_one_annotation_per_example_applies_the_label_with_a_revision(project, users, three):
    submit(three[0], users["annotator"], label="shipping", rating=4, note="clear")
    three[0].refresh_from_db()
    assert three[0].label.name == "shipping" and three[0].annotation_count == 1
    revision = three[0].revisions.first()
    assert revision.user == users["annotator"] and revision.after["label"] == "shipping"


def test_an_edit_of_the_assistant_turn_is_applied_to_the_example(project, users, three):
    edited = chat("q0", "A better answer.")
    submit(three[0], users["annotator"], messages=edited)
    three[0].refresh_from_db()
    assert three[0].messages == edited


def test_a_submission_against_a_changed_example_is_refused_and_changes_nothing(project, users, three):
    seen_version = three[0].version
    example_update(example=three[0], user=users["reviewer"], version=seen_version, label="billing")
    with pytest.raises(StaleVersion):
        svc.annotation_submit(
            example=three[0], user=users["annotator"], based_on_version=seen_version, label="shipping"
        )
    three[0].refresh_from_db()
    assert three[0].label.name == "billing" and three[0].annotation_count == 0


def test_matching_answers_become_the_consensus(project, users, three):
    project.annotations_per_example = 2
    project.save()
    submit(three[0], users["annotator"], label="shipping")
    submit(three[0], users["reviewer"], label="shipping")
    three[0].refresh_from_db()
    assert three[0].label.name == "shipping" and three[0].resolved_at is not None
    assert not svc.disagreement_list(project=project).exists()


def test_differing_answers_wait_for_a_reviewer_who_resolves_them(project, users, three):
    project.annotations_per_example = 2
    project.save()
    submit(three[0], users["annotator"], label="shipping")
    submit(three[0], users["reviewer"], label="billing")
    three[0].refresh_from_db()
    assert three[0].label is None
    assert list(svc.disagreement_list(project=project)) == [three[0]]

    svc.disagreement_resolve(example=three[0], user=users["admin"], version=three[0].version, label="billing")

    three[0].refresh_from_db()
    assert three[0].label.name == "billing" and three[0].status == Example.Status.APPROVED
    assert three[0].resolved_by == users["admin"]
    assert not svc.disagreement_list(project=project).exists()


def test_skip_moves_on_and_undo_brings_the_last_answer_back(project, users, three):
    annie = users["annotator"]
    submit(three[0], annie, label="billing")
    svc.annotation_skip(example=three[1], user=annie)
    assert svc.queue_next(project=project, user=annie).pk == three[2].pk

    assert svc.annotation_undo(project=project, user=annie).pk == three[1].pk
    assert svc.queue_next(project=project, user=annie).pk == three[1].pk
    assert svc.annotation_undo(project=project, user=annie).pk == three[0].pk
    three[0].refresh_from_db()
    assert three[0].annotation_count == 0
    assert Annotation.objects.get(example=three[0], annotator=annie).label.name == "billing"


def test_an_autosaved_draft_keeps_half_finished_text(project, users, three):
    half = chat("q0", "")
    draft = svc.annotation_save_draft(
        example=three[0], user=users["annotator"], based_on_version=1, messages=half, note="thinking"
    )
    assert draft.messages == half and draft.status == Annotation.Status.DRAFT
    # And the queue comes back to it first after the tab was closed.
    assert svc.queue_next(project=project, user=users["annotator"]).pk == three[0].pk


def test_a_late_autosave_does_not_reopen_a_submitted_answer(project, users, three):
    submit(three[0], users["annotator"], label="billing")
    svc.annotation_save_draft(example=three[0], user=users["annotator"], based_on_version=1, label="shipping")
    assert Annotation.objects.get().status == Annotation.Status.SUBMITTED


def test_an_empty_submission_is_refused(project, users, three):
    with pytest.raises(InvalidExample):
        submit(three[0], users["annotator"])


def test_agreement_input_has_one_label_per_annotator_and_example(project, users, three):
    project.annotations_per_example = 2
    project.save()
    submit(three[0], users["annotator"], label="shipping")
    submit(three[0], users["reviewer"], label="billing")
    found = svc.annotations_by_example(project=project)
    assert found == {three[0].pk: {users["annotator"].pk: "shipping", users["reviewer"].pk: "billing"}}


def test_annotators_working_at_once_are_handed_different_examples(project, users, three):
    first = svc.queue_next(project=project, user=users["annotator"])
    second = svc.queue_next(project=project, user=users["reviewer"])
    assert first.pk != second.pk
    # Reloading the page shows the same example again.
    assert svc.queue_next(project=project, user=users["annotator"]).pk == first.pk


def test_a_lease_left_alone_expires_and_the_example_goes_to_someone_else(project, users, three):
    from datetime import timedelta

    from django.utils import timezone

    first = svc.queue_next(project=project, user=users["annotator"])
    Annotation.objects.filter(example=first).update(updated_at=timezone.now() - svc.LEASE - timedelta(seconds=1))
    assert svc.queue_next(project=project, user=users["reviewer"]).pk == first.pk
