"""Starting and storing evaluations of finished runs (the evaluator itself is stood in for)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from curation.core.services import example_create
from curation.models import Example
from tests.conftest import reap_after_lease
from tests.training.conftest import chat
from training.evaluation.services import evaluation_execute
from training.evaluation.tasks import evaluation_start
from training.models import EvalSample, Evaluation, TrainingRun
from training.runs.services import TrainingRefused, run_dir
from training.runs.tasks import training_run_create


@pytest.fixture
def finished_run(project, users, tmp_path, django_capture_on_commit_callbacks):
    for i in range(6):
        split = Example.Split.TEST if i >= 4 else Example.Split.TRAIN
        example_create(project=project, user=users["admin"], messages=chat(i), split=split, label="billing")
    run = training_run_create(project=project, user=users["admin"], enqueue=False)
    output = tmp_path / "output"
    output.mkdir()
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.DONE, output_dir=str(output))
    run.refresh_from_db()
    return run


def test_an_evaluation_freezes_the_test_items_and_few_shot_examples(finished_run, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        evaluation = evaluation_start(run=finished_run, few_shot=2)
    assert len(callbacks) == 1 and evaluation.total == 2 and evaluation.config["few_shot"] == 2
    assert (run_dir(finished_run) / f"evaluation-{evaluation.pk}.json").is_file()


def test_a_test_example_the_run_trained_on_is_refused_with_its_id(finished_run, project):
    leaked = Example.objects.filter(project=project, split=Example.Split.TRAIN).first()
    Example.objects.filter(pk=leaked.pk).update(split=Example.Split.TEST)
    with pytest.raises(TrainingRefused) as caught:
        evaluation_start(run=finished_run)
    assert caught.value.field == "leak" and str(leaked.pk) in caught.value.message
    assert not Evaluation.objects.exists()


def test_an_unfinished_run_or_an_empty_test_split_is_refused(finished_run, project):
    Example.objects.filter(project=project, split=Example.Split.TEST).update(split=Example.Split.VALIDATION)
    with pytest.raises(TrainingRefused) as caught:
        evaluation_start(run=finished_run)
    assert caught.value.field == "split"
    TrainingRun.objects.filter(pk=finished_run.pk).update(status=TrainingRun.Status.FAILED)
    finished_run.refresh_from_db()
    with pytest.raises(TrainingRefused) as caught:
        evaluation_start(run=finished_run)
    assert caught.value.field == "run"


def test_the_report_is_stored_as_samples_and_metrics(finished_run, monkeypatch, django_capture_on_commit_callbacks):
    evaluation = evaluation_start(run=finished_run)
    seen = {}

    def fake_evaluate_run(*, items, shots, progress, **options):
        seen.update(items=items, shots=shots, options=options)
        progress(len(items), len(items))
        samples = [
            {
                "id": item.id,
                "prompt": "Q",
                "reference": "R",
                "label": item.label,
                "source": item.source,
                "outputs": {"base": "b", "few_shot": "f", "tuned": "<script>t</script>"},
                "metrics": {"tuned": {"bleu": float("nan")}},
            }
            for item in items
        ]
        return SimpleNamespace(
            samples=samples, overall={"tuned": {"bleu": 12.5}}, by_label={}, by_source={}, seconds=1.0, stopped=False
        )

    monkeypatch.setattr("training.evaluation.evaluator.evaluate_run", fake_evaluate_run)
    evaluation = evaluation_execute(evaluation=evaluation)
    assert evaluation.status == Evaluation.Status.DONE, evaluation.error
    assert evaluation.overall == {"tuned": {"bleu": 12.5}} and evaluation.processed == 2
    assert len(seen["items"]) == 2 and len(seen["shots"]) == 3 and seen["options"]["kind"] == "chat"
    sample = EvalSample.objects.filter(evaluation=evaluation).first()
    assert sample.outputs["tuned"] == "<script>t</script>" and sample.metrics["tuned"]["bleu"] is None


def test_a_failed_evaluation_stores_nothing_and_says_why(finished_run, monkeypatch, django_capture_on_commit_callbacks):
    evaluation = evaluation_start(run=finished_run)

    def broken(**options):
        raise RuntimeError("model folder is empty")

    monkeypatch.setattr("training.evaluation.evaluator.evaluate_run", broken)
    evaluation = evaluation_execute(evaluation=evaluation)
    assert evaluation.status == Evaluation.Status.FAILED and "model folder is empty" in evaluation.error
    assert not EvalSample.objects.exists()


def test_an_evaluation_left_running_is_marked_interrupted(finished_run, django_capture_on_commit_callbacks):
    evaluation = evaluation_start(run=finished_run)
    Evaluation.objects.filter(pk=evaluation.pk).update(status=Evaluation.Status.RUNNING)
    assert reap_after_lease() == 1


def test_a_finished_tiny_run_is_evaluated_by_the_real_evaluator(
    project, users, tiny_model_dir, one_thread, django_capture_on_commit_callbacks
):
    for i in range(8):
        split = Example.Split.TEST if i >= 6 else Example.Split.TRAIN
        example_create(project=project, user=users["admin"], messages=chat(i), split=split, label="billing")
    from training.runs.tasks import training_run_execute

    run = training_run_create(
        project=project,
        user=users["admin"],
        config={"base_model": str(tiny_model_dir), "max_steps": 1, "batch_size": 2, "max_seq_length": 64},
        enqueue=False,
    )
    with django_capture_on_commit_callbacks() as callbacks:
        run = training_run_execute(run=run)
    assert run.status == TrainingRun.Status.DONE and "evaluation" in run.log and len(callbacks) == 1
    evaluation = Evaluation.objects.get(run=run)
    Evaluation.objects.filter(pk=evaluation.pk).update(config={**evaluation.config, "max_new_tokens": 4})
    evaluation = evaluation_execute(evaluation=Evaluation.objects.get(pk=evaluation.pk))
    assert evaluation.status == Evaluation.Status.DONE, evaluation.error
    assert set(evaluation.overall) == {"base", "few_shot", "tuned"}
    samples = list(EvalSample.objects.filter(evaluation=evaluation))
    assert len(samples) == 2 and all(set(s.outputs) == {"base", "few_shot", "tuned"} for s in samples)
    assert samples[0].reference == chat(6)[1]["content"] and samples[0].example_id is not None
