"""Run tracking (training/engine/tracking.py): TensorBoard events in the run's folder, MLflow when
MLFLOW_TRACKING_URI is set (a local file store here), a resumed run continuing both, and an
MLflow server that cannot be reached costing a warning line, never the run."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.training.test_dpo import Recorder as PairRecorder
from tests.training.test_dpo import config as dpo_config
from tests.training.test_dpo import pairs, train_losses
from tests.training.test_trainer import Recorder, examples, make_config
from training.engine.dpo import train_dpo
from training.engine.interface import Progress, TrainExample
from training.engine.tracking import RUN_ID_FILE, TENSORBOARD_DIR
from training.engine.trainer import train

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"),
]


@pytest.fixture
def no_mlflow(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> str:
    """A local MLflow file store as the tracking URI, in the default experiment."""
    uri = f"file://{tmp_path / 'mlruns'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses file stores without it
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    return uri


def events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder))
    accumulator.Reload()
    return accumulator


def scalars(folder: Path, tag: str) -> tuple[list[int], list[float]]:
    points = events(folder).Scalars(tag)
    return [point.step for point in points], [point.value for point in points]


def the_run(uri: str):
    """The one MLflow run in the store."""
    from mlflow.tracking import MlflowClient

    runs = MlflowClient(tracking_uri=uri).search_runs(["0"])
    assert len(runs) == 1
    return runs[0]


def history(uri: str, run_id: str, key: str) -> tuple[list[int], list[float]]:
    from mlflow.tracking import MlflowClient

    metrics = sorted(MlflowClient(tracking_uri=uri).get_metric_history(run_id, key), key=lambda m: m.step)
    return [metric.step for metric in metrics], [metric.value for metric in metrics]


def losses(logs: list[Progress], which: str = "train_loss") -> tuple[list[int], list[float]]:
    points = [p for p in logs if getattr(p, which) is not None]
    return [p.step for p in points], [getattr(p, which) for p in points]


def test_tensorboard_holds_the_loss_points_the_configuration_and_the_result(tiny_model_dir, tmp_path, no_mlflow):
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    recorder = Recorder()
    config = make_config(tiny_model_dir, max_steps=3, eval_every=1)
    output = tmp_path / "run" / "output"
    result = train(config, examples(4), examples(2, start=10), output, callbacks=recorder)
    assert result.status == "done"

    folder = tmp_path / "run" / TENSORBOARD_DIR
    for tag, field in (("train/loss", "train_loss"), ("val/loss", "val_loss")):
        steps, values = scalars(folder, tag)
        expected_steps, expected = losses(recorder.logs, field)
        assert steps == expected_steps == [1, 2, 3]
        assert values == pytest.approx(expected, rel=1e-6)
    steps, values = scalars(folder, "train/tokens_per_second")
    assert values == pytest.approx([p.tokens_per_second for p in recorder.logs], rel=1e-6)
    assert scalars(folder, "train/learning_rate")[1] == pytest.approx([1e-2] * 3)
    assert scalars(folder, "final/best_val_loss") == ([3], [pytest.approx(result.best_val_loss, rel=1e-6)])
    assert scalars(folder, "final/tokens") == ([3], [result.tokens])

    accumulator = events(folder)
    assert {"config/text_summary", "result/text_summary"} <= set(accumulator.Tags()["tensors"])
    # The configuration as hyperparameters, for TensorBoard's HParams view.
    start = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["learning_rate"].number_value == pytest.approx(1e-2)
    assert hparams["method"].string_value == "lora"
    assert hparams["base_model"].string_value == str(tiny_model_dir)
    assert not (folder / RUN_ID_FILE).exists()  # no MLflow without MLFLOW_TRACKING_URI


def test_steps_trained_again_after_an_interruption_replace_their_tensorboard_points(
    tiny_model_dir, tmp_path, no_mlflow
):
    config = make_config(tiny_model_dir, max_steps=4, save_every=2)
    output = tmp_path / "run" / "output"
    first = Recorder()
    train(config, examples(6), [], output, callbacks=first)
    # As if the worker had died after step 4 with step 2 its last recorded checkpoint.
    again = Recorder()
    train(config, examples(6), [], output, callbacks=again, resume_from=output / "checkpoints" / "step-2")

    assert [p.step for p in again.logs] == [3, 4]
    steps, values = scalars(tmp_path / "run" / TENSORBOARD_DIR, "train/loss")
    assert steps == [1, 2, 3, 4]  # not 1, 2, 3, 4, 3, 4
    assert values == pytest.approx([p.train_loss for p in first.logs[:2] + again.logs], rel=1e-6)


def test_mlflow_gets_the_params_the_metric_history_and_the_result(tiny_model_dir, tmp_path, mlflow_store):
    recorder = Recorder()
    config = make_config(tiny_model_dir, max_steps=3, eval_every=1)
    output = tmp_path / "run" / "output"
    result = train(
        config,
        examples(4),
        examples(2, start=10),
        output,
        callbacks=recorder,
        run_name="support-bot run 7",
        tags={"shikomi.project": "support-bot"},
    )

    run = the_run(mlflow_store)
    assert run.info.run_name == "support-bot run 7"
    assert run.info.status == "FINISHED"
    assert (tmp_path / "run" / TENSORBOARD_DIR / RUN_ID_FILE).read_text() == run.info.run_id
    params = run.data.params
    assert params["method"] == "lora"
    assert params["base_model"] == str(tiny_model_dir)
    assert float(params["learning_rate"]) == 1e-2
    assert params["max_steps"] == "3"
    assert params["target_modules"] == "q_proj,k_proj,v_proj,o_proj"
    tags = run.data.tags
    assert tags["shikomi.project"] == "support-bot"
    assert (tags["shikomi.status"], tags["shikomi.device"], tags["shikomi.method"]) == ("done", result.device, "lora")

    for key, field in (("train/loss", "train_loss"), ("val/loss", "val_loss")):
        steps, values = history(mlflow_store, run.info.run_id, key)
        expected_steps, expected = losses(recorder.logs, field)
        assert steps == expected_steps == [1, 2, 3]
        assert values == pytest.approx(expected)
    steps, values = history(mlflow_store, run.info.run_id, "train/tokens_per_second")
    assert values == pytest.approx([p.tokens_per_second for p in recorder.logs])
    metrics = run.data.metrics
    assert metrics["final/train_loss"] == pytest.approx(result.final_train_loss)
    assert metrics["final/best_val_loss"] == pytest.approx(result.best_val_loss)
    assert metrics["final/tokens"] == result.tokens
    assert metrics["final/seconds"] == pytest.approx(result.seconds)
    assert any(run.info.run_id in line and "MLflow" in line for line in recorder.messages)


def test_a_resumed_run_continues_its_mlflow_run(tiny_model_dir, tmp_path, mlflow_store):
    config = make_config(tiny_model_dir, max_steps=4)
    output = tmp_path / "run" / "output"
    first = Recorder(stop_after=1)
    cancelled = train(config, examples(6), [], output, callbacks=first, run_name="bot run 2")
    assert cancelled.status == "cancelled"
    assert the_run(mlflow_store).info.status == "KILLED"

    second = Recorder()
    done = train(
        config, examples(6), [], output, callbacks=second, resume_from=cancelled.checkpoint, run_name="bot run 2"
    )
    assert done.status == "done"

    run = the_run(mlflow_store)  # still one run
    assert run.info.status == "FINISHED"
    assert run.data.tags["shikomi.status"] == "done"
    steps, values = history(mlflow_store, run.info.run_id, "train/loss")
    assert steps == [1, 2, 3, 4]
    assert values == pytest.approx([p.train_loss for p in first.logs + second.logs])
    assert any("Continuing the MLflow run" in line for line in second.messages)
    # TensorBoard: the same folder, the steps carrying on.
    assert scalars(tmp_path / "run" / TENSORBOARD_DIR, "train/loss")[0] == [1, 2, 3, 4]


def test_a_resumed_run_whose_mlflow_run_is_unknown_starts_a_new_one(tiny_model_dir, tmp_path, mlflow_store):
    config = make_config(tiny_model_dir, max_steps=2)
    output = tmp_path / "run" / "output"
    cancelled = train(config, examples(4), [], output, callbacks=Recorder(stop_after=1))
    (tmp_path / "run" / TENSORBOARD_DIR / RUN_ID_FILE).write_text("0123456789abcdef0123456789abcdef")

    from mlflow.tracking import MlflowClient

    recorder = Recorder()
    train(config, examples(4), [], output, callbacks=recorder, resume_from=cancelled.checkpoint)
    runs = sorted(MlflowClient(tracking_uri=mlflow_store).search_runs(["0"]), key=lambda run: run.info.start_time)
    assert [run.info.status for run in runs] == ["KILLED", "FINISHED"]
    assert history(mlflow_store, runs[1].info.run_id, "train/loss")[0] == [2]
    assert any("is gone; starting a new one" in line for line in recorder.messages)


def test_a_run_that_fails_marks_its_mlflow_run_failed(tiny_model_dir, tmp_path, mlflow_store):
    no_answers = [TrainExample(messages=[{"role": "user", "content": "Hello?"}])]
    with pytest.raises(ValueError, match="No training example"):
        train(make_config(tiny_model_dir), no_answers, [], tmp_path / "run" / "output")
    assert the_run(mlflow_store).info.status == "FAILED"
    assert not (tmp_path / "run" / TENSORBOARD_DIR).joinpath("events").exists()


def test_a_run_stopped_from_outside_marks_its_mlflow_run_killed(tiny_model_dir, tmp_path, mlflow_store):
    class Terminated(Recorder):
        def on_log(self, progress: Progress) -> None:
            super().on_log(progress)
            raise SystemExit(143)  # what a SIGTERM handler raises in the run's process

    with pytest.raises(SystemExit):
        train(make_config(tiny_model_dir), examples(4), [], tmp_path / "run" / "output", callbacks=Terminated())
    assert the_run(mlflow_store).info.status == "KILLED"


def test_dpo_runs_are_tracked_and_resumed_too(tiny_model_dir, tmp_path, mlflow_store):
    output = tmp_path / "run" / "output"
    cancelling = PairRecorder(stop_after_checks=1)
    first = train_dpo(dpo_config(tiny_model_dir), pairs(), [], output, callbacks=cancelling)
    assert first.status == "cancelled"
    resuming = PairRecorder()
    second = train_dpo(
        dpo_config(tiny_model_dir), pairs(), [], output, callbacks=resuming, resume_from=first.checkpoint
    )
    assert second.status == "done"

    expected = train_losses(cancelling) + train_losses(resuming)
    steps, values = scalars(tmp_path / "run" / TENSORBOARD_DIR, "train/loss")
    assert steps == [p.step for p in expected] == [1, 2]
    assert values == pytest.approx([p.train_loss for p in expected], rel=1e-6)

    run = the_run(mlflow_store)
    assert run.info.run_name == "run"  # by default, the run folder's name
    assert run.info.status == "FINISHED"
    assert (run.data.params["method"], run.data.params["dpo_beta"]) == ("dpo", "0.1")
    steps, values = history(mlflow_store, run.info.run_id, "train/loss")
    assert steps == [1, 2]
    assert values == pytest.approx([p.train_loss for p in expected])
    assert run.data.metrics["final/tokens"] == second.tokens


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_mlflow_server_that_cannot_be_reached_costs_a_warning_not_the_run(tiny_model_dir, tmp_path, monkeypatch):
    port = closed_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    recorder = Recorder()
    result = train(make_config(tiny_model_dir), examples(4), [], tmp_path / "run" / "output", callbacks=recorder)

    assert result.status == "done" and result.steps == 2
    warnings = [line for line in recorder.messages if "MLflow" in line]
    assert len(warnings) == 1
    assert "MLflow tracking is off for the rest of this run (training goes on)" in warnings[0]
    folder = tmp_path / "run" / TENSORBOARD_DIR
    assert scalars(folder, "train/loss")[0] == [1, 2]  # TensorBoard still has the run
    assert not (folder / RUN_ID_FILE).exists()


def test_each_checkpoint_finds_the_events_before_it_on_disk(tiny_model_dir, tmp_path, no_mlflow):
    # The app publishes the run's folder at every checkpoint (object storage): the events go with it.
    folder = tmp_path / "run" / TENSORBOARD_DIR
    seen: dict[int, list[int]] = {}

    class Publisher(Recorder):
        def on_checkpoint(self, path: Path, step: int) -> None:
            super().on_checkpoint(path, step)
            seen[step] = scalars(folder, "train/loss")[0]

    config = make_config(tiny_model_dir, max_steps=2, save_every=1)
    train(config, examples(4), [], tmp_path / "run" / "output", callbacks=Publisher())
    assert seen == {1: [1], 2: [1, 2]}
