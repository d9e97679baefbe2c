"""The whole loop on real components: the embedded SmolLM2 generates drafts in a real Huey
consumer, a reviewer approves one and edits the other, and the export holds the edit's pair."""

from __future__ import annotations

import json

from curation.generation.tasks import synthetic_start
from curation.generation.templates import DEFAULT_TEXT, template_save
from curation.models import Draft, Example, GenerationJob
from curation.review.services import draft_approve, preferences_jsonl
from tests.conftest import wait_for


def test_embedded_model_drafts_reviewed_into_one_preference_pair(huey_consumer, project, users):
    project.system_prompt = "You are the customer support assistant of a small online shop."
    project.save()
    template = template_save(project=project, user=users["reviewer"], name="default", text=DEFAULT_TEXT)
    job = synthetic_start(
        project=project,
        user=users["reviewer"],
        template=template,
        count=2,
        topics=["a refund for a broken kettle", "a parcel that arrived late"],
        task_types=["customer support"],
        temperature=0.0,
        max_new_tokens=48,
    )

    def finished() -> GenerationJob | None:
        current = GenerationJob.objects.get(pk=job.pk)
        return current if current.finished else None

    job = wait_for(finished, timeout=600, interval=0.5)  # generous: a busy shared CPU is slow
    assert job.status == GenerationJob.Status.DONE, (job.error, job.errors)
    assert job.backend == "local:SmolLM2-135M-Instruct"
    drafts = list(Draft.objects.filter(job=job).select_related("example").order_by("id"))
    assert len(drafts) == 2, job.errors
    for draft in drafts:
        assert draft.example.status == Example.Status.DRAFT
        assert draft.example.messages[0]["role"] == "system"
        assert draft.example.messages[1]["content"].strip() and draft.original == draft.example.messages[2]["content"]

    first, second = drafts
    draft_approve(draft=first, user=users["reviewer"], version=first.example.version)
    messages = [dict(m) for m in second.example.messages]
    messages[second.target]["content"] = "I am sorry it arrived late. I have refunded the delivery charge."
    draft_approve(draft=second, user=users["reviewer"], version=second.example.version, messages=messages)

    lines = [json.loads(line) for line in preferences_jsonl(project)]
    assert len(lines) == 1
    assert lines[0]["chosen"] == [{"role": "assistant", "content": messages[second.target]["content"]}]
    assert lines[0]["rejected"] == [{"role": "assistant", "content": second.original}]
    assert lines[0]["prompt"] == second.example.messages[: second.target]
    assert Example.objects.filter(project=project, status=Example.Status.APPROVED).count() == 2
