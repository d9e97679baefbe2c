"""Huey's consumer imports `<app>.tasks` of every app (autodiscovery); importing each feature's
tasks module here registers its tasks, and each consumer starts its heartbeats
(curation/models/leases.py). Nothing else imports this module."""

from django.conf import settings
from django_huey import on_startup

from curation.generation import tasks as generation_tasks
from curation.io import tasks as io_tasks
from curation.quality import tasks as quality_tasks
from curation.rules import tasks as rules_tasks
from curation.sources import tasks as sources_tasks

__all__ = ["generation_tasks", "io_tasks", "quality_tasks", "rules_tasks", "sources_tasks"]


def _start_heartbeats() -> None:
    # Every consumer renews the leases of the work it runs and notices work whose worker died.
    from curation.core.background import start_heartbeats

    start_heartbeats()


for _queue in settings.QUEUES:
    on_startup(name="shikomi_heartbeats", queue=_queue)(_start_heartbeats)
