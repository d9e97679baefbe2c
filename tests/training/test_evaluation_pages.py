"""The evaluation pages: the word diff against the reference, the regression rules, an
evaluation's samples side by side with their filters, and several runs' evaluations compared.
No model runs here: Evaluation and EvalSample rows are made directly."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import reverse

from curation.models import Project
from tests.training.conftest import add, make_run
from training.evaluation import compare
from training.evaluation.diff import MAX_TOKENS, answer_diff
from training.models import EvalSample, Evaluation, TrainingRun

HOSTILE = "<script>alert(1)</script>"

# --- the diff ----------------------------------------------------------------------------


def rebuilt(segments, side: str) -> str:
    """The output ("insert" side) or the reference ("delete" side) from the segments."""
    return "".join(text for op, text in segments if op in ("same", side))


def test_identical_texts_are_one_same_segment():
    assert answer_diff("Paris is the capital.", "Paris is the capital.") == [("same", "Paris is the capital.")]


def test_a_changed_word_is_deleted_then_inserted_and_spaces_are_kept():
    segments = answer_diff("The cat sat on the mat.", "The dog sat on the  mat!")
    assert ("delete", "cat") in segments and ("insert", "dog") in segments
    assert segments.index(("delete", "cat")) + 1 == segments.index(("insert", "dog"))
    assert rebuilt(segments, "insert") == "The dog sat on the  mat!"
    assert rebuilt(segments, "delete") == "The cat sat on the mat."


def test_extra_and_missing_words_are_insertions_and_deletions():
    assert answer_diff("a b", "a b c") == [("same", "a b"), ("insert", " c")]
    assert answer_diff("a b c", "") == [("delete", "a b c")]


def test_japanese_is_compared_character_by_character():
    segments = answer_diff("東京は日本の首都です。", "京都は日本の古都です。")
    assert ("delete", "首") in segments and ("insert", "古") in segments
    assert ("same", "は日本の") in segments
    assert rebuilt(segments, "insert") == "京都は日本の古都です。"


def test_very_long_texts_are_not_diffed():
    long = "word " * MAX_TOKENS
    assert answer_diff(long, long + "more") == [("insert", long + "more")]
    assert answer_diff(long, long) == [("same", long)]


# --- the comparison rules ----------------------------------------------------------------


def scored(example_id: int | None, **tuned: Any) -> dict[str, Any]:
    return {"example_id": example_id, "metrics": {"tuned": tuned}}


def test_text_regressions_are_chrf_drops_of_at_least_the_threshold_largest_first():
    older = [scored(1, chrf=80.0), scored(2, chrf=80.0), scored(3, chrf=80.0), scored(4, chrf=50.0), scored(None)]
    newer = [scored(1, chrf=65.0), scored(2, chrf=75.0), scored(3, chrf=40.0), scored(4, chrf=70.0), scored(5)]
    result = compare.regressions(older, newer, kind="chat")
    assert [r.example_id for r in result.regressions] == [3, 1]
    assert result.regressions[0].chrf_drop == pytest.approx(40.0)
    assert result.improvements == 1 and result.shared == 4
    assert [r.example_id for r in compare.regressions(older, newer, kind="chat", threshold=3).regressions] == [3, 1, 2]


def test_classification_regressions_are_right_answers_turned_wrong():
    older = [scored(1, correct=True, chrf=90.0), scored(2, correct=False), scored(3, correct=True)]
    newer = [scored(1, correct=False, chrf=95.0), scored(2, correct=True), scored(3, correct=True)]
    result = compare.regressions(older, newer, kind="classification")
    assert [r.example_id for r in result.regressions] == [1] and result.improvements == 1


def test_structured_regressions_lose_exactness_or_validity():
    older = [scored(1, valid=True, exact=True), scored(2, valid=True, exact=False), scored(3, valid=False, exact=False)]
    newer = [
        scored(1, valid=True, exact=False),
        scored(2, valid=False, exact=False),
        scored(3, valid=True, exact=False),
    ]
    result = compare.regressions(older, newer, kind="structured")
    assert sorted(r.example_id for r in result.regressions) == [1, 2] and result.improvements == 1


def test_tuned_lost_names_the_systems_that_did_better():
    text = {"base": {"chrf": 50.0}, "few_shot": {"chrf": 30.0}, "tuned": {"chrf": 40.0}}
    assert compare.tuned_lost_to(text, "chat") == {"base"}
    assert compare.tuned_lost_to({s: {"chrf": 40.0} for s in ("base", "few_shot", "tuned")}, "chat") == set()
    labels = {"base": {"correct": True}, "few_shot": {"correct": True}, "tuned": {"correct": False}}
    assert compare.tuned_lost_to(labels, "classification") == {"base", "few_shot"}
    structured = {"base": {"valid": True, "exact": False}, "few_shot": {"valid": False}, "tuned": {"valid": False}}
    assert compare.tuned_lost_to(structured, "structured") == {"base"}
    assert compare.tuned_lost_to({}, "chat") == set()


# --- rows for the pages ------------------------------------------------------------------


def url(project: Project, name: str, *args: Any) -> str:
    return reverse(name, args=[project.slug, *args])


def evaluation_of(run: TrainingRun, status: str = Evaluation.Status.DONE, **fields) -> Evaluation:
    overall = {
        system: {"bleu": 10.0 + i, "chrf": 30.0 + i, "rouge_l": 20.0, "repetition": 0.1, "distinct_2": 0.8}
        for i, system in enumerate(("base", "few_shot", "tuned"))
    }
    overall["base"]["perplexity"] = 12.345
    values = {"status": status, "total": 4, "processed": 4, "overall": overall, "config": {"max_new_tokens": 64}}
    values.update(fields)
    return Evaluation.objects.create(run=run, **values)


def sample_of(
    evaluation: Evaluation, example=None, *, tuned: str = "tuned answer", chrf: dict | None = None, **fields
) -> EvalSample:
    chrf = chrf or {"base": 20.0, "few_shot": 20.0, "tuned": 60.0}
    values = {
        "prompt": "What is the refund policy?",
        "reference": "Refunds take five days.",
        "outputs": {"base": "base answer", "few_shot": "few-shot answer", "tuned": tuned},
        "metrics": {system: {"chrf": value, "bleu": 5.0, "length_chars": 12} for system, value in chrf.items()},
    }
    values.update(fields)
    return EvalSample.objects.create(evaluation=evaluation, example=example, **values)


@pytest.fixture
def run(project, users) -> TrainingRun:
    return make_run(project, users["admin"], result={"final_train_loss": 1.0, "final_val_loss": 1.25})


@pytest.fixture
def evaluation(run) -> Evaluation:
    evaluation = evaluation_of(run)
    sample_of(evaluation, label="billing", source="human", tuned="Refunds take five working days.")
    sample_of(evaluation, label="shipping", source="synthetic", chrf={"base": 70.0, "few_shot": 10.0, "tuned": 40.0})
    sample_of(evaluation, label="billing", source="synthetic", chrf={"base": 10.0, "few_shot": 70.0, "tuned": 40.0})
    sample_of(evaluation, label="", source="", tuned=HOSTILE)
    return evaluation


def prompts_shown(response) -> list[int]:
    return [row.sample.pk for row in response.context["rows"]]


# --- who may -----------------------------------------------------------------------------


def test_outsiders_get_404_and_annotators_may_view(client, project, users, evaluation):
    pages = [url(project, "evaluation_samples", evaluation.pk), url(project, "evaluation_compare")]
    client.force_login(users["outsider"])
    assert [client.get(page).status_code for page in pages] == [404, 404]
    client.force_login(users["annotator"])
    assert [client.get(page).status_code for page in pages] == [200, 200]


def test_an_evaluation_of_another_project_is_not_found(client, project, users, evaluation):
    other = Project.objects.create(name="Other", slug="other")
    foreign = evaluation_of(make_run(other, users["admin"]))
    client.force_login(users["admin"])
    assert client.get(url(project, "evaluation_samples", foreign.pk)).status_code == 404


# --- the samples page --------------------------------------------------------------------


def test_the_page_shows_each_sample_with_its_answers_diffs_and_the_overall_metrics(client, project, users, evaluation):
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_samples", evaluation.pk))
    content = response.content.decode()
    assert len(response.context["rows"]) == 4
    assert "What is the refund policy?" in content and "Refunds take five days." in content
    assert re.search(r"<ins>\s*working\s*</ins>", content)
    assert "<del>" in content
    assert "12.35" in content  # the base model's perplexity
    assert "+0.2500" in content  # validation minus training loss
    assert url(project, "run_detail", evaluation.run.pk) in content
    assert [name for name, _values in response.context["overall"]] == [
        "Base model",
        "Base model, few-shot",
        "Tuned model",
    ]


def test_model_output_is_escaped(client, project, users, evaluation):
    client.force_login(users["annotator"])
    content = client.get(url(project, "evaluation_samples", evaluation.pk)).content.decode()
    assert "<script>alert(1)" not in content
    assert "&lt;script&gt;" in content and "&lt;/script&gt;" in content


def test_samples_are_filtered_by_label_and_source(client, project, users, evaluation):
    client.force_login(users["annotator"])
    page = url(project, "evaluation_samples", evaluation.pk)
    billing = client.get(page, {"label": "billing"})
    assert {row.sample.label for row in billing.context["rows"]} == {"billing"} and billing.context["shown"] == 2
    both = client.get(page, {"label": "billing", "source": "synthetic"})
    assert [row.sample.source for row in both.context["rows"]] == ["synthetic"]
    assert 'value="billing" selected' in both.content.decode()


@pytest.mark.parametrize(("lost", "expected"), [("base", ["shipping"]), ("few_shot", ["billing"]), ("all", None)])
def test_samples_where_the_tuned_model_lost_are_filtered(client, project, users, evaluation, lost, expected):
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_samples", evaluation.pk), {"lost": lost})
    shown = [row.sample.label for row in response.context["rows"]]
    assert shown == (expected if expected is not None else ["billing", "shipping", "billing", ""])


def test_either_loss_shows_both_and_says_whom_tuned_lost_to(client, project, users, evaluation):
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_samples", evaluation.pk), {"lost": "either"})
    assert [row.lost_to for row in response.context["rows"]] == [["Base model"], ["Base model, few-shot"]]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"label": "refunds"}, "label"),
        ({"source": "web"}, "source"),
        ({"lost": "maybe"}, "lost"),
        ({"page": "x"}, "page"),
    ],
)
def test_unknown_filter_values_get_400_naming_the_parameter(client, project, users, evaluation, params, named):
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_samples", evaluation.pk), params)
    assert response.status_code == 400
    assert named in response.context["error"] and "rows" not in response.context


def test_samples_are_paged_twenty_at_a_time_keeping_the_filters(client, project, users, run):
    evaluation = evaluation_of(run)
    for i in range(25):
        sample_of(evaluation, label="billing", prompt=f"question {i}")
    client.force_login(users["annotator"])
    page = url(project, "evaluation_samples", evaluation.pk)
    first = client.get(page, {"label": "billing"})
    assert len(first.context["rows"]) == 20 and "label=billing&amp;page=2" in first.content.decode()
    second = client.get(page, {"label": "billing", "page": 2})
    assert [row.sample.prompt for row in second.context["rows"]] == [f"question {i}" for i in range(20, 25)]


def test_the_samples_page_makes_a_bounded_number_of_queries(client, project, users, run, django_assert_max_num_queries):
    evaluation = evaluation_of(run)
    for i in range(20):
        sample_of(evaluation, label="billing", prompt=f"question {i}")
    client.force_login(users["annotator"])
    with django_assert_max_num_queries(12):
        assert client.get(url(project, "evaluation_samples", evaluation.pk)).status_code == 200


def test_an_unfinished_evaluation_shows_its_progress_instead_of_samples(client, project, users, run):
    evaluation = evaluation_of(run, status=Evaluation.Status.RUNNING, total=10, processed=3)
    sample_of(evaluation)
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_samples", evaluation.pk), {"label": "anything"})
    assert response.status_code == 200 and "rows" not in response.context
    content = response.content.decode()
    assert "Running" in content and "3 of 10 samples" in content


def test_a_classification_project_shows_accuracy_and_each_parsed_label(client, project, users, run):
    Project.objects.filter(pk=project.pk).update(kind=Project.Kind.CLASSIFICATION)
    evaluation = evaluation_of(run)
    evaluation.overall["tuned"]["classification"] = {"accuracy": 0.75, "macro_f1": 0.5}
    evaluation.save()
    sample_of(
        evaluation,
        metrics={
            "base": {"label": "shipping", "correct": False},
            "few_shot": {"label": None, "correct": False},
            "tuned": {"label": "billing", "correct": True},
        },
    )
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_samples", evaluation.pk))
    content = response.content.decode()
    assert "Accuracy" in content and "75.0 %" in content
    tuned = response.context["rows"][0].answers[2]
    assert ("Label", "billing") in tuned.scores and ("Verdict", "right") in tuned.scores


# --- several runs compared ---------------------------------------------------------------


@pytest.fixture
def two_runs(project, users):
    """Run 1 and run 2 evaluated on the same three examples; run 2 does worse on the first."""
    examples = [add(project, users["admin"], f"question {i}", "test") for i in range(3)]
    older = evaluation_of(make_run(project, users["admin"], number=1))
    newer = evaluation_of(make_run(project, users["admin"], number=2))
    for example, (old, new) in zip(examples, [(80.0, 30.0), (50.0, 52.0), (20.0, 60.0)], strict=True):
        sample_of(older, example, tuned=f"old answer to {example.pk}", chrf={"tuned": old})
        sample_of(newer, example, tuned=f"{HOSTILE} new answer to {example.pk}", chrf={"tuned": new})
    return older, newer, examples


def test_the_compare_page_lists_every_evaluated_run_with_base_rows_once(client, project, users, two_runs):
    older, newer, _examples = two_runs
    make_run(project, users["admin"], number=3)  # no evaluation
    evaluation_of(make_run(project, users["admin"], number=4), status=Evaluation.Status.FAILED)
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_compare"))
    assert response.status_code == 200
    assert [row.evaluation.run.number for row in response.context["runs"]] == [2, 1]
    assert [name for name, _values in response.context["baselines"]] == ["Base model", "Base model, few-shot"]
    assert "regressions" not in response.context
    content = response.content.decode()
    assert url(project, "evaluation_samples", newer.pk) in content and "32.0" in content  # tuned chrF


def test_two_runs_compared_list_the_regressions_and_count_the_improvements(client, project, users, two_runs):
    older, newer, examples = two_runs
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_compare"), {"a": older.run.pk, "b": newer.run.pk})
    assert response.status_code == 200
    comparison = response.context["comparison"]
    assert [r.example_id for r in comparison.regressions] == [examples[0].pk]
    assert comparison.improvements == 1 and comparison.shared == 3
    content = response.content.decode()
    assert f"old answer to {examples[0].pk}" in content and "50.0 points lower" in content
    assert "<script>alert(1)" not in content and "&lt;script&gt;" in content


@pytest.mark.parametrize(
    ("params", "named"),
    [({"a": "1"}, "a and b"), ({"a": "x", "b": "1"}, "parameter a"), ({"b": "999999"}, "a and b")],
)
def test_bad_run_choices_get_400_naming_the_parameter(client, project, users, two_runs, params, named):
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_compare"), params)
    assert response.status_code == 400 and named in response.context["error"]


def test_runs_without_a_finished_evaluation_or_of_another_project_are_refused(client, project, users, two_runs):
    older, _newer, _examples = two_runs
    bare = make_run(project, users["admin"], number=3)
    other = Project.objects.create(name="Other", slug="other")
    foreign = evaluation_of(make_run(other, users["admin"]))
    client.force_login(users["admin"])
    page = url(project, "evaluation_compare")
    for b in (bare.pk, foreign.run.pk):
        response = client.get(page, {"a": older.run.pk, "b": b})
        assert response.status_code == 400 and "parameter b" in response.context["error"]
    same = client.get(page, {"a": older.run.pk, "b": older.run.pk})
    assert same.status_code == 400 and "same run" in same.context["error"]


def test_a_structured_project_shows_validity_and_exact_match(client, project, users, run):
    Project.objects.filter(pk=project.pk).update(kind=Project.Kind.STRUCTURED)
    evaluation = evaluation_of(run)
    evaluation.overall["tuned"]["structured"] = {"valid_rate": 0.5, "schema_valid_rate": None, "exact_match": 0.25}
    evaluation.save()
    sample_of(evaluation, metrics={"tuned": {"valid": True, "exact": False}, "base": {"valid": True, "exact": True}})
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_samples", evaluation.pk), {"lost": "base"})
    assert "Exact match" in response.content.decode() and "25.0 %" in response.content.decode()
    tuned = response.context["rows"][0].answers[2]
    assert ("Valid", "yes") in tuned.scores and ("Exact match", "no") in tuned.scores


def test_classification_regressions_say_which_labels_flipped(client, project, users):
    Project.objects.filter(pk=project.pk).update(kind=Project.Kind.CLASSIFICATION)
    example = add(project, users["admin"], "Where is my parcel?", "test")
    older = evaluation_of(make_run(project, users["admin"], number=1))
    newer = evaluation_of(make_run(project, users["admin"], number=2))
    sample_of(older, example, metrics={"tuned": {"label": "shipping", "correct": True}})
    sample_of(newer, example, metrics={"tuned": {"label": "billing", "correct": False}})
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_compare"), {"a": older.run.pk, "b": newer.run.pk})
    assert "right (shipping) → wrong (billing)" in response.content.decode()
