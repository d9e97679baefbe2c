"""Beyond one machine (issue 20): two consumers on the heavy queue and one on the light queue
share the work, each as on a machine of its own (its own data folder and device locks; the
database, the queue and the artifacts in an S3-compatible bucket shared). A training run is
claimed by exactly one heavy consumer; killing that consumer mid-run is noticed by its missed
heartbeats, the run is queued again and finishes on the other heavy consumer from its last
checkpoint in the bucket, with the same loss points as an uninterrupted run; an import submitted
meanwhile is done by the light consumer while the training runs.

Real processes (`manage.py djangohuey --queue …`, each run in a child process as in production),
on the test database (SQLite here, PostgreSQL and Redis in CI's second pass), a real moto S3
server, and a short lease so the test waits seconds, not a minute."""

from __future__ import annotations

import io
import signal

import psutil
import pytest

from curation.core.services import example_create
from curation.io.tasks import import_start
from curation.models import Example, ImportJob
from tests.conftest import QUEUES, Consumers, wait_for
from tests.training.conftest import chat
from training.models import TrainingPoint, TrainingRun
from training.runs.tasks import training_run_create, training_run_execute

LEASE = {"SHIKOMI_HEARTBEAT_SECONDS": "1", "SHIKOMI_LEASE_SECONDS": "4", "SHIKOMI_RUN_IN_CHILD": "true"}


@pytest.fixture
def splits(project, users):
    for i in range(10):
        split = Example.Split.VALIDATION if i >= 8 else Example.Split.TRAIN
        example_create(project=project, user=users["admin"], messages=chat(i), split=split)


def config(tiny_model_dir) -> dict:
    return {
        "base_model": str(tiny_model_dir),
        "max_steps": 240,
        "batch_size": 2,
        "save_every": 5,
        "eval_every": 1000,
        "max_seq_length": 64,
        "lr_scheduler": "constant",
    }


def losses(run: TrainingRun) -> list[tuple[int, float]]:
    return list(TrainingPoint.objects.filter(run=run).order_by("step").values_list("step", "train_loss"))


def holder(run: TrainingRun, consumers: list[psutil.Process]) -> psutil.Process:
    """The consumer process whose worker (or whose child) holds the run."""
    pid = int(run.worker.rsplit(":", 1)[1])
    for consumer in consumers:
        if pid == consumer.pid or pid in {child.pid for child in consumer.children(recursive=True)}:
            return consumer
    raise AssertionError(f"{run.worker} is none of the consumers")


@pytest.fixture
def queues_live(transactional_db):
    from django_huey import get_queue

    for name in QUEUES:
        get_queue(name).immediate = False
        get_queue(name).flush()
    yield
    for name in QUEUES:
        get_queue(name).flush()
        get_queue(name).immediate = True


def machine(name: str, tmp_path, bucket) -> dict[str, str]:
    """A consumer's environment as on a machine of its own, sharing the queue and the bucket."""
    from django.conf import settings

    env = LEASE | bucket.env() | {"SHIKOMI_DATA_DIR": str(tmp_path / name)}
    if not settings.REDIS_URL:
        env["HUEY_FILE"] = settings.DJANGO_HUEY["queues"]["light"]["filename"]
    return env


def test_two_heavy_consumers_and_a_light_one_share_work_and_a_killed_one_is_replaced(
    queues_live,
    project,
    users,
    splits,
    tiny_model_dir,
    s3_artifacts,
    tmp_path,
):
    # The uninterrupted run, here in the test process: the loss points to match.
    reference = training_run_execute(
        run=training_run_create(project=project, user=users["admin"], enqueue=False, config=config(tiny_model_dir))
    )
    assert reference.status == TrainingRun.Status.DONE, reference.error
    expected = losses(reference)
    assert len(expected) == 240

    heavy = [Consumers(("heavy",), env=machine(f"gpu-{n}", tmp_path, s3_artifacts)) for n in (1, 2)]
    light = Consumers(("light",), env=machine("cpu", tmp_path, s3_artifacts))
    try:
        heavy_processes = [psutil.Process(c.processes[0].pid) for c in heavy]
        run = training_run_create(project=project, user=users["admin"], config=config(tiny_model_dir))
        run = wait_for(
            lambda: (r := TrainingRun.objects.get(pk=run.pk)).step >= 6 and r.checkpoint and r,
            timeout=300,
            interval=0.05,
        )
        first = holder(run, heavy_processes)

        # Light work goes on while the run trains: the light consumer does the import.
        upload = io.BytesIO(
            b'{"messages": [{"role": "user", "content": "In stock?"}, {"role": "assistant", "content": "Yes."}]}\n'
        )
        job = import_start(project=project, user=users["admin"], fileobj=upload, filename="a.jsonl", format="openai")
        job = wait_for(lambda: (j := ImportJob.objects.get(pk=job.pk)).finished and j, timeout=120)
        assert job.status == ImportJob.Status.SUCCEEDED, job.error
        assert int(job.worker.rsplit(":", 1)[1]) == light.processes[0].pid
        assert not TrainingRun.objects.get(pk=run.pk).finished  # it did not wait for the run

        # The consumer holding the run dies without a word (and its child with it, if any).
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=20)
        resumed = wait_for(
            lambda: (r := TrainingRun.objects.get(pk=run.pk)).resumed >= 1 and r.status == r.Status.RUNNING and r,
            timeout=60,
            interval=0.05,
        )
        second = holder(resumed, [p for p in heavy_processes if p.pid != first.pid])
        run = wait_for(lambda: (r := TrainingRun.objects.get(pk=run.pk)).finished and r, timeout=300, interval=0.2)
        assert run.status == TrainingRun.Status.DONE, (run.error, run.log)
        assert run.resumed == 1 and "queued again from the last checkpoint" in run.log
        assert second.pid != first.pid and second.is_running()
        assert "resuming from step-" in run.log  # from the bucket: the new machine had no copy
        got = losses(run)
        assert [step for step, _ in got] == [step for step, _ in expected]
        assert [loss for _, loss in got] == pytest.approx([loss for _, loss in expected], rel=1e-5)
        # The trained model and the checkpoints the second machine resumed from are in the bucket.
        stored = s3_artifacts.names(f"runs/{run.pk}/")
        assert f"runs/{run.pk}/output/adapter_model.safetensors" in stored
        assert any("/checkpoints/" in name for name in stored)
    finally:
        outputs = [c.stop() for c in (*heavy, light)]
        print("\n".join(outputs))
