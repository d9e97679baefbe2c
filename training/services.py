"""Launching training runs. The launch freezes the data (ids and content hashes of the train
and validation examples) and passes the quality gates; the trainer itself is plain Python
that never sees the database."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.models import Example, Project
from curation.quality.gates import LaunchBlocked, launch_blockers
from training.models import TrainingRun

# Below this, a run is allowed but warned about: the model mostly memorises.
SMALL_TRAIN = 200
TRAINABLE = ~Q(status__in=[Example.Status.REJECTED, Example.Status.DRAFT])


class TrainingRefused(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def training_examples(project: Project, split: str):
    return Example.objects.filter(project=project, split=split).filter(TRAINABLE).order_by("pk")


@transaction.atomic
def training_run_create(
    *,
    project: Project,
    user: Any,
    method: str = "lora",
    base_model: str = "",
    config: dict[str, Any] | None = None,
    override_leakage: bool = False,
    override_reason: str = "",
) -> TrainingRun:
    """Freeze the snapshot and create the run, or refuse: an empty training split
    (TrainingRefused), or a quality gate (LaunchBlocked) that was not overridden."""
    Project.objects.select_for_update().filter(pk=project.pk).first()
    train = list(training_examples(project, Example.Split.TRAIN).values_list("pk", "content_hash"))
    validation = list(training_examples(project, Example.Split.VALIDATION).values_list("pk", "content_hash"))
    if not train:
        raise TrainingRefused("split", _("The training split is empty: assign examples to it on the splits page."))
    blockers = launch_blockers(project, examples=Example.objects.filter(pk__in=[pk for pk, _h in train + validation]))
    overrides = []
    if override_leakage:
        if not override_reason.strip():
            raise TrainingRefused("override_reason", _("Say why the leakage is acceptable; it is recorded on the run."))
    remaining = []
    for blocker in blockers:
        if blocker.gate == "leakage" and override_leakage:
            overrides.append(
                {
                    "gate": blocker.gate,
                    "by": getattr(user, "username", None),
                    "at": timezone.now().isoformat(),
                    "reason": override_reason.strip(),
                    "message": blocker.message,
                    "ids": blocker.ids[:1000],
                }
            )
        else:
            remaining.append(blocker)
    if remaining:
        raise LaunchBlocked(remaining)
    warnings = []
    if len(train) < SMALL_TRAIN:
        warnings.append(
            _("Only %(n)s training examples: under a few hundred, a model mostly memorises them.") % {"n": len(train)}
        )
    if not validation:
        warnings.append(_("No validation split: no validation loss and no early stopping."))
    number = (TrainingRun.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    return TrainingRun.objects.create(
        project=project,
        number=number,
        method=method,
        base_model=base_model,
        config=config or {},
        snapshot={"train": [list(r) for r in train], "validation": [list(r) for r in validation]},
        train_count=len(train),
        validation_count=len(validation),
        gate_overrides=overrides,
        warnings=warnings,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
