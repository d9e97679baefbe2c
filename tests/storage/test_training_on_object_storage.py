"""Training runs whose artifacts are in object storage (a real S3-compatible server): a run
trained on one machine resumes on another from the checkpoint in the bucket, with the same loss
points as a run never interrupted; its model is read back from the bucket; a checkpoint that is
gone is a clear error, never a silent start from step 0."""

from __future__ import annotations

import shutil

import pytest

from curation.connections.backends import backend_from_spec
from curation.core.services import example_create
from curation.models import Example, PreferencePair
from tests.training.conftest import chat
from training.models import TrainingPoint, TrainingRun
from training.runs import services
from training.runs.artifacts import latest_checkpoint, output_folder
from training.runs.services import TrainingRefused, training_run_prepare, training_run_requeue, training_run_train

CONFIG = {"max_steps": 6, "batch_size": 2, "save_every": 1, "max_seq_length": 64, "lr_scheduler": "constant"}


@pytest.fixture
def splits(project, users):
    for i in range(10):
        split = Example.Split.VALIDATION if i >= 8 else Example.Split.TRAIN
        example_create(project=project, user=users["admin"], messages=chat(i), split=split)


@pytest.fixture
def launch(project, users, splits, tiny_model_dir, one_thread):
    def launch() -> TrainingRun:
        return training_run_prepare(
            project=project, user=users["admin"], config=CONFIG | {"base_model": str(tiny_model_dir)}
        )

    return launch


@pytest.fixture
def cancel_at(monkeypatch):
    """cancel_at.step = N: the run being trained is cancelled once it has logged step N."""
    real_on_log = services.DatabaseCallbacks.on_log

    class Cancel:
        step: int | None = None

    def on_log(self, progress):
        real_on_log(self, progress)
        if Cancel.step is not None and progress.step >= Cancel.step:
            TrainingRun.objects.filter(pk=self.run_id).update(cancel_requested=True)

    monkeypatch.setattr(services.DatabaseCallbacks, "on_log", on_log)
    return Cancel


def points(run: TrainingRun) -> list[tuple]:
    return list(TrainingPoint.objects.filter(run=run).order_by("step").values_list("step", "train_loss", "val_loss"))


def assert_same_points(actual: list[tuple], expected: list[tuple]) -> None:
    assert [p[0] for p in actual] == [p[0] for p in expected]
    assert [p[1] for p in actual] == pytest.approx([p[1] for p in expected], rel=1e-5)
    assert [p[2] is None for p in actual] == [p[2] is None for p in expected]
    assert [p[2] for p in actual if p[2] is not None] == pytest.approx(
        [p[2] for p in expected if p[2] is not None], rel=1e-5
    )


def another_machine(settings, tmp_path, name: str) -> None:
    """This process now works as a machine that has none of the run's files."""
    shutil.rmtree(settings.ARTIFACT_DIR, ignore_errors=True)
    settings.ARTIFACT_DIR = tmp_path / name


def test_a_run_resumes_on_another_machine_from_its_checkpoint_in_the_bucket(
    s3_artifacts, launch, cancel_at, project, settings, tmp_path
):
    whole = training_run_train(run=launch())
    assert whole.status == TrainingRun.Status.DONE, (whole.error, whole.log)

    cancel_at.step = 3
    run = training_run_train(run=launch())
    assert run.status == TrainingRun.Status.CANCELLED and run.step == 3, (run.error, run.log)
    assert run.checkpoint == f"runs/{run.pk}/output/checkpoints/step-3"  # a name in the bucket, not a path
    stored = s3_artifacts.names(f"runs/{run.pk}/")
    assert f"runs/{run.pk}/data.json" in stored and f"{run.checkpoint}/state.json" in stored

    another_machine(settings, tmp_path, "worker-2")
    cancel_at.step = None
    run = training_run_requeue(run=run)
    run = training_run_train(run=run)
    assert run.status == TrainingRun.Status.DONE and run.step == 6, (run.error, run.log)
    assert "resuming from step-3" in run.log
    assert_same_points(points(run), points(whole))
    # Every file of the run's folder is stored (its logs too), and the logs of the first attempt
    # came to this machine, where the trackers continue them.
    here = {p.relative_to(settings.ARTIFACT_DIR).as_posix() for p in services.run_dir(run).rglob("*") if p.is_file()}
    stored = set(s3_artifacts.names(f"runs/{run.pk}/"))
    assert here <= stored
    assert {name for name in stored if "/output/" not in name} <= here

    assert (run.output_dir, run.checkpoint) == (f"runs/{run.pk}/output", f"runs/{run.pk}/output/checkpoints/step-6")
    stored = s3_artifacts.names(f"runs/{run.pk}/output/")
    assert f"runs/{run.pk}/output/adapter_model.safetensors" in stored
    # The trainer keeps its last two checkpoints; the bucket keeps the same two.
    checkpoints = {name.split("/")[4] for name in stored if "/checkpoints/" in name}
    assert checkpoints == {"step-5", "step-6"}

    # A third machine generates with the run's model, read from the bucket (adapter only).
    another_machine(settings, tmp_path, "worker-3")
    folder = output_folder(run)
    assert (folder / "adapter_model.safetensors").is_file() and not (folder / "checkpoints").exists()
    backend = backend_from_spec({"kind": "tuned", "run": run.pk}, project)
    (reply,) = backend.generate([chat(2)[:1]], max_new_tokens=4)
    assert isinstance(reply, str)


