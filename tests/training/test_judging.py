"""Blind judging: comparisons, sides the browser cannot see, saving judgments, results and the
LLM judge (on a loopback OpenAI-compatible server)."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from curation.models import Membership, Role
from tests.conftest import _user
from tests.curation.test_openai_backend import completion
from tests.training.conftest import make_run
from training.evaluation.judging import (
    JudgingError,
    comparisons_prepare,
    judging_results,
    judgment_save,
    left_system,
    next_comparison,
    sides,
    verdict_text,
)
from training.evaluation.llm_judge import judge_job_execute, parse_reply
from training.evaluation.tasks import judge_job_start
from training.models import Comparison, EvalSample, Evaluation, JudgeJob, Judgment

SYSTEM_WORDS = ("tuned", "few_shot", "few-shot", "base model", "baseline", "opponent")


def texts(i: int) -> dict[str, str]:
    return {
        "base": f"Base answer number {i}.",
        "few_shot": f"Prompted answer number {i}." if i != 0 else f"Tuned answer number {i}.",
        "tuned": f"Tuned answer number {i}.",
    }


@pytest.fixture
def evaluation(project, users):
    run = make_run(project, users["admin"], result={"train_loss": 1.0, "val_loss": 1.2})
    evaluation = Evaluation.objects.create(run=run, status=Evaluation.Status.DONE, total=4, processed=4)
    for i in range(4):
        EvalSample.objects.create(
            evaluation=evaluation,
            prompt=f"Question {i}?",
            reference=f"Reference {i}.",
            label="billing" if i % 2 else "shipping",
            source="manual",
            outputs=texts(i),
        )
    comparisons_prepare(evaluation)
    return evaluation


@pytest.fixture
def second_reviewer(project, django_user_model):
    user = _user(django_user_model, "rita")
    Membership.objects.create(project=project, user=user, role=Role.REVIEWER)
    return user


def pair(evaluation, i: int, opponent: str = "base") -> Comparison:
    return Comparison.objects.get(evaluation=evaluation, sample__prompt=f"Question {i}?", opponent=opponent)


def choose(comparison: Comparison, user, winner: str, **kwargs) -> Judgment:
    """Save a judgment that means `winner` ("tuned", "opponent", "tie") whatever side it is on."""
    left = left_system(comparison, str(user.pk))
    if winner == "tie":
        choice = "tie"
    else:
        choice = "a" if (left == "tuned") == (winner == "tuned") else "b"
    return judgment_save(comparison=comparison, user=user, choice=choice, **kwargs)


# --- comparisons and sides ----------------------------------------------------------------------


def test_each_sample_gets_a_pair_against_each_baseline_and_identical_answers_are_kept_out(evaluation):
    assert Comparison.objects.filter(evaluation=evaluation).count() == 8
    assert list(Comparison.objects.filter(identical=True).values_list("opponent", flat=True)) == ["few_shot"]
    assert comparisons_prepare(evaluation) == 8  # idempotent


def reviewer_seeing(project, django_user_model, comparison: Comparison, left: str):
    """A new reviewer who sees `left` on the left of this pair (sides hash the key and the user)."""
    for n in range(60):
        user = _user(django_user_model, f"judge-{len(left)}-{n}")
        if left_system(comparison, str(user.pk)) == left:
            Membership.objects.create(project=project, user=user, role=Role.REVIEWER)
            return user
    raise AssertionError("60 users all saw the other side: the sides are not random")


def test_sides_are_stable_for_a_judge_and_differ_between_judges(evaluation, project, users, django_user_model):
    comparison = pair(evaluation, 1)
    outputs = comparison.sample.outputs
    left = reviewer_seeing(project, django_user_model, comparison, "tuned")
    right = reviewer_seeing(project, django_user_model, comparison, "base")
    assert sides(comparison, str(left.pk)) == (outputs["tuned"], outputs["base"], "tuned")
    assert sides(comparison, str(right.pk)) == (outputs["base"], outputs["tuned"], "base")
    assert all(sides(comparison, str(left.pk))[2] == "tuned" for _ in range(3))


# --- judgments ----------------------------------------------------------------------------------


def test_a_choice_of_a_side_is_stored_as_the_model_it_means_with_the_rubric(evaluation, users):
    comparison = pair(evaluation, 1)
    reviewer = users["reviewer"]
    left = left_system(comparison, str(reviewer.pk))
    judgment = judgment_save(
        comparison=comparison, user=reviewer, choice="A", scores={"terms": {"a": "5", "b": "2"}, "tone": {"a": ""}}
    )
    assert judgment.left == left and judgment.choice == "a"
    assert judgment.winner == ("tuned" if left == "tuned" else "opponent")
    expected = {"tuned": 5, "opponent": 2} if left == "tuned" else {"tuned": 2, "opponent": 5}
    assert judgment.scores == {"terms": expected}
    again = judgment_save(comparison=comparison, user=reviewer, choice="tie", note="  same  ")
    assert again.pk == judgment.pk and (again.winner, again.note, again.scores) == ("tie", "same", {})


@pytest.mark.parametrize(
    ("choice", "scores", "field"),
    [("left", None, "choice"), ("", None, "choice"), ("a", {"terms": {"a": 6}}, "terms_a"), ("b", {"x": {}}, "scores")],
)
def test_a_bad_judgment_names_its_field_and_saves_nothing(evaluation, users, choice, scores, field):
    with pytest.raises(JudgingError) as caught:
        judgment_save(comparison=pair(evaluation, 1), user=users["reviewer"], choice=choice, scores=scores)
    assert caught.value.field == field and not Judgment.objects.exists()


def test_identical_answers_cannot_be_judged(evaluation, users):
    with pytest.raises(JudgingError):
        judgment_save(comparison=pair(evaluation, 0, "few_shot"), user=users["reviewer"], choice="a")


def test_the_queue_skips_what_i_judged_and_what_two_people_judged(evaluation, project, users, second_reviewer):
    me, other, admin = users["reviewer"], second_reviewer, users["admin"]
    first = next_comparison(project, me)
    assert first is not None and not first.identical
    choose(first, me, "tuned")
    assert next_comparison(project, me) != first
    assert next_comparison(project, other) == first  # the pair wants a second judge
    choose(first, other, "tuned")
    assert next_comparison(project, admin) != first  # two judges: others come first
    skipped = next_comparison(project, me)
    assert next_comparison(project, me, after=skipped.key) != skipped


# --- results ------------------------------------------------------------------------------------


def test_results_count_wins_with_interval_position_and_agreement(evaluation, users, second_reviewer):
    me, other = users["reviewer"], second_reviewer
    for i in range(4):
        choose(pair(evaluation, i), me, "tuned", scores={"terms": {"a": 4, "b": 4}})
    choose(pair(evaluation, 0), other, "tuned")
    choose(pair(evaluation, 1), other, "opponent")
    results = judging_results(evaluation)
    base = next(o for o in results["opponents"] if o["opponent"] == "base")
    assert (base["rate"]["wins"], base["rate"]["losses"], base["rate"]["ties"]) == (5, 1, 0)
    assert base["rate"]["rate"] == pytest.approx(5 / 6)
    assert base["verdict"] == "No clear winner: tuned model wins 83% [44, 97] over base model on 6 judged pairs"
    assert base["agreement"]["items"] == 2 and base["agreement"]["raw_agreement"] == 0.5
    assert results["judgments"] == 6 and results["reviewers"] == 2 and results["identical"] == 1
    assert results["position"]["n"] == 6
    terms = next(c for c in base["criteria"] if c["key"] == "terms")
    assert (terms["tuned"], terms["opponent"], terms["n"]) == (4, 4, 4)
    by_label = dict(base["groups"])["By label"]
    assert {g["value"]: g["n"] for g in by_label} == {"billing": 3, "shipping": 3}


def test_the_verdict_names_the_clear_winner_first_and_says_when_there_is_none():
    assert (
        verdict_text("few_shot", 68, 32, 0)
        == "tuned model wins 68% [58, 76] over few-shot base model on 100 judged pairs"
    )
    assert verdict_text("base", 2, 18, 0).startswith("base model wins 90%")
    assert verdict_text("base", 5, 5, 2).startswith("No clear winner: tuned model wins 50%")
    assert "(2 ties counted as half a win)" in verdict_text("base", 5, 5, 2)


# --- the pages ----------------------------------------------------------------------------------


def _blind_parts(html: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    return re.sub(r'"X-CSRFToken": "[^"]+"', "", html)


def test_the_judging_page_and_its_requests_never_say_which_side_is_which(
    client, evaluation, project, users, django_user_model
):
    comparison = pair(evaluation, 1)
    first = reviewer_seeing(project, django_user_model, comparison, "tuned")
    second = reviewer_seeing(project, django_user_model, comparison, "base")
    url = reverse("judge_pair", args=[project.slug, comparison.key])
    assert comparison.key in url and str(comparison.sample_id) not in url.replace(comparison.key, "")
    pages = {}
    for user in (first, second):
        client.force_login(user)
        pages[user.pk] = _blind_parts(client.get(url).content.decode()).replace(user.username, "")
    tuned, other = comparison.sample.outputs["tuned"], comparison.sample.outputs[comparison.opponent]
    one, two = pages.values()
    assert one.index(tuned) < one.index(other) and two.index(other) < two.index(tuned)
    swapped = one.replace(tuned, "\0").replace(other, tuned).replace("\0", other)
    done = re.compile(r"You have judged \d+ of \d+")
    assert done.sub("", swapped) == done.sub("", two)  # the only difference is the order
    main = one[one.index("<main") :]
    for word in SYSTEM_WORDS:
        assert word not in main.lower().replace(tuned.lower(), "").replace(other.lower(), "")
    links = re.findall(r'(?:href|action|hx-[a-z]+|src)="([^"]*)"', main)
    for link in links:
        assert not any(word in link.lower() for word in SYSTEM_WORDS), link
        assert f"sample={comparison.sample_id}" not in link
    response = client.post(url, {"choice": "a"})
    assert response.status_code == 302
    assert not any(word in response["Location"].lower() for word in SYSTEM_WORDS)
    assert Judgment.objects.get(reviewer=second).winner == "opponent"
    follow = client.get(response["Location"])
    assert follow.status_code == 302 and "/judge/" in follow["Location"]


def test_the_judge_sees_the_earlier_turns_of_the_conversation(client, evaluation, project, users):
    comparison = pair(evaluation, 1)
    EvalSample.objects.filter(pk=comparison.sample_id).update(
        context=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "My order is <late>."}]
    )
    client.force_login(users["reviewer"])
    html = client.get(reverse("judge_pair", args=[project.slug, comparison.key])).content.decode()
    assert "Earlier in the conversation" in html and "My order is &lt;late&gt;." in html


def test_judging_pages_check_the_role(client, evaluation, project, users):
    comparison = pair(evaluation, 1)
    for url in (
        reverse("judge_home", args=[project.slug]),
        reverse("judge_next", args=[project.slug]),
        reverse("judge_pair", args=[project.slug, comparison.key]),
    ):
        client.force_login(users["annotator"])
        assert client.get(url).status_code == 403
        client.force_login(users["outsider"])
        assert client.get(url).status_code == 404
    client.force_login(users["reviewer"])
    assert client.get(reverse("judge_pair", args=[project.slug, "not-a-key"])).status_code == 404
    response = client.get(reverse("judge_next", args=[project.slug]) + "?evaluation=x")
    assert (
        response.status_code == 400
        and "There is no finished evaluation x in this project." in response.content.decode()
    )


def test_a_bad_post_keeps_what_was_typed_and_says_what_is_wrong(client, evaluation, project, users):
    client.force_login(users["reviewer"])
    url = reverse("judge_pair", args=[project.slug, pair(evaluation, 1).key])
    response = client.post(url, {"choice": "", "terms_a": "4", "note": "<b>hmm</b>"})
    assert response.status_code == 400 and "Choose A, B or tie." in response.content.decode()
    assert "&lt;b&gt;hmm&lt;/b&gt;" in response.content.decode() and not Judgment.objects.exists()


def test_the_evaluation_page_shows_metrics_and_the_verdict(client, evaluation, project, users):
    Evaluation.objects.filter(pk=evaluation.pk).update(
        by_label={"billing": {"tuned": {"chrf": 41.5}, "base": {"chrf": 12.25}}},
        overall={
            s: {"bleu": 10.0, "chrf": 30.0, "rouge_l": 0.25, "repetition": 0.0} for s in ("base", "few_shot", "tuned")
        },
    )
    choose(pair(evaluation, 1), users["reviewer"], "tuned")
    client.force_login(users["annotator"])
    html = client.get(reverse("evaluation_detail", args=[project.slug, evaluation.pk])).content.decode()
    assert "tuned model wins 100%" in html and "on 1 judged pair" in html
    assert (
        "30.0" in html
        and "41.5" in html
        and "12.2" in html
        and "Judge these pairs" not in html
        and "Ask the LLM judge" not in html
    )
    client.force_login(users["reviewer"])
    html = client.get(reverse("evaluation_detail", args=[project.slug, evaluation.pk])).content.decode()
    assert "Judge these pairs" in html and "Ask the LLM judge" in html


def test_an_admin_starts_an_evaluation_from_the_run_page_and_a_refusal_is_shown(
    client, project, users, django_capture_on_commit_callbacks
):
    run = make_run(project, users["admin"], output_dir="/nonexistent")
    client.force_login(users["reviewer"])
    assert client.post(reverse("run_evaluate", args=[project.slug, run.pk])).status_code == 403
    client.force_login(users["admin"])
    response = client.post(reverse("run_evaluate", args=[project.slug, run.pk]), follow=True)
    assert "The test split is empty" in response.content.decode()
    assert not Evaluation.objects.exists()


# --- the LLM judge ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            '{"winner": "A", "scores": {"terms": {"A": 5, "B": 3}}, "reason": "A is precise."}',
            ("a", {"terms": {"a": 5, "b": 3}}, "A is precise."),
        ),
        ('```json\n{"winner": "tie", "scores": {"tone": {"A": 9, "B": 2}}}\n```', ("tie", {"tone": {"b": 2}}, "")),
        ('Sure! {"winner": "b"}', ("b", {}, "")),
    ],
)
def test_the_judges_reply_is_parsed_leniently_but_never_guessed(reply, expected):
    assert parse_reply(reply) == expected


@pytest.mark.parametrize("reply", ["B is better", '{"winner": "C"}', '{"winner": "A"', "[1, 2]"])
def test_a_reply_without_a_verdict_is_refused(reply):
    with pytest.raises(ValueError):
        parse_reply(reply)


def judge_connection(evaluation, users, server) -> dict:
    """The spec of a connection an admin made to the test's judge server."""
    from curation.connections.services import connection_create

    connection = connection_create(
        project=evaluation.run.project,
        user=users["admin"],
        name="judge",
        kind="openai",
        base_url=server.url,
        model="judge-1",
        timeout=5,
    )
    return {"connection": connection.pk}


