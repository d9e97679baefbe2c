"""One process per run (training/runs/process.py), on real child processes and the tiny model: a
run trains in a child and its evaluation in another; a cancel stops a child that cannot notice it
itself; two runs on one device go one after the other; a child killed by a signal leaves its run
failed, saying so; a killed consumer leaves no trainer behind."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from django.db import connection

from curation.core.services import example_create
from curation.models import Example
from tests.conftest import wait_for
from tests.training.conftest import chat
from training.engine.checkpoints import checkpoint_step
from training.models import Evaluation, TrainingPoint, TrainingRun
from training.runs.services import training_run_cancel, training_run_requeue
from training.runs.tasks import training_run_create, training_run_execute, training_run_task
from training.runs.views import result_rows

pytestmark = pytest.mark.django_db(transaction=True)  # the children read what the test committed


@pytest.fixture
def in_child(settings):
    settings.SHIKOMI_RUN_IN_CHILD = True
    settings.SHIKOMI_CPU_THREADS = 1  # tiny models gain nothing from threads on a busy machine


@pytest.fixture
def splits(project, users):
    for i in range(12):
        split = Example.Split.TEST if i >= 10 else Example.Split.VALIDATION if i >= 8 else Example.Split.TRAIN
        example_create(project=project, user=users["admin"], messages=chat(i), split=split)


def launch(project, users, tiny_model_dir, **config) -> TrainingRun:
    settings = {"base_model": str(tiny_model_dir), "batch_size": 2, "max_seq_length": 64, "max_steps": 2}
    return training_run_create(project=project, user=users["admin"], config=settings | config, enqueue=False)


def pid_of(row) -> int:
    """The pid of the process that claimed the row (its lease names it: host:pid)."""
    return int(row.worker.rsplit(":", 1)[1])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")  # an exited process nobody has reaped yet is not running
    return not (status.is_file() and "\nState:\tZ" in status.read_text())


def in_thread(function, *args) -> threading.Thread:
    """`function(*args)` in a thread of this process, as a consumer's worker thread runs a task."""

    def target() -> None:
        try:
            function(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def running_with_a_checkpoint(run_id: int) -> TrainingRun | None:
    run = TrainingRun.objects.get(pk=run_id)
    return run if run.status == TrainingRun.Status.RUNNING and run.checkpoint and run.step >= 2 else None


def test_a_run_trains_in_a_child_process_and_its_evaluation_in_another(
    in_child, project, users, splits, tiny_model_dir
):
    run = training_run_execute(run=launch(project, users, tiny_model_dir))

    assert run.status == TrainingRun.Status.DONE, (run.error, run.log)
    assert pid_of(run) != os.getpid() and not alive(pid_of(run))
    assert "training in a new process on cpu" in run.log and run.device.startswith("cpu")
    assert list(TrainingPoint.objects.filter(run=run).values_list("step", flat=True)) == [1, 2]
    evaluation = Evaluation.objects.get(run=run)  # queued by run_done, run inline here
    assert evaluation.status == Evaluation.Status.DONE, evaluation.error
    assert pid_of(evaluation) not in (os.getpid(), pid_of(run)) and evaluation.samples.count() == 2


def test_cancel_stops_the_child_in_mid_step_and_keeps_the_last_checkpoint(
    in_child, project, users, splits, tiny_model_dir
):
    run = launch(project, users, tiny_model_dir, max_steps=2_000, save_every=1, lr_scheduler="constant")
    thread = in_thread(lambda: training_run_execute(run=run))
    running = wait_for(lambda: running_with_a_checkpoint(run.pk), timeout=300, interval=0.05)
    child = pid_of(running)
    # Stopped, the trainer is as one in the middle of a long step: it cannot see the cancel itself.
    os.kill(child, signal.SIGSTOP)
    training_run_cancel(run=running)
    thread.join(timeout=120)

    assert not thread.is_alive() and not alive(child)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED, (run.error, run.log)
    checkpoint = Path(run.checkpoint)
    assert (checkpoint / "state.json").is_file()  # complete, and the one a resume reads
    assert checkpoint_step(checkpoint) <= run.step
    assert f"cancelled: process {child} stopped at step {run.step}; its last checkpoint is {checkpoint.name}" in run.log
    assert run.result["how"] == "cancelled"
    assert training_run_requeue(run=run).status == TrainingRun.Status.QUEUED  # resumable (not run here)


def test_two_runs_on_one_device_train_one_after_the_other(in_child, settings, project, users, splits, tiny_model_dir):
    settings.SHIKOMI_DEVICES = ["cpu"]
    runs = [launch(project, users, tiny_model_dir, max_steps=3) for _ in range(2)]
    # Two worker threads of one consumer take both tasks at once.
    threads = [in_thread(training_run_task.call_local, run.pk) for run in runs]
    for thread in threads:
        thread.join(timeout=600)

    first, second = sorted(TrainingRun.objects.filter(pk__in=[r.pk for r in runs]), key=lambda r: r.started_at)
    assert first.status == second.status == TrainingRun.Status.DONE, (first.log, second.log)
    assert first.finished_at <= second.started_at  # the second claimed its row after the first ended
    assert "waiting for a free device (cpu: each is in use by another run)" in second.log


def test_a_child_killed_by_a_signal_leaves_the_run_failed_saying_so(in_child, project, users, splits, tiny_model_dir):
    run = launch(project, users, tiny_model_dir, max_steps=2_000, save_every=1)
    thread = in_thread(lambda: training_run_execute(run=run))
    child = pid_of(wait_for(lambda: running_with_a_checkpoint(run.pk), timeout=300, interval=0.05))
    os.kill(child, signal.SIGKILL)
    thread.join(timeout=60)

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert f"The process working on it (pid {child}) ended before it finished: it was killed by signal SIGKILL" in (
        run.error
    )
    assert "Resume it to continue from its last checkpoint" in run.error
    assert training_run_requeue(run=run).status == TrainingRun.Status.QUEUED  # resumable (not run here)


@pytest.fixture
def children_in_consumers(monkeypatch):
    """Consumers started after this (the `huey_consumer` fixture) run work in child processes."""
    monkeypatch.setenv("SHIKOMI_RUN_IN_CHILD", "true")
    monkeypatch.setenv("SHIKOMI_CPU_THREADS", "1")


def test_a_killed_consumer_leaves_no_trainer_running(
    children_in_consumers, huey_consumer, project, users, splits, tiny_model_dir
):
    run = training_run_create(
        project=project,
        user=users["admin"],
        config={
            "base_model": str(tiny_model_dir),
            "batch_size": 2,
            "max_seq_length": 64,
            "max_steps": 2_000,
            "save_every": 1,
        },
    )
    child = pid_of(wait_for(lambda: running_with_a_checkpoint(run.pk), timeout=300, interval=0.1))
    assert child not in [process.pid for process in huey_consumer.processes]

    huey_consumer.kill()
    huey_consumer.wait(timeout=20)
    wait_for(lambda: not alive(child), timeout=30, interval=0.1)


def test_a_run_on_two_processes_trains_through_the_app_as_one_with_accumulation(
    in_child, settings, project, users, splits, tiny_model_dir
):
    """The app's own path: the run's child launches two processes (torchrun, gloo) when the
    device gives it two; the run records them, writes its points and checkpoint once, and its
    losses are those of one process accumulating the same two micro-batches per step."""
    config = {"max_steps": 2, "batch_size": 1, "lora_dropout": 0.0, "save_every": 2}
    settings.SHIKOMI_PROCESSES_PER_RUN = 2
    two = training_run_execute(run=launch(project, users, tiny_model_dir, gradient_accumulation=1, **config))
    assert two.status == TrainingRun.Status.DONE, (two.error, two.log)
    assert two.result["processes"] == 2 and two.result["devices"] == ["cpu", "cpu"]
    shown = dict(result_rows(two))  # the run page's result table
    assert shown["Processes"] == "2 (cpu, cpu)" and "resident set" in shown["Peak memory"]
    assert list(TrainingPoint.objects.filter(run=two).values_list("step", flat=True)) == [1, 2]

    settings.SHIKOMI_PROCESSES_PER_RUN = 1
    one = training_run_execute(run=launch(project, users, tiny_model_dir, gradient_accumulation=2, **config))
    assert one.status == TrainingRun.Status.DONE, (one.error, one.log)
    assert one.result["processes"] == 1

    def losses(run):
        return list(TrainingPoint.objects.filter(run=run).order_by("step").values_list("train_loss", flat=True))

    assert losses(two) == pytest.approx(losses(one), rel=1e-4)
