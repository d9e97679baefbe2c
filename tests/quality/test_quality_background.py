"""Quality checks on a real Huey consumer in another process: finished, and killed halfway."""

from __future__ import annotations

from curation.models import ExampleCheck, QualityScan
from curation.quality.tasks import quality_scan_start
from tests.conftest import reap_after_lease, wait_for


def _finished(scan_id: int) -> QualityScan | None:
    scan = QualityScan.objects.get(pk=scan_id)
    return scan if scan.finished else None


def test_a_real_consumer_runs_the_quality_check(huey_consumer, corpus, project, users):
    scan = quality_scan_start(project=project, user=users["admin"])
    scan = wait_for(lambda: _finished(scan.pk), timeout=120)
    assert scan.status == QualityScan.Status.DONE, scan.error
    assert scan.processed == scan.total and scan.summary["duplicates"]["clusters"] == 2
    assert ExampleCheck.objects.filter(scan=scan, example=corpus["pii"], pii_count=2).exists()


def test_a_worker_killed_during_a_check_leaves_it_interrupted_with_nothing_written(
    huey_consumer, corpus, project, users
):
    scan = quality_scan_start(project=project, user=users["admin"])
    wait_for(
        lambda: QualityScan.objects.get(pk=scan.pk).status == QualityScan.Status.RUNNING, timeout=60, interval=0.02
    )
    huey_consumer.kill()
    huey_consumer.wait(timeout=20)
    assert reap_after_lease() == 1  # a live consumer, once the dead one's lease ran out
    scan.refresh_from_db()
    assert scan.status == QualityScan.Status.INTERRUPTED and "nothing was written" in scan.error
    assert not ExampleCheck.objects.filter(scan=scan).exists()
