"""Huey's consumer imports `<app>.tasks` of every app (autodiscovery); importing each feature's
tasks module here registers its tasks. Nothing else imports this module."""

from curation.generation import tasks as generation_tasks
from curation.io import tasks as io_tasks
from curation.quality import tasks as quality_tasks
from curation.rules import tasks as rules_tasks

__all__ = ["generation_tasks", "io_tasks", "quality_tasks", "rules_tasks"]
