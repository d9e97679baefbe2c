"""Quality scans in the background: the Huey task and what queues it. This module imports the
services, never the other way round."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django_huey import db_task

from curation.models import Project, QualityScan
from curation.quality.scanning import quality_scan_execute
from curation.quality.services import quality_scan_create


@db_task(queue="light")
def quality_scan_task(scan_id: int) -> None:
    scan = QualityScan.objects.filter(pk=scan_id).select_related("project").first()
    if scan is None or scan.status != QualityScan.Status.QUEUED:
        return  # deleted, or a duplicate delivery
    try:
        quality_scan_execute(scan=scan)
    except Exception:  # noqa: BLE001 - the scan already records the error for the page
        pass


def quality_scan_start(*, project: Project, user: Any) -> QualityScan:
    """Queue the next scan of the project; ScanBusy while one is queued or running."""
    scan = quality_scan_create(project=project, user=user)
    transaction.on_commit(lambda: quality_scan_task(scan.pk))
    return scan
