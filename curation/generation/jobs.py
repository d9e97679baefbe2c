"""What every generation job (synthetic or augmentation) can be asked: cancel, or start again
(curation/generation/tasks.py queues it again); and how its progress is counted, reply by reply
(`counting_backend`, which the task runs the job through)."""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.connections.backends import backend_from_spec
from curation.core.progress import ProgressRecorder
from curation.generation import ConfigError
from curation.models import Draft, GenerationJob, Project
from llm.interface import Conversation, Generation, GenerationBackend, Tools, tools_for
from llm.local import generate_detailed
from text import i18n


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


# --- progress per reply ------------------------------------------------------------------------


def replies_per_item(job: GenerationJob) -> int:
    """How many model replies one of the job's items takes: an augmentation rewrite is one; a
    synthetic prompt is its request(s), then for chat each candidate's answer and critique."""
    cfg = job.config or {}
    if job.kind == GenerationJob.Kind.AUGMENT:
        return 1
    candidates = max(1, int(cfg.get("candidates") or 1))
    if job.project.kind == Project.Kind.CLASSIFICATION:
        return candidates  # each candidate is a request of its own
    return 1 + candidates * (2 if cfg.get("critique") else 1)


def items_done_before(job: GenerationJob) -> int:
    """The items an earlier run of this job finished (a resumed job skips them)."""
    if job.kind == GenerationJob.Kind.AUGMENT:
        return Draft.objects.filter(job=job).count()
    return Draft.objects.filter(job=job).values("group").distinct().count()


class ReplyProgress:
    """Counts the model's replies as they come back and records them as items done (a reply
    is 1 / `replies_per_item` of an item) through a throttled `ProgressRecorder`. Between
    batch ends, where the job writes its exact count, an item that needed fewer replies (no
    request written, no critique after a tool call) is counted late, never early."""

    def __init__(self, job: GenerationJob, recorder: ProgressRecorder | None = None) -> None:
        self.per_item = replies_per_item(job)
        self.base = items_done_before(job)
        self.total = job.total
        self.replies = 0
        self.recorder = recorder or ProgressRecorder(GenerationJob, job.pk)
        self._lock = threading.Lock()

    def replied(self, count: int = 1) -> None:
        with self._lock:
            self.replies += count
            done = min(self.total, self.base + self.replies // self.per_item)
        self.recorder(done)


class CountingBackend:
    """The job's backend, with each reply counted as it comes back. A backend that answers
    several conversations at once (`concurrency`, e.g. an OpenAI-compatible server) is asked
    one conversation per call, `concurrency` calls at a time, so each reply counts on arrival;
    one that batches on a GPU (the embedded model) is asked as before, and its replies count
    when the batch comes back."""

    def __init__(self, inner: GenerationBackend, progress: ReplyProgress) -> None:
        self.inner, self.progress = inner, progress
        self.name = getattr(inner, "name", type(inner).__name__)
        self.concurrency = int(getattr(inner, "concurrency", 0) or 0)

    def generate_detailed(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        tools: list[Tools | None] | None = None,
    ) -> list[Generation]:
        options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "temperature": temperature}
        if self.concurrency < 1 or len(conversations) < 2:
            replies = generate_detailed(self.inner, conversations, tools=tools, **options)
            self.progress.replied(len(replies))
            return replies
        offered = tools_for(conversations, tools)
        language = i18n.get_language()

        def one(conversation: Conversation, given: Tools | None) -> Generation:
            with i18n.override(language):
                reply = generate_detailed(self.inner, [conversation], tools=[given] if given else None, **options)[0]
            self.progress.replied()
            return reply

        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations)))
        try:
            futures = [pool.submit(one, c, given) for c, given in zip(conversations, offered, strict=True)]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future.done() and (error := future.exception()) is not None:
                    raise error
            return [future.result() for future in futures]
        finally:
            # As the backend itself does: after a failure, what is not sent yet is dropped.
            pool.shutdown(wait=False, cancel_futures=True)


def counting_backend(job: GenerationJob) -> CountingBackend | None:
    """The job's backend with its replies counted, or None where the backend cannot be made
    (the job's run then fails with the reason, as without counting)."""
    try:
        inner = backend_from_spec((job.config or {}).get("backend"), job.project)
    except Exception:  # noqa: BLE001 - the job's own run reports it
        return None
    return CountingBackend(inner, ReplyProgress(job))
