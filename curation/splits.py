"""Assigning train, validation and test splits, and the class balance the trainer will see.

The algorithms are in curation/splitting.py (plain data); this module reads the examples,
previews, and writes the result through example_bulk_update, so every moved example gets
a revision.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from curation.models import Example, Project
from curation.services import InvalidExample, example_bulk_update
from curation.splitting import BalancePlan, Ratios, SplitItem, assign_splits, balance_plan

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


def _candidates(project: Project, request: SplitRequest):
    qs = Example.objects.filter(project=project).exclude(status=Example.Status.REJECTED)
    if request.only_unassigned:
        qs = qs.filter(split=Example.Split.UNASSIGNED)
    return qs.values_list("pk", "label__name", "metadata", "created_at")


def splits_plan(*, project: Project, request: SplitRequest) -> dict[int, str]:
    """{example id: split} for the request; nothing is written."""
    if request.method == "group" and not request.group_key:
        raise InvalidExample("group_key", _("name the metadata field whose values must stay together."))
    items = []
    for pk, label, metadata, created in _candidates(project, request):
        group = None
        if request.group_key and isinstance(metadata, dict) and metadata.get(request.group_key) is not None:
            group = str(metadata[request.group_key])
        items.append(SplitItem(id=pk, label=label, group=group, created=created))
    try:
        return assign_splits(items, method=request.method, ratios=request.ratios, seed=request.seed)
    except ValueError as exc:
        raise InvalidExample("method", str(exc)) from None


def splits_preview(*, project: Project, request: SplitRequest) -> dict[str, Any]:
    """Per split: how many examples and how many of each label, if the request were applied."""
    plan = splits_plan(project=project, request=request)
    labels = {pk: label for pk, label, _, _ in _candidates(project, request)}
    table: dict[str, Counter] = {split: Counter() for split in SPLITS}
    for pk, split in plan.items():
        table[split][labels.get(pk) or "—"] += 1
    current = dict(Example.objects.filter(project=project).values_list("pk", "split"))
    moved = sum(1 for pk, split in plan.items() if current.get(pk) != split)
    return {"table": table, "total": len(plan), "moved": moved}


@transaction.atomic
def splits_assign(*, project: Project, user: Any, request: SplitRequest) -> int:
    """Write the plan; returns how many examples moved. The request is recorded on the
    project, so the same seed and settings give the same splits again."""
    plan = splits_plan(project=project, request=request)
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
