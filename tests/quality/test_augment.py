"""Augmentation: prompts rewritten by the generation backend become drafts for review."""

from __future__ import annotations

import pytest

from curation.connections.services import connection_create, embedded_connection
from curation.generation import augment
from curation.generation import tasks as generation_tasks
from curation.models import Example, GenerationJob
from llm.interface import GenerationError
from llm.local import LocalBackend
from tests.conftest import PASSWORD, reap_after_lease
from tests.quality.conftest import add


class Scripted:
    """A backend that answers from a list, to drive the job through each outcome."""

    name = "scripted"

    def __init__(self, replies: list[str], fail_after: int | None = None) -> None:
        self.replies = list(replies)
        self.calls = 0
        self.fail_after = fail_after
        self.seen: list[list[dict]] = []

    def generate(self, conversations, *, max_new_tokens=64, temperature=0.0):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise GenerationError("the server went away")
        self.seen.extend(conversations)
        return [self.replies.pop(0) for _ in conversations]


@pytest.fixture
def sources(project, users) -> list[Example]:
    return [
        add(project, users["admin"], "Where is my parcel?", "It left our warehouse today.", label="shipping"),
        add(project, users["admin"], "Why was I charged twice?", "We refunded the second charge."),
    ]


def start(project, users, sources, **options) -> GenerationJob:
    return generation_tasks.augment_start(
        project=project, user=users["reviewer"], example_ids=[e.pk for e in sources], **options
    )  # on_commit does not fire inside the test's transaction: the job stays queued


def test_rewrites_become_drafts_that_keep_the_answer_and_their_provenance(project, users, sources):
    job = start(project, users, sources)
    backend = Scripted(['"Has my parcel been shipped yet?"', "How come I paid two times?"])
    job = augment.augment_execute(job=job, backend=backend)
    assert job.status == GenerationJob.Status.DONE and job.created_count == 2
    drafts = list(job.drafts.order_by("id"))
    assert [d.messages[0]["content"] for d in drafts] == [
        "Has my parcel been shipped yet?",
        "How come I paid two times?",
    ]
    assert drafts[0].messages[1]["content"] == "It left our warehouse today."
    assert drafts[0].label.name == "shipping"
    assert {(d.source, d.status) for d in drafts} == {("augmented", "draft")}
    assert drafts[0].metadata == {"augmented_from": sources[0].pk, "backend": job.backend}
    assert drafts[0].revisions.get().action == "create"
    assert (
        backend.seen[0][0]["content"] == augment.INSTRUCTION and backend.seen[0][1]["content"] == "Where is my parcel?"
    )


def test_useless_rewrites_are_reported_per_draft_not_kept(project, users, sources):
    job = augment.augment_execute(
        job=start(project, users, sources), backend=Scripted(["", "why was i charged TWICE?"])
    )
    assert job.status == GenerationJob.Status.DONE and job.created_count == 0
    assert [(e["source"], e["error"]) for e in job.errors] == [
        (sources[0].pk, "the model answered nothing"),
        (sources[1].pk, "the rewrite is the same as the original"),
    ]


def test_a_failed_job_keeps_its_drafts_and_a_resumed_one_never_duplicates_them(project, users, sources, monkeypatch):
    monkeypatch.setattr(augment, "BATCH", 1)
    job = start(project, users, sources)
    job = augment.augment_execute(job=job, backend=Scripted(["Has my parcel shipped?"], fail_after=1))
    assert job.status == GenerationJob.Status.FAILED and "went away" in job.error
    assert job.drafts.count() == 1
    generation_tasks.generation_job_resume(job=job)
    job.refresh_from_db()
    backend = Scripted(["Did you bill me two times?"])
    job = augment.augment_execute(job=job, backend=backend)
    assert job.status == GenerationJob.Status.DONE
    assert job.drafts.count() == 2 and backend.calls == 1  # only the missing draft was asked for


def test_a_cancelled_job_stops_before_its_next_batch(project, users, sources, monkeypatch):
    monkeypatch.setattr(augment, "BATCH", 1)
    job = start(project, users, sources)
    GenerationJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    job = augment.augment_execute(job=job, backend=Scripted(["a", "b"]))
    assert job.status == GenerationJob.Status.CANCELLED and job.drafts.count() == 0


