"""Assigning examples to train, validation and test, and balancing the classes a trainer sees.

Plain Python: items in, ids out. A service reads examples from the database into these
shapes and saves what comes back, so everything here can be tested without a database and
reused by the trainer.

Every function is seeded and sorts its input by id before drawing, so the same examples
with the same seed give the same answer however the database happened to order them.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

SPLITS = ("train", "validation", "test")
METHODS = ("random", "stratified", "group", "chronological")
BALANCE_STRATEGIES = ("none", "oversample", "undersample", "class_weights")
RATIO_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SplitItem:
    id: int
    label: str | None = None
    # A metadata value shared by examples that must stay together (one conversation, one
    # customer); None makes the item a group of its own.
    group: str | None = None
    created: datetime | float | None = None


@dataclass(frozen=True)
class Ratios:
    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1

    def __post_init__(self) -> None:
        for name, value in zip(SPLITS, self.as_tuple(), strict=True):
            # `not 0 <= value <= 1` also catches NaN, which compares false with everything.
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ValueError(
                    f"The {name} ratio is {value!r}; each ratio must be a number between 0 and 1 "
                    "(for example 0.8 for 80%)."
                )
        total = sum(self.as_tuple())
        if abs(total - 1) > RATIO_TOLERANCE:
            raise ValueError(
                f"The ratios add up to {total:g} (train {self.train:g} + validation {self.validation:g} "
                f"+ test {self.test:g}); they must add up to 1, for example 0.8, 0.1 and 0.1."
            )

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.train, self.validation, self.test)


def split_sizes(n: int, ratios: Ratios) -> dict[str, int]:
    """How many of `n` items each split gets: the largest-remainder rounding of n * ratio.

    Plain rounding can make the sizes add up to n - 1 or n + 1; largest remainder always
    adds up to n and never moves a split more than one item away from its exact share.
    A split whose ratio is 0 stays empty.
    """
    weights = ratios.as_tuple()
    total = sum(weights)
    # Dividing by the total absorbs the 1e-9 the ratios may be off by.
    quotas = [n * weight / total for weight in weights]
    # Float noise (0.29 * 100 is 28.999999999999996) is harmless: the seat floored away
    # comes back as the largest remainder.
    sizes = [math.floor(quota) for quota in quotas]
    short = n - sum(sizes)
    # Ties go to the earlier split (train before validation before test).
    by_remainder = sorted(
        (index for index, weight in enumerate(weights) if weight > 0),
        key=lambda index: (-(quotas[index] - sizes[index]), index),
    )
    for index in by_remainder[:short]:
        sizes[index] += 1
    return dict(zip(SPLITS, sizes, strict=True))


def _deal(ordered: Sequence[int], sizes: dict[str, int]) -> dict[int, str]:
    """Hands out ids in order: the first sizes["train"] to train, then validation, then test."""
    assignment: dict[int, str] = {}
    start = 0
    for split in SPLITS:
        for item_id in ordered[start : start + sizes[split]]:
            assignment[item_id] = split
        start += sizes[split]
    return assignment


def _shuffled_ids(items: Iterable[SplitItem], rng: random.Random) -> list[int]:
    ids = sorted(item.id for item in items)
    rng.shuffle(ids)
    return ids


def _label_key(label: str | None) -> tuple[bool, str]:
    """Sorts labels by name with None (unlabelled) last."""
    return (label is None, label or "")


def _split_random(items: Sequence[SplitItem], ratios: Ratios, rng: random.Random) -> dict[int, str]:
    return _deal(_shuffled_ids(items, rng), split_sizes(len(items), ratios))


def _split_stratified(items: Sequence[SplitItem], ratios: Ratios, rng: random.Random) -> dict[int, str]:
    """Splits each label on its own, so a rare label is not left out of validation by chance.

    Unlabelled items form one more stratum. A label with fewer items than it takes to earn a
    seat in a small split (under 10 with 0.8/0.1/0.1) goes entirely to train: rounding per
    label is what keeps each label's share close to the ratios.
    """
    strata: dict[str | None, list[SplitItem]] = defaultdict(list)
    for item in items:
        strata[item.label].append(item)
    assignment: dict[int, str] = {}
    # A fixed stratum order keeps the random stream, and so the result, reproducible.
    for label in sorted(strata, key=_label_key):
        stratum = strata[label]
        assignment.update(_deal(_shuffled_ids(stratum, rng), split_sizes(len(stratum), ratios)))
    return assignment


def _groups(items: Sequence[SplitItem]) -> list[list[int]]:
    """The items' ids gathered by group value, each group sorted, groups in a fixed order."""
    named: dict[str, list[int]] = defaultdict(list)
    singletons: list[list[int]] = []
    for item in sorted(items, key=lambda item: item.id):
        if item.group is None:
            singletons.append([item.id])
        else:
            named[item.group].append(item.id)
    return [named[name] for name in sorted(named)] + singletons


