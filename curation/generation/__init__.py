"""Synthetic drafts: prompt templates, generation jobs, draft checks, the review loop and the
preference pairs it yields. Plain services; views, API, tasks and commands call these."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting of a template, job or review that a person can correct; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