@pytest.mark.parametrize(
    "options,field",
    [({"per_example": 9}, "per_example"), ({"per_example": 2, "temperature": 0.0}, "temperature")],
)
def test_bad_settings_are_refused_per_field(project, users, sources, options, field):
    with pytest.raises(augment.AugmentError) as error:
        start(project, users, sources, **options)
    assert error.value.field == field
    assert not GenerationJob.objects.exists()


def test_examples_of_another_project_are_refused(project, users, sources):
    from curation.models import Project

    other = Project.objects.create(name="Other", slug="other")
    stranger = add(other, users["admin"], "Not yours")
    with pytest.raises(augment.AugmentError) as error:
        generation_tasks.augment_start(project=project, user=users["admin"], example_ids=[stranger.pk])
    assert error.value.field == "ids" and str(stranger.pk) in error.value.message


def test_the_embedded_model_rewrites_a_prompt(project, users, sources):
    job = start(project, users, sources[:1], temperature=0.0)
    job = augment.augment_execute(job=job, backend=LocalBackend())
    assert job.status == GenerationJob.Status.DONE, job.error
    assert job.created_count + len(job.errors) == 1  # a small model may echo the prompt: then it says so
    for draft in job.drafts.all():
        assert draft.messages[0]["content"].strip() and draft.messages[0]["content"] != "Where is my parcel?"


def test_reviewers_augment_from_the_example_list_and_hostile_output_stays_text(
    client, project, users, sources, monkeypatch
):
    client.login(username=users["annotator"].username, password=PASSWORD)
    assert client.post(f"/p/{project.slug}/augment/", {"ids": [sources[0].pk]}).status_code == 403
    client.login(username=users["reviewer"].username, password=PASSWORD)
    confirm = client.post(f"/p/{project.slug}/augment/", {"ids": [str(sources[0].pk)]})
    assert confirm.status_code == 200 and "1 example chosen" in confirm.content.decode()
    response = client.post(
        f"/p/{project.slug}/augment/",
        {
            "ids": str(sources[0].pk),
            "per_example": "1",
            "temperature": "0.7",
            "max_new_tokens": "64",
            "backend": f"connection:{embedded_connection().pk}",
        },
    )
    assert response.status_code == 302
    job = GenerationJob.objects.get()
    assert job.config["backend"] == {"connection": embedded_connection().pk}
    augment.augment_execute(job=job, backend=Scripted(["<script>alert(1)</script> where is it?"]))
    page = client.get(response["Location"]).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; where is it?" in page and "<script>alert(1)" not in page


def test_a_job_left_running_by_a_dead_worker_is_marked_interrupted_and_can_resume(project, users, sources):
    job = start(project, users, sources)
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.RUNNING)
    assert reap_after_lease() == 1  # a live consumer, once the dead worker's lease ran out
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.INTERRUPTED and "drafts it finished are kept" in job.error
    job = generation_tasks.generation_job_resume(job=job)
    assert job.status == GenerationJob.Status.QUEUED and job.error == ""
    with pytest.raises(augment.AugmentError):
        generation_tasks.generation_job_resume(job=job)  # only a stopped job


def test_augment_offers_the_projects_connections_and_refuses_another_projects(client, project, users, sources):
    from curation.models import Project

    other = Project.objects.create(name="Other", slug="other")
    theirs = connection_create(project=other, user=users["superuser"], name="theirs", kind="embedded")
    mine = connection_create(project=project, user=users["admin"], name="mine", kind="embedded")
    client.login(username=users["reviewer"].username, password=PASSWORD)
    page = client.post(f"/p/{project.slug}/augment/", {"ids": [str(sources[0].pk)]}).content.decode()
    assert f'value="connection:{mine.pk}"' in page and "theirs" not in page
    body = {"ids": str(sources[0].pk), "per_example": "1", "temperature": "0.7", "max_new_tokens": "64"}
    response = client.post(f"/p/{project.slug}/augment/", body | {"backend": f"connection:{theirs.pk}"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    with pytest.raises(augment.AugmentError) as caught:
        generation_tasks.augment_start(
            project=project, user=users["reviewer"], example_ids=[sources[0].pk], backend={"connection": theirs.pk}
        )
    assert caught.value.field == "backend_connection" and caught.value.message == "Choose a connection of this project."
    assert not GenerationJob.objects.exists()
