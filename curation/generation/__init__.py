"""Synthetic drafts: prompt templates, generation jobs, draft checks, the review loop and the
preference pairs it yields. Plain services; views, API, tasks and commands call these."""

from __future__ import annotations

from curation.core.errors import ServiceError


class ConfigError(ServiceError):
    """A setting of a template, job or review that a person can correct; `field` names it."""
