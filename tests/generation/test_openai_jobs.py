"""Synthetic jobs on an OpenAI-compatible server (a loopback server started by the test):
success, a timeout, a 500 and malformed JSON each end the job in the right state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from curation.connections.services import connection_create
from curation.generation.synthetic import synthetic_execute
from curation.generation.tasks import synthetic_start
from curation.models import Draft, GenerationJob
from tests.curation.test_openai_backend import FakeServer, completion


def start(project, users, template, server: FakeServer, **fields: Any) -> GenerationJob:
    """A job on a connection an admin made to the test's server."""
    values = {"name": "test server", "kind": "openai", "base_url": server.url, "model": "tiny-chat", "timeout": 1}
    connection = connection_create(project=project, user=users["admin"], **(values | fields))
    return synthetic_start(
        project=project, user=users["reviewer"], template=template, count=2, backend={"connection": connection.pk}
    )


def reply_by_role(number: int, body: dict[str, Any]):
    last = body["messages"][-1]["content"]
    if "Topic:" in last:
        return 200, {}, completion(f"Question {number}?")
    finish = "length" if number == 3 else "stop"
    answer = json.loads(completion(f"Answer to {last}"))
    answer["choices"][0]["finish_reason"] = finish
    return 200, {}, json.dumps(answer).encode()


def test_a_job_on_a_server_makes_drafts_and_flags_cut_off_answers(
    server, sleeps, project, users, template, django_capture_on_commit_callbacks
):
    server.respond = reply_by_role
    job = synthetic_execute(job=start(project, users, template, server))
    assert job.status == GenerationJob.Status.DONE, job.error
    drafts = list(Draft.objects.filter(job=job).select_related("example").order_by("id"))
    assert len(drafts) == 2
    assert drafts[0].example.metadata["backend"] == job.backend == f"openai:tiny-chat@{server.url.split('/')[2]}"
    assert {server.seen[0].body["model"], server.seen[0].path} == {"tiny-chat", "/v1/chat/completions"}
    assert [[f["code"] for f in d.flags] for d in drafts].count(["truncated"]) == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        # The remote body is not echoed to users (llm/openai_compatible.py), only the status line.
        ((500, {}, b"upstream exploded"), "the server answered 500 Internal Server Error."),
        ((200, {}, b"<html>not json</html>"), "not a chat completion (not JSON)"),
    ],
)
def test_a_server_error_fails_the_job_with_the_reason(
    server, sleeps, project, users, template, django_capture_on_commit_callbacks, answer, message
):
    server.respond = lambda number, body: answer
    job = synthetic_execute(job=start(project, users, template, server))
    assert job.status == GenerationJob.Status.FAILED and message in job.error
    assert job.finished_at is not None and not job.drafts.exists()


def test_a_server_that_does_not_answer_in_time_fails_the_job(
    server, sleeps, project, users, template, django_capture_on_commit_callbacks
):
    def slow(number: int, body: dict[str, Any]):
        server.release.wait(3)
        return 200, {}, completion("too late")

    server.respond = slow
    job = synthetic_execute(job=start(project, users, template, server))
    assert job.status == GenerationJob.Status.FAILED
    assert "did not answer within 1 s" in job.error and "3 attempts" in job.error
    assert sorted(sleeps) == [1.0, 1.0, 2.0, 2.0]  # two requests, each waited before its 2nd and 3rd try


def test_a_secret_unset_after_the_job_started_fails_it_naming_the_secret(
    server, project, users, template, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setenv("SHIKOMI_SECRET_JOB_KEY", "sk-value")
    job = start(project, users, template, server, secret="SHIKOMI_SECRET_JOB_KEY")
    monkeypatch.delenv("SHIKOMI_SECRET_JOB_KEY")
    job = synthetic_execute(job=job)
    assert job.status == GenerationJob.Status.FAILED and "SHIKOMI_SECRET_JOB_KEY" in job.error
    assert "sk-value" not in job.error
    assert not server.seen
