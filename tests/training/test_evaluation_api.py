"""The evaluation API: starting, reading, samples, blind judging and the LLM judge's start."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from curation.connections.services import connection_create
from tests.training.conftest import make_run
from tests.training.test_judging import SYSTEM_WORDS, evaluation  # noqa: F401
from training.models import Comparison, Evaluation, JudgeJob, Judgment


def test_only_admins_start_an_evaluation_and_refusals_name_the_field(client, project, users):
    run = make_run(project, users["admin"], output_dir="/nonexistent")
    url = reverse("api_run_evaluations", args=[project.slug, run.pk])
    client.force_login(users["reviewer"])
    assert client.post(url, {}).status_code == 403
    assert client.get(url).status_code == 200
    client.force_login(users["admin"])
    response = client.post(url, {"few_shot": 2}, content_type="application/json")
    assert response.status_code == 400 and "split" in response.json()
    assert client.post(url, {"few_shot": 11}, content_type="application/json").json().keys() == {"few_shot"}


def test_an_evaluation_reads_with_its_metrics_and_judging(client, project, users, evaluation):  # noqa: F811
    client.force_login(users["annotator"])
    data = client.get(reverse("api_evaluation", args=[project.slug, evaluation.pk])).json()
    assert data["status"] == "done" and data["judging"]["pairs"] == 7
    assert [o["opponent"] for o in data["judging"]["opponents"]] == ["few_shot", "base"]
    samples = client.get(reverse("api_evaluation_samples", args=[project.slug, evaluation.pk]) + "?label=billing")
    assert samples.json()["count"] == 2 and set(samples.json()["results"][0]["outputs"]) == {
        "base",
        "few_shot",
        "tuned",
    }
    client.force_login(users["outsider"])
    assert client.get(reverse("api_evaluation", args=[project.slug, evaluation.pk])).status_code == 404


def test_judging_through_the_api_never_names_the_models(client, project, users, evaluation):  # noqa: F811
    client.force_login(users["annotator"])
    assert client.get(reverse("api_judge_next", args=[project.slug])).status_code == 403
    client.force_login(users["reviewer"])
    response = client.get(reverse("api_judge_next", args=[project.slug]) + f"?evaluation={evaluation.pk}")
    pair = response.json()
    assert set(pair) == {"key", "prompt", "context", "reference", "a", "b", "criteria", "mine"}
    comparison = Comparison.objects.get(key=pair["key"])
    shown = json.dumps({k: v for k, v in pair.items() if k not in ("a", "b")}).lower()
    assert not any(word in shown for word in SYSTEM_WORDS) and pair["key"] == comparison.key
    url = reverse("api_judge_pair", args=[project.slug, pair["key"]])
    bad = client.post(url, {"choice": "left"}, content_type="application/json")
    assert bad.status_code == 400 and "choice" in bad.json()
    bad = client.post(url, {"choice": "a", "scores": {"speed": {"a": 3}}}, content_type="application/json")
    assert bad.status_code == 400 and "scores" in bad.json()
    saved = client.post(url, {"choice": "a", "scores": {"tone": {"a": 5, "b": 1}}}, content_type="application/json")
    assert saved.status_code == 200 and saved.json()["mine"]["scores"] == {"tone": {"a": 5, "b": 1}}
    judgment = Judgment.objects.get()
    assert judgment.winner == ("tuned" if judgment.left == "tuned" else "opponent")
    assert client.get(reverse("api_judge_next", args=[project.slug]) + "?evaluation=999999").status_code == 400


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"base_url": "http://169.254.169.254/v1", "model": "m"}, "ask an admin to add one"),
        ({"connection": "judge", "api_key_env": "SECRET_KEY"}, "ask an admin to add one"),
        ({"connection": "Embedded model"}, "runs on an OpenAI-compatible server"),
        ({"connection": "no such connection"}, "Choose a connection of this project."),
    ],
)
def test_an_llm_judge_without_an_openai_connection_of_the_project_is_refused(
    client,
    project,
    users,
    evaluation,  # noqa: F811
    payload,
    words,
):
    connection_create(
        project=project, user=users["admin"], name="judge", kind="openai", base_url="http://127.0.0.1:9/v1", model="j"
    )
    client.force_login(users["reviewer"])
    response = client.post(
        reverse("api_evaluation_llm_judge", args=[project.slug, evaluation.pk]),
        payload,
        content_type="application/json",
    )
    assert response.status_code == 400 and words in response.json()["connection"][0]
    assert not JudgeJob.objects.exists()


def test_an_llm_judge_is_queued(client, project, users, evaluation, django_capture_on_commit_callbacks):  # noqa: F811
    judge = connection_create(
        project=project, user=users["admin"], name="judge", kind="openai", base_url="http://127.0.0.1:9/v1", model="j"
    )
    client.force_login(users["reviewer"])
    url = reverse("api_evaluation_llm_judge", args=[project.slug, evaluation.pk])
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url, {"connection": "judge"}, content_type="application/json")
    assert response.status_code == 202 and len(callbacks) == 1 and response.json()["total"] == 7
    assert client.get(url).json()[0]["status"] == "queued"
    assert Evaluation.objects.get().judge_jobs.get().backend == {"connection": judge.pk}