def test_a_checkpoint_stored_without_its_last_file_is_not_resumed_from(
    s3_artifacts, launch, cancel_at, settings, tmp_path
):
    cancel_at.step = 3
    run = training_run_train(run=launch())
    s3_artifacts.delete(f"runs/{run.pk}/output/checkpoints/step-3/state.json")  # its upload was cut short
    assert latest_checkpoint(run) == f"runs/{run.pk}/output/checkpoints/step-2"


def test_a_run_whose_checkpoints_are_gone_cannot_be_resumed(s3_artifacts, launch, cancel_at):
    cancel_at.step = 2
    run = training_run_train(run=launch())
    s3_artifacts.delete(f"runs/{run.pk}/output/checkpoints/")
    shutil.rmtree(services.run_dir(run))
    with pytest.raises(TrainingRefused) as refused:
        training_run_requeue(run=run)
    assert refused.value.field == "checkpoint" and refused.value.status == 409


@pytest.mark.parametrize("where", ["bucket", "local folder"])
def test_a_checkpoint_gone_when_the_run_resumes_is_a_clear_error_not_a_start_from_step_0(
    where, request, launch, cancel_at, settings, tmp_path
):
    if where == "bucket":
        bucket = request.getfixturevalue("s3_artifacts")
    else:
        settings.ARTIFACT_DIR = tmp_path / "artifacts"
    cancel_at.step = 2
    run = training_run_train(run=launch())
    run = training_run_requeue(run=run)
    # Gone before a worker takes the queued run (a bucket emptied, a folder deleted).
    if where == "bucket":
        bucket.delete(f"runs/{run.pk}/output/checkpoints/")
    shutil.rmtree(services.run_dir(run) / "output" / "checkpoints")

    run = training_run_train(run=run)
    assert run.status == TrainingRun.Status.FAILED
    assert "checkpoint" in run.error and "step-2" in run.error and "is missing" in run.error
    assert run.step == 2 and [p[0] for p in points(run)] == [1, 2]  # nothing trained again


def test_a_dpo_run_resumes_on_another_machine_from_its_checkpoint_in_the_bucket(
    s3_artifacts, project, users, tiny_model_dir, one_thread, cancel_at, settings, tmp_path
):
    for i in range(6):
        PreferencePair.objects.create(
            project=project,
            prompt=[{"role": "user", "content": f"What is {i} plus {i}?"}],
            chosen={"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
            rejected={"role": "assistant", "content": "I would rather not say."},
            origin="edit",
        )
    config = CONFIG | {"base_model": str(tiny_model_dir), "max_steps": 3, "max_seq_length": 128}
    cancel_at.step = 1
    run = training_run_train(
        run=training_run_prepare(project=project, user=users["admin"], method="dpo", config=config)
    )
    assert run.status == TrainingRun.Status.CANCELLED and run.step < 3, (run.error, run.log)
    reached = run.step  # transformers looks at the cancel after the step that follows
    assert run.checkpoint == f"runs/{run.pk}/output/checkpoints/checkpoint-{reached}"
    assert f"{run.checkpoint}/trainer_state.json" in s3_artifacts.names(f"runs/{run.pk}/")

    another_machine(settings, tmp_path, "worker-2")
    cancel_at.step = None
    run = training_run_train(run=training_run_requeue(run=run))
    assert run.status == TrainingRun.Status.DONE and run.step == 3, (run.error, run.log)
    assert f"resuming from checkpoint-{reached}" in run.log and [p[0] for p in points(run)] == [1, 2, 3]
    assert f"runs/{run.pk}/output/adapter_model.safetensors" in s3_artifacts.names(f"runs/{run.pk}/output/")