def _split_group(items: Sequence[SplitItem], ratios: Ratios, rng: random.Random) -> dict[int, str]:
    """Keeps every group in one split, so near-duplicates cannot leak from train into test.

    Groups are placed largest first (the shuffle only decides among groups of equal size)
    into the split furthest below its target; a split whose ratio is 0 gets nothing. Each
    split ends within one largest-group size of its target.
    """
    targets = split_sizes(len(items), ratios)
    open_splits = [split for split, weight in zip(SPLITS, ratios.as_tuple(), strict=True) if weight > 0]
    groups = _groups(items)
    rng.shuffle(groups)
    groups.sort(key=len, reverse=True)  # stable: equal sizes keep their shuffled order
    sizes = dict.fromkeys(SPLITS, 0)
    assignment: dict[int, str] = {}
    for group in groups:
        # max() keeps the first of equal deficits, so ties go to train, then validation.
        split = max(open_splits, key=lambda split: targets[split] - sizes[split])
        sizes[split] += len(group)
        assignment.update(dict.fromkeys(group, split))
    return assignment


def _moment(created: datetime | float) -> float:
    """A datetime as seconds since the epoch, so datetimes and plain numbers sort together."""
    return created.timestamp() if isinstance(created, datetime) else float(created)


def _split_chronological(items: Sequence[SplitItem], ratios: Ratios, rng: random.Random) -> dict[int, str]:
    """Oldest items to train, newest to test: a model is then judged on data from its future.

    Deterministic: the seed plays no part. Items without a date count as newest, so they
    land in test rather than leak into train.
    """
    ordered = sorted(
        items,
        key=lambda item: (item.created is None, 0.0 if item.created is None else _moment(item.created), item.id),
    )
    return _deal([item.id for item in ordered], split_sizes(len(items), ratios))


_SPLITTERS: dict[str, Callable[[Sequence[SplitItem], Ratios, random.Random], dict[int, str]]] = {
    "random": _split_random,
    "stratified": _split_stratified,
    "group": _split_group,
    "chronological": _split_chronological,
}


def _check_unique_ids(ids: Iterable[int]) -> None:
    repeated = sorted(item_id for item_id, count in Counter(ids).items() if count > 1)
    if repeated:
        shown = ", ".join(str(item_id) for item_id in repeated[:5])
        raise ValueError(f"Each example may appear once, but these ids repeat: {shown}.")


def assign_splits(items: Sequence[SplitItem], *, method: str, ratios: Ratios, seed: int) -> dict[int, str]:
    """Maps every item's id to "train", "validation" or "test".

    Same items (in any order) and same seed give the same answer, so a split can be
    recreated from the seed alone.
    """
    if method not in _SPLITTERS:
        raise ValueError(f"Unknown split method {method!r}; choose one of: {', '.join(METHODS)}.")
    _check_unique_ids(item.id for item in items)
    return _SPLITTERS[method](items, ratios, random.Random(seed))


