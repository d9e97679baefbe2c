"""Background work after a worker died, and where waiting work stands: every kind (imports, rule
runs, quality scans, generation jobs, training runs, evaluations, LLM judges) is a `Work` row, so
one function says so for all of them."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from curation.core.queues import HEAVY, LIGHT, backend_queue
from curation.models import GenerationJob, ImportJob, QualityScan, RuleRun, Work, leases

log = logging.getLogger("shikomi.leases")

# Sent with `model` (the kind) and `pks` after rows were marked interrupted because their worker
# stopped renewing their lease; training answers it by queueing an interrupted run again.
work_interrupted = Signal()


def work_kinds() -> tuple[type[Work], ...]:
    """Every kind of background work."""
    from training.interface import background_work

    return (ImportJob, RuleRun, QualityScan, GenerationJob, *background_work())


def reap(*, now=None) -> int:
    """Mark running work whose heartbeat is older than SHIKOMI_LEASE_SECONDS interrupted (its
    worker died or lost the database), kind by kind, each row in one conditional UPDATE (a
    heartbeat renewed meanwhile keeps the row), then send `work_interrupted`. Rows without any
    heartbeat (left by a version before leases) count as stale. Returns how many were marked."""
    now = now or timezone.now()
    stale = Q(heartbeat_at__lt=now - timedelta(seconds=settings.SHIKOMI_LEASE_SECONDS)) | Q(heartbeat_at__isnull=True)
    marked = 0
    for model in work_kinds():
        rows = model._default_manager.filter(stale, status=model.RUNNING)
        pks = [
            pk
            for pk in rows.values_list("pk", flat=True)
            if rows.filter(pk=pk).update(
                status=model.INTERRUPTED, error=str(model.INTERRUPTED_MESSAGE), finished_at=now
            )
        ]
        if pks:
            marked += len(pks)
            work_interrupted.send(sender=model, pks=pks)
    return marked


def work_queue(row: Work) -> str:
    """The queue a row's task waits in (curation/core/queues.py)."""
    if isinstance(row, GenerationJob):
        return backend_queue((row.config or {}).get("backend"))
    return _kind_queue(type(row))


def _kind_queue(model: type[Work]) -> str:
    # Training runs and evaluations hold a model on a device; the LLM judge asks a server.
    return HEAVY if model._meta.label in ("training.TrainingRun", "training.Evaluation") else LIGHT


def queue_position(row: Work) -> dict[str, Any] | None:
    """For a row waiting for a worker: its queue and how much waits in that queue before it
    (rows of any kind queued earlier) and is running there now; None once it has started."""
    if row.status != row.WAITING:
        return None
    queue = work_queue(row)
    ahead = running = 0
    for model in work_kinds():
        rows = model._default_manager.all()
        if model is GenerationJob:
            open_jobs = rows.filter(status__in=(model.WAITING, model.RUNNING)).only("status", "config", "created_at")
            same = [job for job in open_jobs if work_queue(job) == queue]
            ahead += sum(1 for j in same if j.status == model.WAITING and j.created_at < row.created_at)
            running += sum(1 for j in same if j.status == model.RUNNING)
            continue
        if _kind_queue(model) != queue:
            continue
        ahead += rows.filter(status=model.WAITING, created_at__lt=row.created_at).count()
        running += rows.filter(status=model.RUNNING).count()
    return {"queue": queue, "ahead": ahead, "running": running}


# --- the heartbeat thread (curation/models/leases.py) ------------------------------------------

_thread: threading.Thread | None = None
_stop = threading.Event()
_lock = threading.Lock()


def _beat() -> None:
    interval = settings.SHIKOMI_HEARTBEAT_SECONDS
    while not _stop.wait(interval):
        try:
            leases.renew()
            reap()
        except Exception:  # noqa: BLE001 - a database away for a moment: try again next beat
            log.exception("heartbeat failed; trying again in %s s", interval)
        finally:
            close_old_connections()


def start_heartbeats() -> None:
    """Start this process's heartbeat thread (once; later calls do nothing)."""
    global _thread
    leases.worker_id()
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        _stop.clear()
        _thread = threading.Thread(target=_beat, name="shikomi-heartbeat", daemon=True)
        _thread.start()
    log.info(
        "heartbeat every %s s as %s; work silent for %s s is marked interrupted",
        settings.SHIKOMI_HEARTBEAT_SECONDS,
        leases.WORKER,
        settings.SHIKOMI_LEASE_SECONDS,
    )


def stop_heartbeats() -> None:
    global _thread
    _stop.set()
    if _thread is not None:
        _thread.join(timeout=5)
    _thread = None
