"""An LLM as a second opinion: a model behind an OpenAI-compatible server judges an
evaluation's comparisons with the same rubric as the reviewers.

Its judgments are stored apart (no reviewer, `judge_model` set) and shown next to the human
results with their agreement, never counted in them. Sides are decided as for a person (a
keyed hash of the pair and the judge's name), so position bias can be checked for it too.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.connections.backends import BackendChoiceError, backend_spec_clean
from curation.models import Connection
from llm.interface import GenerationError
from training.evaluation.judging import CRITERIA, JudgingError, judgment_values, sides
from training.models import Comparison, Evaluation, JudgeJob, Judgment

log = logging.getLogger(__name__)

BATCH = 8
MAX_TOKENS = 300

INSTRUCTIONS = (
    "You compare two answers to the same request for a team that fine-tunes a language model. Judge which answer "
    "is better for that team, on these criteria: {criteria}. The reference answer comes from the team's data; "
    "an answer need not copy it. Length alone is not quality, and the order of the answers means nothing.\n"
    'Reply with one JSON object and nothing else: {{"winner": "A" or "B" or "tie", "scores": {{{score_keys}}}, '
    '"reason": "one sentence"}}, where each score is {{"A": 1-5, "B": 1-5}}.'
)


def prompt(comparison: Comparison, judge_model: str) -> tuple[list[dict[str, str]], str]:
    """The conversation asking the judge about this pair, and the system it will see as A."""
    a, b, left = sides(comparison, judge_model)
    sample = comparison.sample
    criteria = "; ".join(f"{key} ({CRITERIA[key]})" for key in CRITERIA)
    system = INSTRUCTIONS.format(criteria=criteria, score_keys=", ".join(f'"{key}": ...' for key in CRITERIA))
    earlier = "".join(f"{m.get('role')}: {m.get('content')}\n" for m in sample.context or [])
    user = (
        (f"Earlier in the conversation:\n{earlier}\n" if earlier else "")
        + f"Request:\n{sample.prompt}\n\nReference answer:\n{sample.reference or '(none)'}\n\n"
        f"Answer A:\n{a}\n\nAnswer B:\n{b}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}], left


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def parse_reply(text: str) -> tuple[str, dict[str, dict[str, Any]], str]:
    """(choice a/b/tie, scores as {criterion: {"a": n, "b": n}}, reason) from the judge's reply;
    ValueError when it holds no usable verdict. Code fences and text around the object are
    tolerated; scores that are missing or out of range are dropped, not guessed."""
    match = _OBJECT.search(text or "")
    if match is None:
        raise ValueError("no JSON object in the reply")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as error:
        raise ValueError(f"the reply's JSON does not parse: {error}") from None
    if not isinstance(data, dict):
        raise ValueError("the reply is not a JSON object")
    winner = str(data.get("winner", "")).strip().lower()
    choice = {"a": "a", "b": "b", "tie": "tie", "draw": "tie"}.get(winner)
    if choice is None:
        raise ValueError(f"winner is {data.get('winner')!r}, not A, B or tie")
    scores: dict[str, dict[str, Any]] = {}
    raw = data.get("scores") if isinstance(data.get("scores"), dict) else {}
    for key in CRITERIA:
        values = raw.get(key) if isinstance(raw.get(key), dict) else {}
        pair = {}
        for side in ("a", "b"):
            value = values.get(side.upper(), values.get(side))
            if isinstance(value, (int, float)) and int(value) == value and 1 <= value <= 5:
                pair[side] = int(value)
        if pair:
            scores[key] = pair
    return choice, scores, str(data.get("reason") or "")[:1000]


@transaction.atomic
def judge_job_create(*, evaluation: Evaluation, user: Any, backend: dict[str, Any]) -> JudgeJob:
    """An LLM judge over the evaluation's comparisons, queued (training/evaluation/tasks.py queues
    it); JudgingError names the bad field."""
    if evaluation.status != Evaluation.Status.DONE:
        raise JudgingError("evaluation", _("Only a finished evaluation can be judged."))
    project = evaluation.run.project
    try:
        spec = backend_spec_clean(backend, project)
    except BackendChoiceError as error:
        raise JudgingError(f"backend_{error.field}", error.message) from None
    # The small models that run on this server do not write the rubric's JSON reliably, and
    # judging every pair on the worker's CPU would hold up generation for hours.
    if (
        "connection" not in spec
        or not Connection.objects.filter(pk=spec["connection"], kind=Connection.Kind.OPENAI).exists()
    ):
        raise JudgingError(
            "backend_connection",
            _(
                "An LLM judge runs on an OpenAI-compatible server: choose a connection of that kind "
                "(ask an admin to add one)."
            ),
        )
    if JudgeJob.objects.filter(evaluation=evaluation, status__in=[JudgeJob.Status.QUEUED, JudgeJob.Status.RUNNING]):
        raise JudgingError("evaluation", _("An LLM judge is already working on this evaluation."))
    total = Comparison.objects.filter(evaluation=evaluation, identical=False).count()
    return JudgeJob.objects.create(
        evaluation=evaluation,
        backend=spec,
        total=total,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


def judge_job_execute(*, job: JudgeJob) -> JudgeJob:
    """Ask the judge about every pair, BATCH at a time; each batch's judgments are saved in one
    transaction (a later run of the same judge replaces them). A server error ends the job as
    failed with its message; the batches before it stay."""
    from curation.connections.backends import backend_from_spec

    claimed = JudgeJob.claim(job.pk, started_at=timezone.now())
    job.refresh_from_db()
    if not claimed:
        return job
    try:
        backend = backend_from_spec(job.backend, job.evaluation.run.project)
        name = backend.name
        JudgeJob.objects.filter(pk=job.pk).update(judge_model=name)
        pairs = list(
            Comparison.objects.filter(evaluation=job.evaluation, identical=False)
            .select_related("sample", "evaluation")
            .order_by("key")
        )
        done = failures = 0
        for start in range(0, len(pairs), BATCH):
            batch = pairs[start : start + BATCH]
            asked = [prompt(pair, name) for pair in batch]
            replies = backend.generate([conversation for conversation, _left in asked], max_new_tokens=MAX_TOKENS)
            with transaction.atomic():
                for pair, reply in zip(batch, replies, strict=True):
                    try:
                        choice, scores, reason = parse_reply(reply)
                        values = judgment_values(pair, name, choice, scores)
                    except (ValueError, JudgingError) as error:
                        failures += 1
                        log.info("LLM judge %s: pair %s not judged: %s", name, pair.key, error)
                        continue
                    Judgment.objects.update_or_create(
                        comparison=pair, reviewer=None, judge_model=name, defaults={**values, "note": reason}
                    )
            done += len(batch)
            JudgeJob.objects.filter(pk=job.pk).update(processed=done, failures=failures)
        JudgeJob.objects.filter(pk=job.pk).update(status=JudgeJob.Status.DONE, finished_at=timezone.now())
    except GenerationError as error:
        JudgeJob.objects.filter(pk=job.pk).update(
            status=JudgeJob.Status.FAILED, error=str(error), finished_at=timezone.now()
        )
    except Exception as error:  # noqa: BLE001 - every failure ends the job with its reason
        log.exception("LLM judge job %s failed", job.pk)
        JudgeJob.objects.filter(pk=job.pk).update(
            status=JudgeJob.Status.FAILED, error=f"{type(error).__name__}: {error}", finished_at=timezone.now()
        )
    job.refresh_from_db()
    return job
