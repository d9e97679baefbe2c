"""Applying rules in the background: the Huey task and what queues it. This module imports the
service, never the other way round."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django_huey import db_task

from curation.models import Project, RuleRun
from curation.rules.services import rule_run_create, rule_run_execute


@db_task(queue="light")
def rule_run_task(run_id: int) -> None:
    run = RuleRun.objects.filter(pk=run_id).select_related("project").first()
    if run is None or run.status != RuleRun.Status.QUEUED:
        return  # deleted, or a duplicate delivery
    try:
        rule_run_execute(run=run)
    except Exception:  # noqa: BLE001 - the run already records the error for the page
        pass


def rule_run_start(*, project: Project, user: Any) -> RuleRun:
    """Snapshot the active rules as the next rule set version and queue their application."""
    run = rule_run_create(project=project, user=user)
    transaction.on_commit(lambda: rule_run_task(run.pk))
    return run
