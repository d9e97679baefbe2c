"""Leases on background work (issue 20): the claiming process renews a heartbeat; any live
consumer marks work whose heartbeat is too old as interrupted and queues a training run again;
a worker whose row was taken from it learns that it lost the lease."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from curation.core.background import queue_position, reap
from curation.models import GenerationJob, QualityScan, RuleRun, leases
from tests.training.conftest import make_run
from training.models import TrainingRun


@pytest.fixture(autouse=True)
def _short_lease(settings):
    settings.SHIKOMI_LEASE_SECONDS = 30


def _age(model, pk: int, seconds: float) -> None:
    model.objects.filter(pk=pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_a_claim_records_the_worker_and_its_heartbeat_and_only_one_claim_wins(project, users):
    scan = QualityScan.objects.create(project=project, number=1, created_by=users["admin"])
    assert QualityScan.claim(scan.pk, started_at=timezone.now())
    assert not QualityScan.claim(scan.pk, started_at=timezone.now())  # a second consumer
    scan.refresh_from_db()
    assert scan.status == QualityScan.Status.RUNNING and scan.worker == leases.worker_id()
    assert timezone.now() - scan.heartbeat_at < timedelta(seconds=5)


def test_renewing_keeps_held_work_alive_and_reaping_marks_only_silent_work(project, users):
    mine = QualityScan.objects.create(project=project, number=2, created_by=users["admin"])
    QualityScan.claim(mine.pk)
    dead = RuleRun.objects.create(project=project, number=1, created_by=users["admin"], status=RuleRun.Status.RUNNING)
    _age(RuleRun, dead.pk, 31)  # its worker stopped renewing 31 s ago
    ancient = GenerationJob.objects.create(
        project=project, kind="synthetic", created_by=users["admin"], status=GenerationJob.Status.RUNNING
    )  # running before leases existed: no heartbeat at all
    _age(QualityScan, mine.pk, 29)

    assert leases.renew() == 1
    assert reap() == 2
    mine.refresh_from_db(), dead.refresh_from_db(), ancient.refresh_from_db()
    assert mine.status == QualityScan.Status.RUNNING
    assert dead.status == RuleRun.Status.INTERRUPTED and dead.error and dead.finished_at
    assert ancient.status == GenerationJob.Status.INTERRUPTED
    assert reap() == 0  # nothing twice


def test_a_worker_whose_work_was_reaped_learns_it_lost_the_lease(project, users):
    scan = QualityScan.objects.create(project=project, number=3, created_by=users["admin"])
    QualityScan.claim(scan.pk)
    assert not QualityScan.lease_lost(scan.pk)
    _age(QualityScan, scan.pk, 60)  # this process could not reach the database for a minute
    assert reap() == 1
    leases.renew()
    assert QualityScan.lease_lost(scan.pk)
    # Work that ended normally is simply let go.
    other = QualityScan.objects.create(project=project, number=4, created_by=users["admin"])
    QualityScan.claim(other.pk)
    QualityScan.objects.filter(pk=other.pk).update(status=QualityScan.Status.DONE)
    leases.renew()
    assert not QualityScan.lease_lost(other.pk) and other.pk not in leases.held().get(QualityScan, set())


def test_a_training_run_whose_worker_died_is_queued_again_from_its_checkpoint(project, users, tmp_path, settings):
    settings.SHIKOMI_AUTO_RESUMES = 1
    checkpoint = tmp_path / "checkpoint-3"
    checkpoint.mkdir()
    run = make_run(project, users["admin"], status=TrainingRun.Status.RUNNING, checkpoint=str(checkpoint), step=3)
    _age(TrainingRun, run.pk, 120)
    assert reap() == 1
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED and run.resumed == 1
    assert "queued again from the last checkpoint" in run.log

    # Lost again: past SHIKOMI_AUTO_RESUMES it waits for a person.
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING)
    _age(TrainingRun, run.pk, 120)
    assert reap() == 1
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.INTERRUPTED and "resume it by hand" in run.log


def test_a_lost_run_without_a_checkpoint_stays_interrupted_and_says_why(project, users):
    run = make_run(project, users["admin"], status=TrainingRun.Status.RUNNING)
    _age(TrainingRun, run.pk, 120)
    assert reap() == 1
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.INTERRUPTED and "no checkpoint" in run.log
    assert not Path(run.checkpoint or "/nonexistent").is_dir()


def test_waiting_work_says_its_queue_and_what_is_ahead_of_it(project, users):
    queued = TrainingRun.Status.QUEUED
    first = make_run(project, users["admin"], number=1, status=queued)
    running = make_run(project, users["admin"], number=2, status=TrainingRun.Status.RUNNING)
    second = make_run(project, users["admin"], number=3, status=queued)
    local = GenerationJob.objects.create(
        project=project, kind="synthetic", created_by=users["admin"], config={"backend": {}}
    )
    remote = GenerationJob.objects.create(
        project=project, kind="synthetic", created_by=users["admin"], config={"backend": {"connection": 1}}
    )
    scan = QualityScan.objects.create(project=project, number=5, created_by=users["admin"])
    assert queue_position(first) == {"queue": "heavy", "ahead": 0, "running": 1}
    assert queue_position(second) == {"queue": "heavy", "ahead": 1, "running": 1}
    assert queue_position(local) == {"queue": "heavy", "ahead": 2, "running": 1}
    assert queue_position(remote) == {"queue": "light", "ahead": 0, "running": 0}
    assert queue_position(scan) == {"queue": "light", "ahead": 1, "running": 0}
    assert queue_position(running) is None


def test_the_run_page_says_where_a_queued_run_waits(client, project, users):
    make_run(project, users["admin"], number=1, status=TrainingRun.Status.QUEUED)
    run = make_run(project, users["admin"], number=2, status=TrainingRun.Status.QUEUED)
    client.force_login(users["admin"])
    page = client.get(reverse("run_detail", args=[project.slug, run.pk])).content.decode()
    assert "Waiting in the heavy queue (training, evaluation, local models): 1 job ahead of it." in page
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING)
    assert 'class="waiting' not in client.get(reverse("run_detail", args=[project.slug, run.pk])).content.decode()


def test_the_api_says_where_queued_work_waits(project, users):
    from rest_framework.test import APIClient

    make_run(project, users["admin"], number=1, status=TrainingRun.Status.RUNNING)
    run = make_run(project, users["admin"], number=2, status=TrainingRun.Status.QUEUED)
    api = APIClient()
    api.force_authenticate(users["admin"])
    answer = api.get(reverse("api_run", args=[project.slug, run.pk])).json()
    assert answer["queue"] == {"queue": "heavy", "ahead": 0, "running": 1}
    TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING)
    assert api.get(reverse("api_run", args=[project.slug, run.pk])).json()["queue"] is None

    scan = QualityScan.objects.create(project=project, number=1, created_by=users["admin"])
    answer = api.get(reverse("api_quality_scan", args=[project.slug, scan.number])).json()
    assert answer["queue"] == {"queue": "light", "ahead": 0, "running": 0}
