"""What every generation job (synthetic or augmentation) can be asked: cancel, or start again
(curation/generation/tasks.py queues it again)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.generation import ConfigError
from curation.models import GenerationJob


def generation_job_cancel(*, job: GenerationJob) -> None:
    """Ask the job to stop before its next batch; the drafts it made stay."""
    GenerationJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    GenerationJob.objects.filter(pk=job.pk, status=GenerationJob.Status.QUEUED).update(
        status=GenerationJob.Status.CANCELLED, finished_at=timezone.now()
    )


@transaction.atomic
def generation_job_requeue(*, job: GenerationJob) -> GenerationJob:
    """An interrupted, failed or cancelled job queued again: run, it makes only the drafts it lacks."""
    resumable = [GenerationJob.Status.INTERRUPTED, GenerationJob.Status.FAILED, GenerationJob.Status.CANCELLED]
    updated = GenerationJob.objects.filter(pk=job.pk, status__in=resumable).update(
        status=GenerationJob.Status.QUEUED, cancel_requested=False, error="", finished_at=None
    )
    if not updated:
        raise ConfigError("status", _("Only a stopped job can be started again."), status=409)
    job.refresh_from_db()
    return job
