"""Evaluating a finished run on the project's test split (the Django side: choosing and freezing
the test items, refusing leaks, the Huey task, storing samples and metrics). The generation and
the metrics are plain Python in training/evaluation/."""

from __future__ import annotations

import logging
import math
import random
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from curation.core import limits
from curation.models import Example
from training.models import EvalSample, Evaluation, TrainingRun
from training.runs.artifacts import DATA, output_folder, run_file_read, run_file_write
from training.runs.services import TrainingRefused, training_examples

log = logging.getLogger(__name__)

FEW_SHOT = 3
MAX_TEST = 500


def _leak_message(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:20]) + (_(" and %(n)s more") % {"n": len(ids) - 20} if len(ids) > 20 else "")
    return ngettext(
        "Test example %(ids)s is in this run's training data: a model is never evaluated on what it trained on. "
        "Move it out of the test split (or out of train, and train again).",
        "Test examples %(ids)s are in this run's training data: a model is never evaluated on what it trained on. "
        "Move them out of the test split (or out of train, and train again).",
        len(ids),
    ) % {"ids": shown}


@transaction.atomic
def evaluation_create(
    *, run: TrainingRun, user: Any = None, max_new_tokens: int = 128, few_shot: int = FEW_SHOT
) -> Evaluation:
    """Freeze the test items and create the queued evaluation (training/evaluation/tasks.py
    queues it); TrainingRefused names what stops it."""
    if run.status != TrainingRun.Status.DONE or not run.output_dir:
        raise TrainingRefused("run", _("Only a finished run with a trained model can be evaluated."))
    if not 1 <= max_new_tokens <= 2048:
        raise TrainingRefused("max_new_tokens", _("Maximum tokens must be between 1 and 2048."))
    if not 0 <= few_shot <= 10:
        raise TrainingRefused("few_shot", _("Choose 0 to 10 few-shot examples."))
    rows = list(
        training_examples(run.project, Example.Split.TEST).values_list(
            "pk", "messages", "label__name", "source", "tools"
        )
    )
    if not rows:
        raise TrainingRefused("split", _("The test split is empty: assign examples to it on the splits page."))
    trained = {pk for pk, _digest in run.snapshot.get("train", [])}
    if leaked := sorted(pk for pk, *_rest in rows if pk in trained):
        raise TrainingRefused("leak", _leak_message(leaked))
    rows = rows[:MAX_TEST]
    try:  # three systems answer every test example: base, few-shot base and tuned
        limits.evaluation_budget_check(project=run.project, items=len(rows), systems=3, max_new_tokens=max_new_tokens)
    except limits.LimitExceeded as error:
        raise TrainingRefused(error.field, error.message) from None
    frozen = run_file_read(run, DATA) or {}
    pool = [r for r in frozen.get("train", []) if any(m.get("role") == "assistant" for m in r["messages"])]
    shots = random.Random(run.config.get("seed", 0)).sample(pool, min(few_shot, len(pool)))
    evaluation = Evaluation.objects.create(
        run=run,
        total=len(rows),
        config={"max_new_tokens": max_new_tokens, "temperature": 0.0, "few_shot": len(shots)},
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    items = [
        {"id": pk, "messages": m, "label": label, "source": source, "tools": tools or []}
        for pk, m, label, source, tools in rows
    ]
    run_file_write(run, f"evaluation-{evaluation.pk}.json", {"items": items, "shots": shots})
    return evaluation


def evaluation_execute(*, evaluation: Evaluation) -> Evaluation:
    claimed = Evaluation.claim(evaluation.pk, started_at=timezone.now())
    evaluation.refresh_from_db()
    if not claimed:
        return evaluation
    run = evaluation.run
    project = run.project
    try:
        from training.evaluation.evaluator import Decoding, EvalItem, evaluate_run

        frozen = run_file_read(run, f"evaluation-{evaluation.pk}.json")
        if frozen is None:
            raise RuntimeError(
                _("The evaluation's test items (evaluation-%(pk)s.json) are missing; evaluate the run again.")
                % {"pk": evaluation.pk}
            )
        items = [
            EvalItem(r["id"], r["messages"], r.get("label"), r.get("source") or "", r.get("tools") or None)
            for r in frozen["items"]
        ]
        shots = [
            EvalItem(r["id"], r["messages"], r.get("label"), tools=r.get("tools") or None) for r in frozen["shots"]
        ]

        def progress(done: int, total: int) -> None:
            Evaluation.objects.filter(pk=evaluation.pk).update(processed=done, total=total)

        report = evaluate_run(
            output_dir=output_folder(run),
            items=items,
            shots=shots,
            decoding=Decoding(max_new_tokens=evaluation.config["max_new_tokens"]),
            kind=project.kind,
            labels=list(project.labels.order_by("name").values_list("name", flat=True)),
            structured_format=project.structured_format,
            schema=project.json_schema,
            progress=progress,
        )
        with transaction.atomic():
            EvalSample.objects.bulk_create(
                EvalSample(
                    evaluation=evaluation,
                    example_id=sample["id"] if Example.objects.filter(pk=sample["id"]).exists() else None,
                    prompt=sample.get("prompt", ""),
                    context=_plain(sample.get("context") or []),
                    reference=sample.get("reference", "") or "",
                    label=sample.get("label") or "",
                    source=sample.get("source") or "",
                    outputs=_plain(sample.get("outputs", {})),
                    metrics=_plain(sample.get("metrics", {})),
                )
                for sample in report.samples
            )
            Evaluation.objects.filter(pk=evaluation.pk).update(
                status=Evaluation.Status.DONE,
                processed=len(report.samples),
                overall=_plain(report.overall),
                # How the texts were scored (BLEU on characters or words, one scale for all systems).
                config={**evaluation.config, "scoring": _plain(getattr(report, "scoring", None) or {})},
                by_label=_plain(report.by_label),
                by_source=_plain(report.by_source),
                finished_at=timezone.now(),
            )
            from training.evaluation.judging import comparisons_prepare

            comparisons_prepare(evaluation)
    except Exception as exc:  # noqa: BLE001 - every failure ends the evaluation with its reason
        log.exception("evaluation %s failed", evaluation.pk)
        Evaluation.objects.filter(pk=evaluation.pk).update(
            status=Evaluation.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
        )
    evaluation.refresh_from_db()
    return evaluation


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None, tuples lists, other objects their text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)
