"""Progress of long background work that people can trust: items done of all, time spent, and an
estimate of the time left, the same on every page and in every API answer.

Two halves:

- `ProgressRecorder` is what a task calls after each item. It writes `processed` with one
  ``UPDATE … WHERE pk = … AND processed < n`` (no other field is touched, so a status or a
  cancel written meanwhile is never undone, and the count never goes back), at most once per
  `interval` seconds while items come fast and for every item when they come slowly; `flush()`
  writes the last count held back.
- `progress_info` is what a page or a serializer shows: processed, total, percent,
  elapsed_seconds, eta_seconds (None until an item is done: it is the rate since the work
  started, applied to the items left) and `text`, the same in words ("12 of 40 · 1 min 5 s
  elapsed · about 2 min left"), also in its two halves, `counted` and `timing`.
  templates/curation/core/_progress.html shows it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

# Writes while items come faster than this: at most one per this many seconds.
INTERVAL = 0.5


class ProgressRecorder:
    """``recorder(n)`` after each item: ``processed = n`` on the row, throttled, never backwards.
    Safe to call from several threads (a backend that answers concurrently)."""

    def __init__(
        self,
        model: type[models.Model],
        pk: int,
        *,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model, self.pk, self.interval, self.clock = model, pk, interval, clock
        self.written = 0  # the last count written
        self.pending = 0  # the highest count seen
        self.written_at = -math.inf
        self.writes = 0
        self._lock = threading.Lock()

    def __call__(self, processed: int, *, force: bool = False) -> None:
        with self._lock:
            self.pending = max(self.pending, processed)
            if self.pending <= self.written:
                return
            if not force and self.clock() - self.written_at < self.interval:
                return
            self._write()

    def flush(self) -> None:
        """Write the count held back by the throttle, if any."""
        with self._lock:
            if self.pending > self.written:
                self._write()

    def _write(self) -> None:
        self.model._default_manager.filter(pk=self.pk, processed__lt=self.pending).update(processed=self.pending)
        self.written, self.written_at = self.pending, self.clock()
        self.writes += 1


# --- what pages and the API show ---------------------------------------------------------------


def duration_text(seconds: float) -> str:
    """1 h 5 min, 2 min 30 s, 45 s."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(h)d h %(m)d min") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)d min %(s)d s") % {"m": minutes, "s": secs}
    return _("%(s)d s") % {"s": secs}


def estimate_text(seconds: float) -> str:
    """The time left, as precise as an estimate deserves: about 2 min, about 40 s."""
    if seconds < 60:
        return _("about %(s)d s") % {"s": max(5, int(math.ceil(seconds / 5.0)) * 5)}
    if seconds < 3600:
        return _("about %(m)d min") % {"m": max(1, int(round(seconds / 60.0)))}
    hours, minutes = divmod(int(round(seconds / 60.0)), 60)
    return _("about %(h)d h %(m)d min") % {"h": hours, "m": minutes}


