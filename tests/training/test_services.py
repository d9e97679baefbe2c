"""Launching, running (with a stand-in trainer), cancelling, resuming and interrupting runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation.core.services import example_create, example_update
from curation.models import Example, PreferencePair
from tests.conftest import reap_after_lease
from training.engine.config import ConfigInvalid
from training.engine.interface import Progress, TrainResult
from training.models import TrainingPoint, TrainingRun
from training.runs.services import (
    TrainingRefused,
    run_dir,
    training_run_cancel,
)
from training.runs.tasks import training_run_create, training_run_execute, training_run_resume


@pytest.fixture
def data(project, users):
    made = []
    for i, (split, label) in enumerate(
        [
            ("train", "billing"),
            ("train", "billing"),
            ("train", "billing"),
            ("train", "shipping"),
            ("validation", "billing"),
        ]
    ):
        made.append(
            example_create(
                project=project,
                user=users["admin"],
                messages=[
                    {"role": "user", "content": f"Question {i}?"},
                    {"role": "assistant", "content": f"Answer {i}."},
                ],
                label=label,
                split=split,
            )
        )
    return made


class FakeTrainer:
    """Stands in for training.engine.trainer.train: logs steps, checkpoints, honours should_stop."""

    def __init__(self, steps: int = 3, fail: Exception | None = None) -> None:
        self.steps, self.fail, self.calls = steps, fail, []

    def __call__(self, config, train, validation, output_dir, *, callbacks, resume_from=None, **tracking):
        self.calls.append({"config": config, "train": train, "validation": validation, "resume_from": resume_from})
        if self.fail:
            raise self.fail
        start = int(resume_from.name.split("-")[1]) if resume_from else 0
        checkpoint = None
        for step in range(start + 1, self.steps + 1):
            if callbacks.should_stop():
                return self._result("cancelled", step - 1, output_dir, checkpoint)
            callbacks.on_log(
                Progress(
                    step,
                    self.steps,
                    step / self.steps,
                    2.0 / step,
                    1e-4,
                    50.0,
                    10.0,
                    val_loss=1.5 if step == 2 else None,
                )
            )
            checkpoint = Path(output_dir) / "checkpoints" / f"step-{step}"
            checkpoint.mkdir(parents=True, exist_ok=True)
            callbacks.on_checkpoint(checkpoint, step)
        (Path(output_dir) / "adapter_model.safetensors").write_bytes(b"x")
        return self._result("done", self.steps, output_dir, checkpoint)

    def _result(self, status, steps, output_dir, checkpoint):
        return TrainResult(
            status, steps, self.steps, 0.5, 1.5, 1.4, "cpu float32", Path(output_dir), checkpoint, 100, 1.0
        )


@pytest.fixture
def fake(monkeypatch):
    trainer = FakeTrainer()
    monkeypatch.setattr("training.engine.trainer.train", trainer)
    return trainer


def test_a_launch_validates_freezes_the_data_and_queues_one_task(
    project, users, data, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        run = training_run_create(
            project=project, user=users["admin"], preset="quick_cpu_demo", config={"lora_rank": 4}
        )
    assert len(callbacks) == 1
    assert (run.method, run.config["lora_rank"], run.config["max_steps"]) == ("lora", 4, 20)
    assert run.config["balance"] == project.balance_strategy and run.config["base_model"] == ""
    frozen = json.loads((run_dir(run) / "data.json").read_text())
    assert [r["id"] for r in frozen["train"]] == [e.pk for e in data[:4]]
    assert frozen["validation"][0]["messages"] == data[4].messages
    # changing an example afterwards does not change what the run trains on
    example_update(
        example=data[0],
        user=users["admin"],
        version=1,
        messages=[{"role": "user", "content": "New?"}, {"role": "assistant", "content": "New."}],
    )
    assert json.loads((run_dir(run) / "data.json").read_text())["train"][0]["messages"][0]["content"] == "Question 0?"


def test_every_bad_setting_is_reported_by_field(project, users, data):
    with pytest.raises(ConfigInvalid) as caught:
        training_run_create(
            project=project,
            user=users["admin"],
            config={"learning_rate": 1, "lora_rank": 0, "batch_size": "x", "method": "qlora", "colour": "red"},
        )
    errors = caught.value.errors
    assert set(errors) == {"learning_rate", "lora_rank", "batch_size", "method", "colour"}
    assert (
        "CUDA" in errors["method"] and "between" in errors["learning_rate"] and "whole number" in errors["batch_size"]
    )
    assert not TrainingRun.objects.exists()


TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
CALL = {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Kyoto"}'}}


def test_dpo_needs_preference_pairs_and_freezes_them(project, users, data, django_capture_on_commit_callbacks):
    with pytest.raises(TrainingRefused) as caught:
        training_run_create(project=project, user=users["admin"], method="dpo")
    assert caught.value.field == "method"
    chosen = {"role": "assistant", "content": "", "reasoning": "Look it up.", "tool_calls": [CALL]}
    PreferencePair.objects.create(
        project=project,
        prompt=[{"role": "user", "content": "Weather in Kyoto?"}],
        chosen=chosen,
        rejected={"role": "assistant", "content": "No idea."},
        tools=TOOLS,
        origin="edit",
    )
    run = training_run_create(project=project, user=users["admin"], method="dpo")
    assert run.preference_count == 1
    frozen = json.loads((run_dir(run) / "data.json").read_text())["preference_pairs"][0]
    assert (frozen["chosen"], frozen["tools"]) == (chosen, TOOLS)


def test_a_dpo_run_hands_the_trainer_whole_answers_and_the_tools(
    project, users, data, monkeypatch, django_capture_on_commit_callbacks
):
    trainer = FakeTrainer()
    monkeypatch.setattr("training.engine.dpo.train_dpo", trainer)
    chosen = {"role": "assistant", "content": "", "tool_calls": [CALL]}
    PreferencePair.objects.create(
        project=project,
        prompt=[{"role": "user", "content": "Weather in Kyoto?"}],
        chosen=chosen,
        rejected={"role": "assistant", "content": "No idea."},
        tools=TOOLS,
        origin="edit",
    )
    run = training_run_create(project=project, user=users["admin"], method="dpo")
    # A run frozen before answers were messages holds texts: they are read as assistant messages.
    path = run_dir(run) / "data.json"
    frozen = json.loads(path.read_text())
    frozen["preference_pairs"].append(
        {"pk": 99, "prompt": [{"role": "user", "content": "Hi"}], "chosen": "Hello!", "rejected": "Go away."}
    )
    path.write_text(json.dumps(frozen))
    run = training_run_execute(run=run)
    assert run.status == TrainingRun.Status.DONE
    (pair, old) = trainer.calls[0]["train"]
    assert (pair.chosen, pair.rejected, pair.tools) == (chosen, {"role": "assistant", "content": "No idea."}, TOOLS)
    assert (old.chosen, old.rejected, old.tools) == (
        {"role": "assistant", "content": "Hello!"},
        {"role": "assistant", "content": "Go away."},
        None,
    )


def test_a_run_reports_progress_points_and_its_result(project, users, data, fake, django_capture_on_commit_callbacks):
    project.balance_strategy = "class_weights"
    project.save()
    run = training_run_create(project=project, user=users["admin"], preset="quick_cpu_demo")
    run = training_run_execute(run=run)
    assert run.status == TrainingRun.Status.DONE and (run.step, run.total_steps) == (3, 3)
    assert run.device == "cpu float32" and run.result["final_val_loss"] == 1.5
    assert run.output_dir.endswith("output") and run.checkpoint.endswith("step-3")
    points = list(TrainingPoint.objects.filter(run=run).values_list("step", "train_loss", "val_loss"))
    assert points == [(1, 2.0, None), (2, 1.0, 1.5), (3, 2.0 / 3, None)]
    assert run.progress["val_loss"] == 1.5  # the last evaluation stays on show
    weights = {e.label: e.weight for e in fake.calls[0]["train"]}
    assert weights == {"billing": pytest.approx(2 / 3), "shipping": pytest.approx(2.0)}
    assert "finished: done" in run.log


def test_cancel_stops_within_a_step_and_resume_continues_from_the_checkpoint(
    project, users, data, fake, django_capture_on_commit_callbacks
):
    run = training_run_create(project=project, user=users["admin"])
    real_on_log = None

    def cancel_after_first(self, progress):
        real_on_log(self, progress)
        training_run_cancel(run=run)

    from training.runs import services

    real_on_log = services.DatabaseCallbacks.on_log
    services.DatabaseCallbacks.on_log = cancel_after_first
    try:
        run = training_run_execute(run=run)
    finally:
        services.DatabaseCallbacks.on_log = real_on_log
    assert run.status == TrainingRun.Status.CANCELLED and run.step == 1 and run.checkpoint.endswith("step-1")
    with django_capture_on_commit_callbacks() as callbacks:
        run = training_run_resume(run=run)
    assert run.status == TrainingRun.Status.QUEUED and run.resumed == 1 and len(callbacks) == 1
    run = training_run_execute(run=run)
    assert run.status == TrainingRun.Status.DONE and fake.calls[-1]["resume_from"].name == "step-1"
    assert list(TrainingPoint.objects.filter(run=run).values_list("step", flat=True)) == [1, 2, 3]


def test_a_queued_run_cancelled_never_starts(project, users, data, fake, django_capture_on_commit_callbacks):
    run = training_run_create(project=project, user=users["admin"])
    training_run_cancel(run=run)
    run = training_run_execute(run=run)
    assert run.status == TrainingRun.Status.CANCELLED and not fake.calls


def test_a_failure_is_recorded_and_without_a_checkpoint_it_cannot_resume(
    project, users, data, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(
        "training.engine.trainer.train", FakeTrainer(fail=ValueError("target modules nope_proj do not exist"))
    )
    run = training_run_execute(run=training_run_create(project=project, user=users["admin"]))
    assert run.status == TrainingRun.Status.FAILED and "nope_proj" in run.error and run.finished_at
    with pytest.raises(TrainingRefused) as caught:
        training_run_resume(run=run)
    assert caught.value.field == "checkpoint"


def test_a_run_left_running_by_a_dead_worker_is_marked_interrupted(
    project, users, data, django_capture_on_commit_callbacks
):
    run = training_run_create(project=project, user=users["admin"])
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING)
    assert reap_after_lease() == 1
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.INTERRUPTED and "Resume" in run.error


def test_rejected_and_draft_examples_are_never_trained_on(project, users, data, django_capture_on_commit_callbacks):
    example_update(example=data[1], user=users["admin"], version=1, status=Example.Status.REJECTED)
    run = training_run_create(project=project, user=users["admin"])
    assert run.train_count == 3