def class_distribution(labels: Iterable[str | None]) -> dict[str | None, int]:
    """How many items carry each label, sorted by label name with unlabelled (None) last."""
    counts = Counter(labels)
    return {label: counts[label] for label in sorted(counts, key=_label_key)}


@dataclass(frozen=True)
class BalancePlan:
    strategy: str
    before: dict[str | None, int]
    # What the trainer sees: counts of `ids`, repeats included.
    after: dict[str | None, int]
    # Example ids to train on, sorted, with repeats for oversampling.
    ids: list[int]
    # Per-label loss weights; 1.0 for every label unless the strategy is class_weights.
    weights: dict[str | None, float]


def _ids_by_label(items: Sequence[tuple[int, str | None]]) -> dict[str | None, list[int]]:
    """Ids per label, each list sorted, labels in name order with None last."""
    by_label: dict[str | None, list[int]] = defaultdict(list)
    for item_id, label in sorted(items, key=lambda item: item[0]):
        by_label[label].append(item_id)
    return {label: by_label[label] for label in sorted(by_label, key=_label_key)}


def _oversample(ids: list[int], target: int, rng: random.Random) -> list[int]:
    """Whole copies of `ids` up to `target`, topped up by a random draw of distinct ids.

    Drawing the remainder without replacement means no example is repeated more than once
    beyond the others, so no single example dominates its class.
    """
    copies, extra = divmod(target, len(ids))
    return ids * copies + rng.sample(ids, extra)


def _resample(by_label: dict[str | None, list[int]], strategy: str, rng: random.Random) -> dict[str | None, list[int]]:
    """The ids to train on per label; unlabelled items are passed through untouched."""
    counts = [len(ids) for label, ids in by_label.items() if label is not None]
    if strategy == "oversample" and counts:
        target = max(counts)
        return {label: ids if label is None else _oversample(ids, target, rng) for label, ids in by_label.items()}
    if strategy == "undersample" and counts:
        target = min(counts)
        return {label: ids if label is None else rng.sample(ids, target) for label, ids in by_label.items()}
    return by_label


def _balanced_weights(before: dict[str | None, int]) -> dict[str | None, float]:
    """scikit-learn's "balanced" weights, n_samples / (n_classes * n_c), over labelled items.

    A rare class then costs as much in the loss, in total, as a common one. Unlabelled
    items are not a class and keep a weight of 1.
    """
    classes = {label: count for label, count in before.items() if label is not None}
    n_samples = sum(classes.values())
    weights = {label: n_samples / (len(classes) * count) for label, count in classes.items()}
    return {label: weights.get(label, 1.0) for label in before}


def balance_plan(items: Sequence[tuple[int, str | None]], *, strategy: str, seed: int) -> BalancePlan:
    """What to train on so that a majority label does not drown the others.

    `items` are (example id, label) pairs. Oversampling repeats examples of every label up
    to the majority count, undersampling draws every label down to the minority count, and
    class weights leave the examples alone and weight the loss instead.
    """
    if strategy not in BALANCE_STRATEGIES:
        raise ValueError(f"Unknown balance strategy {strategy!r}; choose one of: {', '.join(BALANCE_STRATEGIES)}.")
    _check_unique_ids(item_id for item_id, _label in items)
    by_label = _ids_by_label(items)
    before = {label: len(ids) for label, ids in by_label.items()}
    chosen = _resample(by_label, strategy, random.Random(seed))
    ids = sorted(item_id for label_ids in chosen.values() for item_id in label_ids)
    after = {label: len(label_ids) for label, label_ids in chosen.items()}
    weights = _balanced_weights(before) if strategy == "class_weights" else dict.fromkeys(before, 1.0)
    return BalancePlan(strategy=strategy, before=before, after=after, ids=ids, weights=weights)