def test_an_llm_judge_is_stored_apart_and_compared_with_the_people(
    server,
    sleeps,
    evaluation,
    users,
    django_capture_on_commit_callbacks,
):
    def always_tuned(number, body):
        text = body["messages"][-1]["content"]
        a = text.split("Answer A:\n")[1].split("\n\nAnswer B:")[0]
        if "Question 3?" in text:
            return 200, {}, completion("I cannot decide.")
        return 200, {}, completion(json.dumps({"winner": "A" if a.startswith("Tuned") else "B", "reason": "ok"}))

    server.respond = always_tuned
    choose(pair(evaluation, 1), users["reviewer"], "tuned")
    choose(pair(evaluation, 2), users["reviewer"], "opponent")
    with pytest.raises(JudgingError) as caught:
        judge_job_start(evaluation=evaluation, user=users["reviewer"], backend={"connection": ""})
    assert caught.value.field == "backend_connection" and "OpenAI-compatible" in caught.value.message
    spec = judge_connection(evaluation, users, server)
    job = judge_job_execute(
        job=judge_job_start(evaluation=evaluation, user=users["reviewer"], backend=spec, enqueue=False)
    )
    assert job.status == JudgeJob.Status.DONE, job.error
    assert (job.total, job.processed, job.failures) == (7, 7, 2)
    llm = Judgment.objects.filter(reviewer__isnull=True)
    assert llm.count() == 5 and set(llm.values_list("winner", flat=True)) == {"tuned"}
    results = judging_results(evaluation)
    base = next(o for o in results["opponents"] if o["opponent"] == "base")
    assert base["rate"]["n"] == 2  # the people's results hold the people's judgments only
    assert base["llm"]["rate"]["n"] == 3 and base["llm"]["agreement"]["items"] == 2
    assert base["llm"]["agreement"]["raw_agreement"] == 0.5
    again = judge_job_execute(
        job=judge_job_start(evaluation=evaluation, user=users["reviewer"], backend=spec, enqueue=False)
    )
    assert again.status == JudgeJob.Status.DONE and Judgment.objects.filter(reviewer__isnull=True).count() == 5


