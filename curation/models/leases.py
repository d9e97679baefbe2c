"""Leases on background work: the process that claims a row renews its heartbeat while it works,
and any live consumer marks work whose heartbeat is too old as interrupted.

`Work.claim` (curation/models/core.py) moves a row from waiting to running in one conditional
UPDATE, recording this process (`WORKER`, host:pid) and the time; the row is then held here. A
consumer (each queue's startup hook, training/tasks.py) or a run's child process calls
`curation.core.background.start_heartbeats()`: one daemon thread per process that, every
SHIKOMI_HEARTBEAT_SECONDS,

- renews `heartbeat_at` of the rows this process holds that are still running under its name
  (a row no longer running is let go; one running under another worker's name is *lost*: it was
  marked interrupted while this process could not reach the database, and claimed again since;
  `Work.lease_lost` tells the task to stop);
- reaps: marks running rows of every kind whose heartbeat is older than SHIKOMI_LEASE_SECONDS
  interrupted (curation/core/background.py `reap`), so a worker killed on another machine is
  noticed by whichever consumer is alive, without restarting anything.

This module is the process's own record (what it holds, what it lost); it imports no model, so
the models can call it.

Processes that do not call `start_heartbeats` (the web server, tests running tasks inline) claim
and release rows as before; a row they hold is not renewed.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import defaultdict
from typing import Any

from django.utils import timezone

WORKER = f"{socket.gethostname()}:{os.getpid()}"[:200]

_lock = threading.Lock()
_held: dict[Any, set[int]] = defaultdict(set)
_lost: dict[Any, set[int]] = defaultdict(set)


def worker_id() -> str:
    """host:pid of this process (a forked child has its own pid)."""
    global WORKER
    WORKER = f"{socket.gethostname()}:{os.getpid()}"[:200]
    return WORKER


def hold(model: Any, pk: int) -> None:
    """This process claimed the row: renew its heartbeat from now on."""
    with _lock:
        _held[model].add(pk)
        _lost[model].discard(pk)


def lost(model: Any, pk: int) -> bool:
    with _lock:
        return pk in _lost[model]


def held() -> dict[Any, set[int]]:
    with _lock:
        return {model: set(pks) for model, pks in _held.items() if pks}


def renew() -> int:
    """Renew the heartbeat of every row this process holds; returns how many were renewed."""
    now, renewed, me = timezone.now(), 0, worker_id()
    for model, pks in held().items():
        rows = model._default_manager.filter(pk__in=pks)
        renewed += rows.filter(status=model.RUNNING, worker=me).update(heartbeat_at=now)
        states = {pk: (status, worker) for pk, status, worker in rows.values_list("pk", "status", "worker")}
        with _lock:
            for pk in pks:
                status, worker = states.get(pk, (None, ""))
                if status == model.RUNNING and worker == me:
                    continue
                _held[model].discard(pk)  # done, failed, cancelled, deleted: let go
                # Marked interrupted after missed heartbeats (and perhaps queued again, or running
                # on another worker): if this process still works on it, it must stop.
                if status in (model.INTERRUPTED, model.WAITING) or status == model.RUNNING:
                    _lost[model].add(pk)
    return renewed
