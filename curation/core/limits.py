"""Budgets that bound what one request may ask of the server, whoever sends it.

Each check runs before any work is done for the request and raises ``LimitExceeded`` naming
the field and the setting that sets the limit (config/settings.py, "Trust: limits on any single
request"). A LimitExceeded is an InvalidExample, so the API answers it with a 400 naming the
field; services that have their own error class (ConfigError, TrainingRefused) translate it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from curation.core.services import InvalidExample, fold
from curation.models import Project


class LimitExceeded(InvalidExample):
    """A request asks for more than one request may; ``field`` names what to reduce."""


def search_words(query: str) -> list[str]:
    """The words of a search, folded as the stored text is. Each word is one more LIKE in the
    query, so a search of thousands of words would be a slow query, not a useful one."""
    limit = settings.SHIKOMI_MAX_SEARCH_CHARS
    if len(query) > limit:
        raise LimitExceeded(
            "q",
            _("The search is %(n)d characters long; at most %(limit)d are allowed (SHIKOMI_MAX_SEARCH_CHARS).")
            % {"n": len(query), "limit": limit},
        )
    words = fold(query).split()
    limit = settings.SHIKOMI_MAX_SEARCH_WORDS
    if len(words) > limit:
        raise LimitExceeded(
            "q",
            _(
                "The search has %(n)d words; at most %(limit)d are searched for at once "
                "(SHIKOMI_MAX_SEARCH_WORDS). Use fewer words."
            )
            % {"n": len(words), "limit": limit},
        )
    return words


def bulk_ids_check(ids: Any) -> None:
    """Before any id is looked at: a bulk change names at most SHIKOMI_MAX_BULK_IDS examples."""
    limit = settings.SHIKOMI_MAX_BULK_IDS
    if len(ids) > limit:
        raise LimitExceeded(
            "ids",
            _(
                "%(n)d examples were named; one bulk change may name at most %(limit)d "
                "(SHIKOMI_MAX_BULK_IDS). Send them in smaller batches, or use filters instead of ids."
            )
            % {"n": len(ids), "limit": limit},
        )


def _lock(project: Project) -> None:
    """Two starts at the same moment must not both see room for one more job."""
    Project.objects.select_for_update().filter(pk=project.pk).first()


def _tokens_check(tokens: int, shape: str) -> None:
    limit = settings.SHIKOMI_MAX_JOB_TOKENS
    if tokens > limit:
        raise LimitExceeded(
            "budget",
            _(
                "This job could ask the model for %(tokens)s tokens (%(shape)s); one job may ask for at most "
                "%(limit)s (SHIKOMI_MAX_JOB_TOKENS). Ask for fewer items, candidates or tokens."
            )
            % {"tokens": f"{tokens:,}", "shape": shape, "limit": f"{limit:,}"},
        )


def _room_check(unfinished: int, limit: int, message: str) -> None:
    """Room for one more unfinished job; `message` takes %(n)d (unfinished) and %(limit)d."""
    if unfinished >= limit:
        raise LimitExceeded("budget", message % {"n": unfinished, "limit": limit})


def generation_budget_check(*, project: Project, prompts: int, candidates: int, max_new_tokens: int) -> None:
    """A generation job (synthetic or augmentation) fits the per-job token budget, and the
    project has room for one more unfinished generation job. Call inside the start's transaction."""
    from curation.models import GenerationJob

    _tokens_check(
        prompts * candidates * max_new_tokens,
        _("%(prompts)d × %(candidates)d × %(tokens)d tokens")
        % {"prompts": prompts, "candidates": candidates, "tokens": max_new_tokens},
    )
    _lock(project)
    _room_check(
        GenerationJob.objects.filter(project=project).exclude(status__in=GenerationJob.FINISHED).count(),
        settings.SHIKOMI_MAX_OPEN_GENERATION_JOBS,
        _(
            "This project already has %(n)d generation jobs queued or running, the most allowed "
            "(SHIKOMI_MAX_OPEN_GENERATION_JOBS = %(limit)d). Wait for one to finish, or cancel one."
        ),
    )


def evaluation_budget_check(*, project: Project, items: int, systems: int, max_new_tokens: int) -> None:
    """An evaluation fits the per-job token budget, and the project has room for one more
    unfinished evaluation. Call inside the start's transaction."""
    from training.interface import open_evaluations

    _tokens_check(
        items * systems * max_new_tokens,
        _("%(items)d test examples × %(systems)d models × %(tokens)d tokens")
        % {"items": items, "systems": systems, "tokens": max_new_tokens},
    )
    _lock(project)
    _room_check(
        open_evaluations(project),
        settings.SHIKOMI_MAX_OPEN_EVALUATIONS,
        _(
            "This project already has %(n)d evaluations queued or running, the most allowed "
            "(SHIKOMI_MAX_OPEN_EVALUATIONS = %(limit)d). Wait for one to finish."
        ),
    )