def test_a_server_error_fails_the_llm_judge_with_its_reason(server, sleeps, evaluation, users):
    server.respond = lambda number, body: (500, {}, b"judge exploded")
    spec = judge_connection(evaluation, users, server)
    job = judge_job_execute(
        job=judge_job_start(evaluation=evaluation, user=users["reviewer"], backend=spec, enqueue=False)
    )
    # The reason is the status line; the remote body is not echoed (llm/openai_compatible.py).
    assert job.status == JudgeJob.Status.FAILED and "500 Internal Server Error" in job.error
    assert not Judgment.objects.exists()


def test_a_judge_job_left_running_by_a_killed_worker_is_marked_interrupted(evaluation, users):
    from tests.conftest import reap_after_lease

    job = JudgeJob.objects.create(evaluation=evaluation, status=JudgeJob.Status.RUNNING, total=7)
    assert reap_after_lease() == 1
    job.refresh_from_db()
    assert job.status == JudgeJob.Status.INTERRUPTED and "kept" in job.error and job.finished_at


def test_the_llm_judge_form_offers_connections_and_ignores_a_typed_address(
    client, server, project, evaluation, users, django_capture_on_commit_callbacks
):
    spec = judge_connection(evaluation, users, server)
    client.force_login(users["reviewer"])
    url = reverse("evaluation_llm_judge", args=[project.slug, evaluation.pk])
    page = client.get(reverse("evaluation_detail", args=[project.slug, evaluation.pk])).content.decode()
    assert f'<option value="connection:{spec["connection"]}">judge (OpenAI-compatible server)</option>' in page
    assert 'name="base_url"' not in page and 'name="api_key_env"' not in page
    typed = {"base_url": "http://169.254.169.254/v1", "model": "m", "api_key_env": "SECRET_KEY"}
    response = client.post(url, typed, follow=True)
    assert "runs on an OpenAI-compatible server: choose a connection" in response.content.decode()
    assert not JudgeJob.objects.exists()
    with django_capture_on_commit_callbacks():
        client.post(url, {"connection": f"connection:{spec['connection']}"})
    assert JudgeJob.objects.get().backend == spec
