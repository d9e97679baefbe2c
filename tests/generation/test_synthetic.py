"""Synthetic generation jobs with a scripted backend: drafts, checks, errors, cancel and resume."""

from __future__ import annotations

import pytest

from curation.connections.services import connection_create
from curation.core.services import example_create
from curation.generation import ConfigError
from curation.generation.jobs import generation_job_cancel
from curation.generation.synthetic import BATCH, clean_request, parse_critique, synthetic_execute
from curation.generation.tasks import generation_job_resume, synthetic_start
from curation.generation.templates import template_save
from curation.models import Draft, Example, ExampleRevision, GenerationJob, Label, Project
from llm.interface import GenerationError


def codes(draft: Draft) -> list[str]:
    return [flag["code"] for flag in draft.flags]


def test_each_prompt_and_candidate_becomes_a_draft_waiting_for_review(drafts, template, users):
    made = drafts(count=3, candidates=2)
    assert len(made) == 6
    assert [(d.group, d.candidate) for d in made] == [(f"p{i}", k) for i in range(3) for k in range(2)]
    first = made[0]
    example = first.example
    assert example.status == Example.Status.DRAFT and example.source == Example.Source.SYNTHETIC
    assert example.messages[0] == {"role": "user", "content": "Question 1 about refunds?"}
    assert example.messages[first.target]["role"] == "assistant"
    assert first.original == example.messages[-1]["content"]
    assert first.template == template and "Topic: refunds" in first.request
    assert example.metadata == {"topic": "refunds", "backend": "local:SmolLM2-135M-Instruct"}
    # both candidates answer the same request
    assert made[1].example.messages[0] == example.messages[0]
    assert ExampleRevision.objects.filter(example=example, action=ExampleRevision.Action.CREATE).exists()
    job = first.job
    assert (job.status, job.processed, job.total, job.created_count) == (GenerationJob.Status.DONE, 3, 3, 6)


def test_topics_and_task_types_are_combined_before_any_pair_repeats(drafts):
    made = drafts(count=4, topics=["refunds", "delivery"], task_types=["code", "summarisation"])
    pairs = [(d.example.metadata["topic"], d.example.metadata["task_type"]) for d in made]
    assert pairs == [
        ("refunds", "code"),
        ("delivery", "code"),
        ("refunds", "summarisation"),
        ("delivery", "summarisation"),
    ]


def test_the_project_system_prompt_opens_every_draft(project, drafts):
    project.system_prompt = "You are the support desk."
    project.save()
    made = drafts(count=1)
    assert made[0].example.messages[0] == {"role": "system", "content": "You are the support desk."}
    assert made[0].target == 2


def test_few_shot_examples_are_drawn_from_approved_examples(project, users, drafts, backend):
    example_create(
        project=project,
        user=users["reviewer"],
        messages=[{"role": "user", "content": "Can I change my address?"}, {"role": "assistant", "content": "Yes."}],
        status=Example.Status.APPROVED,
    )
    drafts(count=1)
    asked = backend.calls[0][0][-1]["content"]
    assert "User: Can I change my address?\nAssistant: Yes." in asked


def test_a_classification_template_with_label_makes_labelled_requests(
    project, users, backend, django_capture_on_commit_callbacks
):
    project.kind = Project.Kind.CLASSIFICATION
    project.save()
    template = template_save(project=project, user=None, name="c", text="A message about {label}. Topic: {topic}")
    job = synthetic_start(project=project, user=users["reviewer"], template=template, count=2, candidates=2)
    synthetic_execute(job=job, backend=backend)
    made = list(Draft.objects.filter(job=job).select_related("example__label"))
    assert [d.example.label.name for d in made] == ["billing", "billing", "shipping", "shipping"]
    assert all(d.example.messages[d.target]["role"] == "user" for d in made)
    assert all(len(d.example.messages) == 1 for d in made)


def test_critique_and_rewrite_replaces_the_answer_and_keeps_the_first(drafts):
    made = drafts(count=1, critique=True)
    draft = made[0]
    assert draft.example.messages[-1]["content"].startswith("A better answer")
    assert draft.first_answer.startswith("Answer ") and draft.critique == "too short."


def test_a_critique_without_an_improved_answer_keeps_the_first_and_says_so(drafts, backend):
    backend.replies["Improved answer"] = "I think it is fine."
    draft = drafts(count=1, critique=True)[0]
    assert draft.example.messages[-1]["content"].startswith("Answer ")
    assert codes(draft) == ["critique_unparsed"]


