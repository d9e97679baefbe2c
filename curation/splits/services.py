"""Assigning train, validation and test splits, and the class balance the trainer will see.

The algorithms are in curation/splits/splitting.py (plain data); this module reads the examples,
previews, and writes the result through example_bulk_update, so every moved example gets
a revision.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils.translation import gettext as _

from curation.core.selectors import METADATA_KEY
from curation.core.services import InvalidExample, example_bulk_update
from curation.models import Example, Project
from curation.splits.splitting import BalancePlan, Ratios, SplitItem, assign_splits, balance_plan

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class SplitRequest:
    method: str
    ratios: Ratios
    seed: int
    group_key: str = ""
    only_unassigned: bool = False

    def as_config(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "ratios": list(self.ratios.as_tuple()),
            "seed": self.seed,
            "group_key": self.group_key,
            "only_unassigned": self.only_unassigned,
        }


@dataclass(frozen=True)
class _Candidate:
    item: SplitItem
    split: str  # where it is now


def _candidates(project: Project, request: SplitRequest) -> list[_Candidate]:
    """The examples the request applies to, read once: only the grouping key of the
    metadata is fetched, not every example's whole metadata."""
    qs = Example.objects.filter(project=project).exclude(status=Example.Status.REJECTED)
    if request.only_unassigned:
        qs = qs.filter(split=Example.Split.UNASSIGNED)
    fields = ["pk", "label__name", "created_at", "split"]
    if request.group_key:
        if not METADATA_KEY.match(request.group_key):
            raise InvalidExample("group_key", _("use letters, digits, - and _ only (up to 64)."))
        qs = qs.annotate(group=Cast(KeyTextTransform(request.group_key, "metadata"), output_field=TextField()))
        fields.append("group")
    return [
        _Candidate(SplitItem(id=row[0], label=row[1], created=row[2], group=row[4] if len(row) > 4 else None), row[3])
        for row in qs.values_list(*fields)
    ]


def _plan(project: Project, request: SplitRequest) -> tuple[dict[int, str], list[_Candidate]]:
    """{example id: split} for the request, and the candidates it was made from."""
    if request.method == "group" and not request.group_key:
        raise InvalidExample("group_key", _("name the metadata field whose values must stay together."))
    candidates = _candidates(project, request)
    try:
        plan = assign_splits(
            [c.item for c in candidates], method=request.method, ratios=request.ratios, seed=request.seed
        )
    except ValueError as exc:
        raise InvalidExample("method", str(exc)) from None
    return plan, candidates


def splits_preview(*, project: Project, request: SplitRequest) -> dict[str, Any]:
    """Per split: how many examples and how many of each label, if the request were applied."""
    plan, candidates = _plan(project, request)
    table: dict[str, Counter] = {split: Counter() for split in SPLITS}
    for c in candidates:
        table[plan[c.item.id]][c.item.label or "—"] += 1
    moved = sum(1 for c in candidates if c.split != plan[c.item.id])
    return {"table": table, "total": len(plan), "moved": moved}


@transaction.atomic
def splits_assign(*, project: Project, user: Any, request: SplitRequest) -> int:
    """Write the plan; returns how many examples moved. The request is recorded on the
    project, so the same seed and settings give the same splits again."""
    plan, _candidates_read = _plan(project, request)
    by_split: dict[str, list[int]] = defaultdict(list)
    for pk, split in plan.items():
        by_split[split].append(pk)
    moved = 0
    for split, ids in by_split.items():
        moved += example_bulk_update(project=project, user=user, ids=sorted(ids), changes={"split": split})
    project.split_config = request.as_config()
    project.save(update_fields=["split_config"])
    return moved


def split_distribution(*, project: Project) -> dict[str, Counter]:
    """The class distribution of each split as it is now."""
    table: dict[str, Counter] = defaultdict(Counter)
    for split, label in Example.objects.filter(project=project).values_list("split", "label__name"):
        table[split][label or "—"] += 1
    return table


def balance_preview(*, project: Project, strategy: str, seed: int = 0) -> BalancePlan:
    """What the trainer would see of the train split with this strategy."""
    items = list(
        Example.objects.filter(project=project, split=Example.Split.TRAIN)
        .exclude(status=Example.Status.REJECTED)
        .values_list("pk", "label__name")
    )
    try:
        return balance_plan(items, strategy=strategy, seed=seed)
    except ValueError as exc:
        raise InvalidExample("strategy", str(exc)) from None


def balance_choose(*, project: Project, strategy: str) -> None:
    balance_preview(project=project, strategy=strategy)  # validates the name
    project.balance_strategy = strategy
    project.save(update_fields=["balance_strategy"])
