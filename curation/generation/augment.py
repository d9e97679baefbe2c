"""Augmentation: the generation backend rewrites the prompts of chosen examples in other
words; each rewrite becomes a draft (source "augmented", status draft) carrying the original
answer, and waits for a reviewer like any synthetic draft. The model is offered the source
example's tools (so it knows what the conversation can call; a rewrite that calls one instead
is not a rewrite and is listed as an error), and the draft keeps them.

The job runs in a Huey task. Drafts are written as they are made, one per (job, key), so a
failed or cancelled job keeps what it finished and a retried one never makes a draft twice.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.connections.backends import BackendChoiceError, backend_choose, backend_from_spec
from curation.generation import ConfigError
from curation.generation.checks import DraftChecker
from curation.generation.synthetic import DraftRow, write_drafts
from curation.models import Example, GenerationJob, Project
from llm.interface import GenerationBackend, GenerationError
from llm.local import generate_detailed

log = logging.getLogger(__name__)

MAX_EXAMPLES = 1000
MAX_PER_EXAMPLE = 5
BATCH = 8
INSTRUCTION = (
    "Rewrite the user's message so that it asks for exactly the same thing in different words. "
    "Keep its language, its meaning and every name, number and detail. "
    "Reply with the rewritten message only, without quotes or comments."
)


# Augmentation's settings errors are the generation package's: one class for views to catch.
AugmentError = ConfigError


def _first_user(messages: list[dict[str, Any]]) -> int | None:
    return next((i for i, m in enumerate(messages) if m.get("role") == "user" and m.get("content")), None)


def paraphrase_problem(text: str, original: str) -> str | None:
    """Why a rewrite cannot become a draft, or None."""
    if not text.strip():
        return _("the model answered nothing")
    if " ".join(text.split()).casefold() == " ".join(original.split()).casefold():
        return _("the rewrite is the same as the original")
    if len(text) > 3 * len(original) + 200:
        return _("the rewrite is more than three times as long as the original")
    return None


def clean_rewrite(text: str) -> str:
    """Small models like to wrap the rewrite in quotes or announce it; take that off."""
    text = text.strip()
    for lead in ("Rewritten message:", "Rewritten:", "Here is the rewritten message:"):
        if text.lower().startswith(lead.lower()):
            text = text[len(lead) :].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'「":
        text = text[1:-1].strip()
    return text


@transaction.atomic
def augment_create(
    *,
    project: Project,
    user: Any,
    example_ids: list[int],
    per_example: int = 1,
    temperature: float = 0.7,
    max_new_tokens: int = 128,
    backend: dict[str, Any] | None = None,
) -> GenerationJob:
    """An augmentation job, queued; `backend` is a connection or a finished run of this project
    ({"connection": id or name} or {"kind": "tuned", "run": id}), the embedded model when left out.
    curation/generation/tasks.py queues it."""
    if not 1 <= per_example <= MAX_PER_EXAMPLE:
        raise AugmentError("per_example", _("Choose 1 to %(n)s rewrites per example.") % {"n": MAX_PER_EXAMPLE})
    if not 0.0 <= temperature <= 2.0:
        raise AugmentError("temperature", _("Temperature must be between 0 and 2."))
    if per_example > 1 and temperature == 0:
        raise AugmentError("temperature", _("Several rewrites of one example need a temperature above 0."))
    if not 16 <= max_new_tokens <= 2048:
        raise AugmentError("max_new_tokens", _("Maximum tokens must be between 16 and 2048."))
    ids = sorted(set(example_ids))
    if not ids:
        raise AugmentError("ids", _("Choose at least one example."))
    if len(ids) > MAX_EXAMPLES:
        raise AugmentError("ids", _("Choose at most %(n)s examples at a time.") % {"n": MAX_EXAMPLES})
    try:  # per-job token budget and per-project cap on unfinished jobs (curation/core/limits.py)
        from curation.core.limits import LimitExceeded, generation_budget_check

        generation_budget_check(
            project=project, prompts=len(ids), candidates=per_example, max_new_tokens=max_new_tokens
        )
    except LimitExceeded as error:
        raise AugmentError(error.field, error.message) from None
    found = set(Example.objects.filter(project=project, pk__in=ids).values_list("pk", flat=True))
    if missing := [i for i in ids if i not in found]:
        raise AugmentError("ids", _("No such examples in this project: %(ids)s") % {"ids": missing[:20]})
    try:
        spec, name = backend_choose(backend, project)
    except BackendChoiceError as error:
        raise AugmentError(f"backend_{error.field}", error.message) from None
    return GenerationJob.objects.create(
        project=project,
        kind=GenerationJob.Kind.AUGMENT,
        backend=name,
        config={
            "example_ids": ids,
            "per_example": per_example,
            "temperature": temperature,
            "max_new_tokens": max_new_tokens,
            "instruction": INSTRUCTION,
            "backend": spec,
        },
        total=len(ids) * per_example,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


def _draft_row(source: Example, key: str, rewrite: str, index: int, checker: DraftChecker) -> DraftRow:
    messages = copy.deepcopy(source.messages)
    messages[index]["content"] = rewrite
    return DraftRow(
        key=key,
        group=key,
        candidate=0,
        messages=messages,
        target=index,
        label_id=source.label_id,
        tools=list(source.tools or []),
        source=Example.Source.AUGMENTED,
        metadata={"augmented_from": source.pk},
        request=source.messages[index]["content"],
        original=rewrite,
        flags=checker.check(messages, target=index, group=key, tools=source.tools or None),
    )


def augment_execute(*, job: GenerationJob, backend: GenerationBackend | None = None) -> GenerationJob:
    if not GenerationJob.claim(job.pk, started_at=timezone.now()):
        return job
    job.refresh_from_db()
    cfg = job.config
    done_keys = set(job.drafts.values_list("generation_key", flat=True))
    sources = Example.objects.in_bulk(cfg["example_ids"])
    work = [(sources[pk], f"{pk}:{k}") for pk in cfg["example_ids"] if pk in sources for k in range(cfg["per_example"])]
    errors: list[dict[str, Any]] = list(job.errors)
    try:
        # Jobs from before connections have no backend: the embedded model, as then.
        backend = backend or backend_from_spec(cfg.get("backend"), job.project)
        checker = DraftChecker(job.project, job_id=job.pk)
        checker.load_own()
        for start in range(0, len(work), BATCH):
            if GenerationJob.objects.filter(pk=job.pk, cancel_requested=True).exists():
                GenerationJob.objects.filter(pk=job.pk).update(
                    status=GenerationJob.Status.CANCELLED, finished_at=timezone.now(), errors=errors
                )
                return _reloaded(job)
            batch = [(src, key) for src, key in work[start : start + BATCH] if key not in done_keys]
            todo = []
            for src, key in batch:
                index = _first_user(src.messages)
                if index is None:
                    errors.append({"source": src.pk, "key": key, "error": _("the example has no user message")})
                else:
                    todo.append((src, key, index))
            if not todo:
                continue
            conversations = [
                [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": src.messages[i]["content"]}]
                for src, _key, i in todo
            ]
            replies = generate_detailed(
                backend,
                conversations,
                max_new_tokens=cfg["max_new_tokens"],
                temperature=cfg["temperature"],
                tools=[src.tools or None for src, _key, _i in todo],
            )
            created = 0
            for (src, key, index), reply in zip(todo, replies, strict=True):
                rewrite = clean_rewrite(reply.text)
                problem = paraphrase_problem(rewrite, src.messages[index]["content"])
                if reply.tool_calls:
                    problem = _("the model called a tool instead of rewriting the message")
                if problem:
                    errors.append({"source": src.pk, "key": key, "error": problem})
                else:
                    row = _draft_row(src, key, rewrite, index, checker)
                    for example in write_drafts(job, [row]):
                        checker.remember(example.pk, row.group, row.messages)
                        created += 1
            GenerationJob.objects.filter(pk=job.pk).update(
                processed=min(start + BATCH, len(work)), created_count=F("created_count") + created, errors=errors
            )
    except GenerationError as exc:
        _fail(job, str(exc), errors)
        return _reloaded(job)
    except Exception as exc:
        log.exception("generation job %s failed", job.pk)
        _fail(job, f"{type(exc).__name__}: {exc}", errors)
        raise
    GenerationJob.objects.filter(pk=job.pk).update(
        status=GenerationJob.Status.DONE, processed=len(work), finished_at=timezone.now(), errors=errors
    )
    return _reloaded(job)


def _fail(job: GenerationJob, message: str, errors: list[dict[str, Any]]) -> None:
    GenerationJob.objects.filter(pk=job.pk).update(
        status=GenerationJob.Status.FAILED, error=message, errors=errors, finished_at=timezone.now()
    )


def _reloaded(job: GenerationJob) -> GenerationJob:
    job.refresh_from_db()
    return job