def test_an_empty_request_is_a_per_draft_error_and_an_empty_answer_a_flagged_draft(drafts, backend):
    backend.replies["Topic: delivery"] = "   "
    backend.replies["Question 1 about refunds?"] = ""
    made = drafts(count=2)
    assert len(made) == 1 and codes(made[0]) == ["empty"]
    job = made[0].job
    assert job.status == GenerationJob.Status.DONE
    assert job.errors == [{"key": "p1", "error": "the model wrote no request"}]


def test_truncated_and_over_long_drafts_are_flagged(project, drafts, backend):
    project.max_seq_length = 16
    project.save()
    backend.truncate.add("Question 1 about refunds?")
    made = drafts(count=1)
    flags = made[0].flags
    assert [f["code"] for f in flags] == ["truncated", "over_long"]
    assert flags[1]["limit"] == 16 and flags[1]["tokens"] > 16


def test_duplicates_of_existing_examples_and_of_the_jobs_own_drafts_are_flagged(project, users, drafts, backend):
    existing = example_create(
        project=project,
        user=users["annotator"],
        messages=[{"role": "user", "content": "Question 1 about refunds?"}, {"role": "assistant", "content": "Copy."}],
    )
    backend.replies["Question 1 about refunds?"] = "Copy."
    backend.replies["Topic: delivery"] = "Question 1 about refunds?"
    made = drafts(count=3, topics=["refunds", "delivery", "returns"])
    # p0 repeats the existing example exactly, p1 asks the same question again
    assert made[0].flags == [{"code": "exact_duplicate", "example": existing.pk}]
    assert made[1].flags == [{"code": "exact_duplicate", "example": existing.pk}]
    assert codes(made[2]) == []


def test_near_duplicates_and_same_requests_are_flagged_with_the_example(project, users, drafts, backend):
    long_answer = "Refunds reach your card within five working days after we receive the parcel back at our warehouse."
    existing = example_create(
        project=project,
        user=users["annotator"],
        messages=[
            {"role": "user", "content": "How long do refunds take?"},
            {"role": "assistant", "content": long_answer},
        ],
    )
    backend.replies["Topic: refunds"] = "How long do refunds take?"
    backend.replies["How long do refunds take?"] = long_answer.replace("warehouse", "depot")
    draft = drafts(count=1)[0]
    near = draft.flags[0]
    assert near["code"] == "near_duplicate" and near["example"] == existing.pk and 0.8 <= near["similarity"] < 1
    assert draft.flags[1] == {"code": "same_prompt", "example": existing.pk}


def test_structured_projects_flag_answers_that_do_not_parse(project, drafts, backend):
    project.kind = Project.Kind.STRUCTURED
    project.json_schema = {"type": "object", "required": ["intent"]}
    project.save()
    backend.replies["Question 1"] = '{"intent": "refund"'
    backend.replies["Question 2"] = '{"topic": "delivery"}'
    backend.replies["Question 3"] = '{"intent": "refund"}'
    made = drafts(count=3, topics=["a", "b", "c"])
    assert codes(made[0]) == ["format"] and "JSON" in made[0].flags[0]["detail"]
    assert codes(made[1]) == ["format"] and "intent" in made[1].flags[0]["detail"]
    assert codes(made[2]) == []


def test_a_backend_failure_fails_the_job_and_keeps_the_drafts_it_finished(
    project, users, template, backend, django_capture_on_commit_callbacks
):
    calls = {"n": 0}
    real = backend.generate_detailed

    def flaky(conversations, **options):
        calls["n"] += 1
        if calls["n"] == 3:  # the second batch's requests
            raise GenerationError("The request to http://x/v1/chat/completions failed: the server answered 500.")
        return real(conversations, **options)

    backend.generate_detailed = flaky
    job = synthetic_start(project=project, user=users["reviewer"], template=template, count=BATCH + 2)
    job = synthetic_execute(job=job, backend=backend)
    assert job.status == GenerationJob.Status.FAILED and "answered 500" in job.error
    assert job.drafts.count() == BATCH and job.processed == BATCH

    backend.generate_detailed = real
    with django_capture_on_commit_callbacks() as callbacks:
        generation_job_resume(job=job)
    assert len(callbacks) == 1
    job = synthetic_execute(job=job, backend=backend)
    assert job.status == GenerationJob.Status.DONE
    assert sorted(Draft.objects.filter(job=job).values_list("group", flat=True)) == sorted(
        f"p{i}" for i in range(BATCH + 2)
    )


