"""A training run whose worker died (its lease ran out, curation/core/background.py `reap`) is
queued again from its last checkpoint, up to SHIKOMI_AUTO_RESUMES times, so it finishes on another
consumer without anyone pressing Resume; past that, or without a checkpoint, it stays interrupted
and its log says why."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.dispatch import receiver

from curation.core.background import work_interrupted
from training.models import TrainingRun
from training.runs.services import DatabaseCallbacks, TrainingRefused
from training.runs.tasks import training_run_resume

log = logging.getLogger("shikomi.leases")


@receiver(work_interrupted, dispatch_uid="resume_interrupted_runs")
def resume_interrupted_runs(sender: Any, pks: list[int], **kwargs: Any) -> None:
    if sender is not TrainingRun:
        return
    for run in TrainingRun.objects.filter(pk__in=pks, status=TrainingRun.Status.INTERRUPTED):
        callbacks = DatabaseCallbacks(run)
        if run.resumed >= settings.SHIKOMI_AUTO_RESUMES:
            callbacks.on_message(
                f"worker lost; not resumed automatically (resumed {run.resumed} times, "
                f"SHIKOMI_AUTO_RESUMES is {settings.SHIKOMI_AUTO_RESUMES}): resume it by hand"
            )
            continue
        try:
            training_run_resume(run=run)
        except TrainingRefused as refusal:
            callbacks.on_message(f"worker lost; not resumed automatically: {refusal.message}")
        else:
            callbacks.on_message("worker lost (no heartbeat); queued again from the last checkpoint")
            log.warning("training run %s lost its worker; queued again from its checkpoint", run.pk)
