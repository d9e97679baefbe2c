"""What every generation job (synthetic or augmentation) can be asked: cancel, resume, and
being marked interrupted when the worker died under it."""

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


def generation_jobs_mark_interrupted() -> int:
    return GenerationJob.objects.filter(status=GenerationJob.Status.RUNNING).update(
        status=GenerationJob.Status.INTERRUPTED,
        error=_("The worker stopped during this job; the drafts it finished are kept. Start it again for the rest."),
        finished_at=timezone.now(),
    )


@transaction.atomic
def generation_job_resume(*, job: GenerationJob) -> GenerationJob:
    """Run an interrupted, failed or cancelled job again: it makes only the drafts it lacks."""
    from curation.tasks import generation_job_task

    resumable = [GenerationJob.Status.INTERRUPTED, GenerationJob.Status.FAILED, GenerationJob.Status.CANCELLED]
    updated = GenerationJob.objects.filter(pk=job.pk, status__in=resumable).update(
        status=GenerationJob.Status.QUEUED, cancel_requested=False, error="", finished_at=None
    )
    if not updated:
        raise ConfigError("status", _("Only a stopped job can be started again."))
    transaction.on_commit(lambda: generation_job_task(job.pk))
    job.refresh_from_db()
    return job