def test_running_a_job_again_never_duplicates_drafts(run_job, backend):
    job = run_job(count=3)
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.QUEUED)
    synthetic_execute(job=job, backend=backend)
    assert job.drafts.count() == 3


def test_cancel_stops_before_the_next_batch_and_keeps_the_drafts(
    project, users, template, backend, django_capture_on_commit_callbacks
):
    job = synthetic_start(project=project, user=users["reviewer"], template=template, count=BATCH + 3)
    real = backend.generate_detailed

    def cancelling(conversations, **options):
        generation_job_cancel(job=job)
        return real(conversations, **options)

    backend.generate_detailed = cancelling
    job = synthetic_execute(job=job, backend=backend)
    assert job.status == GenerationJob.Status.CANCELLED and job.drafts.count() == BATCH


def test_a_queued_job_cancelled_never_runs(project, users, template, backend, django_capture_on_commit_callbacks):
    job = synthetic_start(project=project, user=users["reviewer"], template=template, count=2)
    generation_job_cancel(job=job)
    job = synthetic_execute(job=job, backend=backend)
    assert job.status == GenerationJob.Status.CANCELLED and not backend.calls


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"count": 0}, "count"),
        ({"count": 1001}, "count"),
        ({"candidates": 6}, "candidates"),
        ({"candidates": 2, "temperature": 0}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"max_new_tokens": 8}, "max_new_tokens"),
        ({"topics": ["x" * 301]}, "topics"),
        ({"backend": {"kind": "cloud"}}, "backend_kind"),
        # What reviewers once typed: now an admin's, in a connection.
        ({"backend": {"kind": "openai", "base_url": "http://host/v1", "model": "m"}}, "backend_connection"),
        ({"backend": {"kind": "local", "model": "/etc"}}, "backend_connection"),
        ({"backend": {"connection": "no such connection"}}, "backend_connection"),
        ({"backend": {"kind": "tuned", "run": 999}}, "backend_run"),
    ],
)
def test_settings_that_cannot_work_are_refused_by_field(project, users, template, settings, field):
    options = {"count": 2} | settings
    with pytest.raises(ConfigError) as caught:
        synthetic_start(project=project, user=users["reviewer"], template=template, **options)
    assert caught.value.field == field
    assert not GenerationJob.objects.exists()


def test_a_template_of_another_project_is_refused(project, users, django_capture_on_commit_callbacks):
    other = Project.objects.create(name="Other", slug="other")
    Label.objects.create(project=other, name="x")
    foreign = template_save(project=other, user=None, name="t", text="{topic}")
    with pytest.raises(ConfigError) as caught:
        synthetic_start(project=project, user=users["reviewer"], template=foreign, count=1)
    assert caught.value.field == "template"


def test_a_job_stores_only_its_connections_id(project, users, template, django_capture_on_commit_callbacks):
    gpu = connection_create(
        project=project, user=users["admin"], name="gpu", kind="openai", base_url="http://127.0.0.1:9/v1", model="m"
    )
    job = synthetic_start(
        project=project, user=users["reviewer"], template=template, count=1, backend={"connection": "gpu"}
    )
    assert job.config["backend"] == {"connection": gpu.pk}
    assert job.backend == "openai:m@127.0.0.1:9"


def test_the_huey_task_runs_synthetic_jobs(
    project, users, template, backend, monkeypatch, django_capture_on_commit_callbacks
):
    # The task counts replies through the job's backend (curation/generation/jobs.py): the same fake.
    monkeypatch.setattr("curation.generation.jobs.backend_from_spec", lambda spec, project: backend)
    with django_capture_on_commit_callbacks(execute=True):
        job = synthetic_start(project=project, user=users["reviewer"], template=template, count=2)
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.DONE and job.drafts.count() == 2


def test_small_model_habits_are_cleaned_from_requests_and_critiques():
    assert clean_request('User: "Where is my parcel?"') == "Where is my parcel?"
    assert clean_request("「荷物はどこですか」") == "荷物はどこですか"
    assert parse_critique("Critique: terse.\nImproved answer: Longer.") == ("terse.", "Longer.")
    assert parse_critique("improved ANSWER:   ") is None
    assert parse_critique("No form at all") is None
