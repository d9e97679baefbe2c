"""Background work after a worker died: every kind (imports, rule runs, quality scans,
generation jobs, training runs, evaluations, LLM judges) is a `Work` row, so one function
says so for all of them."""

from __future__ import annotations

from django.utils import timezone

from curation.models import Work


def mark_interrupted(*models: type[Work]) -> int:
    """Rows of these kinds left running by a worker that died: mark them interrupted (an import:
    failed) with their kind's message of what was kept. `manage.py serve` calls this before it
    starts the consumer, when no worker can be running them. Returns how many were marked."""
    now = timezone.now()
    return sum(
        model._default_manager.filter(status=model.RUNNING).update(
            status=model.INTERRUPTED, error=str(model.INTERRUPTED_MESSAGE), finished_at=now
        )
        for model in models
    )