def progress_info(
    *,
    processed: int,
    total: int,
    started_at: datetime | None,
    finished_at: datetime | None = None,
    finished: bool = False,
    fraction: float | None = None,
    eta_seconds: float | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The progress of one piece of work. `fraction` (0 to 1) stands in for processed / total
    where the total is not known in items (an import reads a file of unknown length: processed
    is then the rows read); `eta_seconds` where the work knows its own estimate better (a
    training run, from its steps)."""
    if fraction is None:
        fraction = processed / total if total else (1.0 if finished else 0.0)
    fraction = min(1.0, max(0.0, fraction))
    elapsed: float | None = None
    if started_at is not None:
        end = finished_at if finished and finished_at else (now or timezone.now())
        elapsed = max(0.0, (end - started_at).total_seconds())
    eta: float | None = None
    if not finished and elapsed is not None and processed > 0 and fraction > 0:
        eta = eta_seconds if eta_seconds is not None else elapsed * (1 - fraction) / fraction
    info = {
        "processed": processed,
        "total": total,
        "percent": round(fraction * 100, 1),
        "elapsed_seconds": None if elapsed is None else int(elapsed),
        "eta_seconds": None if eta is None else int(math.ceil(eta)),
        "finished": finished,
    }
    counted, timing = _progress_text(info, has_total=bool(total))
    info |= {"counted": counted, "timing": timing, "text": " · ".join(p for p in (counted, timing) if p)}
    return info


def _progress_text(info: dict[str, Any], *, has_total: bool) -> tuple[str, str]:
    """("12 of 40", "1 min 5 s elapsed · about 2 min left")."""
    if has_total:
        counted = _("%(n)s of %(total)s") % {"n": info["processed"], "total": info["total"]}
    else:
        counted = _("%(percent)s%%") % {"percent": int(info["percent"])}
    timing = []
    if info["elapsed_seconds"] is not None:
        timing.append(_("%(time)s elapsed") % {"time": duration_text(info["elapsed_seconds"])})
    if info["eta_seconds"] is not None:
        timing.append(_("%(time)s left") % {"time": estimate_text(info["eta_seconds"])})
    elif not info["finished"] and info["elapsed_seconds"] is not None:
        timing.append(_("estimating the time left…"))
    return counted, " · ".join(timing)


def work_progress(work: Any, **extra: Any) -> dict[str, Any]:
    """`progress_info` of a `BackgroundWork` row (status, processed, total, started_at)."""
    return progress_info(
        processed=work.processed,
        total=work.total,
        started_at=work.started_at,
        finished_at=work.finished_at,
        finished=work.finished,
        **extra,
    )


class ProgressFields(serializers.Serializer):
    """The progress fields every job's API answer has (a serializer mixin): percent,
    elapsed_seconds, eta_seconds and progress_text, beside the job's own processed and total.
    A subclass whose rows are not `BackgroundWork` overrides `progress_of`."""

    percent = serializers.SerializerMethodField(help_text=gettext_lazy("processed / total in percent, 0 to 100."))
    elapsed_seconds = serializers.SerializerMethodField(
        help_text=gettext_lazy("Seconds since the work started (until it ended); null before it starts.")
    )
    eta_seconds = serializers.SerializerMethodField(
        help_text=gettext_lazy(
            "Estimated seconds left, from the rate since the work started; null until an item is done."
        )
    )
    progress_text = serializers.SerializerMethodField(
        help_text=gettext_lazy(
            "The same in words, in the user's language: 12 of 40 · 1 min 5 s elapsed · about 2 min left."
        )
    )

    queue = serializers.SerializerMethodField(
        help_text=gettext_lazy(
            "For work that waits for a worker: its queue (light or heavy), the jobs ahead of it in that queue and "
            "those running there, as {queue, ahead, running}; null once it has started."
        )
    )

    PROGRESS_FIELDS = ["percent", "elapsed_seconds", "eta_seconds", "progress_text", "queue"]

    def progress_of(self, obj: Any) -> dict[str, Any]:
        return work_progress(obj)

    def _progress(self, obj: Any) -> dict[str, Any]:
        cache = self.__dict__.setdefault("_progress_cache", {})
        key = id(obj)
        if key not in cache:
            cache[key] = (obj, self.progress_of(obj))  # keep obj so its id is not reused
        return cache[key][1]

    def get_percent(self, obj: Any) -> float:
        return self._progress(obj)["percent"]

    def get_elapsed_seconds(self, obj: Any) -> int | None:
        return self._progress(obj)["elapsed_seconds"]

    def get_eta_seconds(self, obj: Any) -> int | None:
        return self._progress(obj)["eta_seconds"]

    def get_progress_text(self, obj: Any) -> str:
        return self._progress(obj)["text"]

    def get_queue(self, obj: Any) -> dict[str, Any] | None:
        return waiting_place(obj)


def waiting_place(row: Any) -> dict[str, Any] | None:
    """`queue_position` of a waiting row (curation/core/background.py), for the API."""
    from curation.core.background import queue_position

    return queue_position(row) if row.status == getattr(row, "WAITING", None) else None
