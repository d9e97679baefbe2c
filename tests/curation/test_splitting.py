from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from curation.splits.splitting import (
    BALANCE_STRATEGIES,
    METHODS,
    Ratios,
    SplitItem,
    assign_splits,
    balance_plan,
    class_distribution,
    split_sizes,
)

SEEDED_METHODS = ("random", "stratified", "group")


def sizes_of(assignment: dict[int, str]) -> tuple[int, int, int]:
    counts = Counter(assignment.values())
    return (counts["train"], counts["validation"], counts["test"])


def mixed_items(n: int = 60) -> list[SplitItem]:
    """Items with labels, some groups and dates, so every method has something to work on."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        SplitItem(
            id=100 + i,
            label=("a", "b", "c", None)[i % 4],
            group=f"g{i // 3}" if i % 2 else None,
            created=start + timedelta(hours=i * 7 % n),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("method", METHODS)
def test_it_assigns_every_item_to_one_of_the_three_splits(method: str) -> None:
    items = mixed_items()
    assignment = assign_splits(items, method=method, ratios=Ratios(), seed=1)
    assert set(assignment) == {item.id for item in items}
    assert set(assignment.values()) == {"train", "validation", "test"}


@pytest.mark.parametrize("method", METHODS)
def test_it_gives_the_same_assignment_whatever_the_input_order(method: str) -> None:
    items = mixed_items()
    shuffled = items[:]
    random.Random(99).shuffle(shuffled)
    first = assign_splits(items, method=method, ratios=Ratios(), seed=7)
    again = assign_splits(shuffled, method=method, ratios=Ratios(), seed=7)
    backwards = assign_splits(items[::-1], method=method, ratios=Ratios(), seed=7)
    assert first == again == backwards


@pytest.mark.parametrize("method", SEEDED_METHODS)
def test_a_different_seed_gives_a_different_assignment(method: str) -> None:
    items = mixed_items()
    assert assign_splits(items, method=method, ratios=Ratios(), seed=1) != assign_splits(
        items, method=method, ratios=Ratios(), seed=2
    )


@pytest.mark.parametrize(
    ("n", "ratios", "expected"),
    [
        (10, Ratios(0.8, 0.1, 0.1), (8, 1, 1)),
        (7, Ratios(0.5, 0.25, 0.25), (3, 2, 2)),
        (3, Ratios(0.8, 0.1, 0.1), (3, 0, 0)),
        (11, Ratios(0.8, 0.1, 0.1), (9, 1, 1)),
        (100, Ratios(0.29, 0.71, 0.0), (29, 71, 0)),
        (0, Ratios(), (0, 0, 0)),
    ],
)
def test_random_split_sizes_are_the_largest_remainder_rounding(
    n: int, ratios: Ratios, expected: tuple[int, int, int]
) -> None:
    items = [SplitItem(id=i) for i in range(n)]
    assert sizes_of(assign_splits(items, method="random", ratios=ratios, seed=0)) == expected


def test_split_sizes_add_up_and_stay_within_one_of_the_exact_share() -> None:
    rng = random.Random(0)
    for _ in range(500):
        cuts = sorted(rng.random() for _ in range(2))
        ratios = Ratios(cuts[0], cuts[1] - cuts[0], 1 - cuts[1])
        n = rng.randrange(0, 300)
        sizes = split_sizes(n, ratios)
        assert sum(sizes.values()) == n
        for split, ratio in zip(sizes, ratios.as_tuple(), strict=True):
            assert abs(sizes[split] - n * ratio) < 1


def test_stratified_keeps_each_labels_proportions() -> None:
    items = [SplitItem(id=i, label="a" if i < 80 else "b") for i in range(100)]
    assignment = assign_splits(items, method="stratified", ratios=Ratios(0.8, 0.1, 0.1), seed=3)
    per_split = Counter((assignment[item.id], item.label) for item in items)
    assert per_split == {
        ("train", "a"): 64,
        ("train", "b"): 16,
        ("validation", "a"): 8,
        ("validation", "b"): 2,
        ("test", "a"): 8,
        ("test", "b"): 2,
    }


def test_stratified_splits_unlabelled_items_as_a_stratum_of_their_own() -> None:
    # Alone, 15 'a' rounds to 12/2/1 and 5 None to 4/1/0; pooled they would be 16/2/2.
    items = [SplitItem(id=i, label="a" if i < 15 else None) for i in range(20)]
    assignment = assign_splits(items, method="stratified", ratios=Ratios(0.8, 0.1, 0.1), seed=3)
    unlabelled = {item.id: assignment[item.id] for item in items if item.label is None}
    assert sizes_of(unlabelled) == (4, 1, 0)
    assert sizes_of(assignment) == (16, 3, 1)


def test_random_does_not_keep_labels_together_in_order() -> None:
    # Guards against a "random" split that silently sorts by label or id.
    items = [SplitItem(id=i) for i in range(100)]
    assignment = assign_splits(items, method="random", ratios=Ratios(), seed=5)
    test_ids = sorted(item_id for item_id, split in assignment.items() if split == "test")
    assert test_ids != list(range(90, 100))


def test_group_never_straddles_splits_and_sizes_stay_within_the_largest_group() -> None:
    rng = random.Random(2024)
    for seed in range(200):
        ratios = rng.choice([Ratios(), Ratios(0.6, 0.2, 0.2), Ratios(0.5, 0.5, 0.0), Ratios(0.34, 0.33, 0.33)])
        items = []
        for group_number in range(rng.randrange(1, 30)):
            for _ in range(rng.randrange(1, 12)):
                items.append(SplitItem(id=len(items), group=f"g{group_number}"))
        items += [SplitItem(id=len(items) + i) for i in range(rng.randrange(0, 10))]
        assignment = assign_splits(items, method="group", ratios=ratios, seed=seed)

        splits_per_group: dict[str, set[str]] = {}
        for item in items:
            if item.group is not None:
                splits_per_group.setdefault(item.group, set()).add(assignment[item.id])
        assert all(len(splits) == 1 for splits in splits_per_group.values())

        largest = max(Counter(item.group or f"own{item.id}" for item in items).values())
        targets = split_sizes(len(items), ratios)
        for split, size in zip(targets, sizes_of(assignment), strict=True):
            assert abs(size - targets[split]) <= largest
            if targets[split] == 0:
                assert size == 0


def test_group_treats_items_without_a_group_as_their_own_groups() -> None:
    items = [SplitItem(id=i) for i in range(10)]
    assert sizes_of(assign_splits(items, method="group", ratios=Ratios(), seed=0)) == (8, 1, 1)


def test_group_places_a_group_too_big_for_validation_in_train() -> None:
    items = [SplitItem(id=i, group="big" if i < 5 else f"g{i}") for i in range(20)]
    for seed in range(20):
        assignment = assign_splits(items, method="group", ratios=Ratios(), seed=seed)
        assert {assignment[i] for i in range(5)} == {"train"}
        assert sizes_of(assignment) == (16, 2, 2)


def test_chronological_puts_the_newest_items_in_test_and_the_oldest_in_train() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    items = [SplitItem(id=i, created=start + timedelta(days=(i * 3) % 10)) for i in range(10)]
    assignment = assign_splits(items, method="chronological", ratios=Ratios(), seed=0)
    by_age = sorted(items, key=lambda item: item.created)
    assert [assignment[item.id] for item in by_age] == ["train"] * 8 + ["validation", "test"]


def test_chronological_puts_undated_items_last_and_breaks_ties_by_id() -> None:
    items = [
        SplitItem(id=4, created=None),
        SplitItem(id=3, created=5.0),
        SplitItem(id=2, created=5.0),
        SplitItem(id=1, created=9.0),
    ]
    assignment = assign_splits(items, method="chronological", ratios=Ratios(0.5, 0.25, 0.25), seed=0)
    assert assignment == {2: "train", 3: "train", 1: "validation", 4: "test"}


@pytest.mark.parametrize("method", METHODS)
def test_a_zero_ratio_leaves_that_split_empty(method: str) -> None:
    items = mixed_items(37)
    assignment = assign_splits(items, method=method, ratios=Ratios(0.7, 0.0, 0.3), seed=4)
    assert "validation" not in assignment.values()
    assert set(assignment.values()) == {"train", "test"}


@pytest.mark.parametrize(
    ("ratios", "message"),
    [
        ((0.8, 0.1, 0.2), "add up to 1.1"),
        ((0.5, 0.1, 0.1), "add up to 0.7"),
        ((1.2, -0.1, -0.1), "train ratio is 1.2"),
        ((0.9, -0.1, 0.2), "validation ratio is -0.1"),
        ((0.8, 0.1, math.nan), "test ratio is nan"),
        ((0.8, 0.1, "0.1"), "test ratio is '0.1'"),
    ],
)
def test_it_rejects_ratios_that_are_out_of_range_or_do_not_add_up_to_one(
    ratios: tuple[float, float, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Ratios(*ratios)


def test_it_accepts_ratios_that_add_up_to_one_within_rounding() -> None:
    assert Ratios(0.7, 0.2, 0.1).train == 0.7  # 0.7 + 0.2 + 0.1 is 0.9999999999999999


def test_it_rejects_an_unknown_method_and_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="random, stratified, group, chronological"):
        assign_splits(mixed_items(), method="kfold", ratios=Ratios(), seed=0)


def test_it_rejects_repeated_ids() -> None:
    with pytest.raises(ValueError, match="ids repeat: 3"):
        assign_splits([SplitItem(id=3), SplitItem(id=3)], method="random", ratios=Ratios(), seed=0)


def test_class_distribution_counts_labels_in_name_order_with_unlabelled_last() -> None:
    distribution = class_distribution(["b", None, "a", "b", None, "c", "b"])
    assert list(distribution.items()) == [("a", 1), ("b", 3), ("c", 1), (None, 2)]


def imbalanced() -> list[tuple[int, str | None]]:
    return (
        [(i, "spam") for i in range(1, 11)] + [(i, "ham") for i in range(11, 14)] + [(i, None) for i in range(20, 25)]
    )


def labels_of(ids: list[int], items: list[tuple[int, str | None]]) -> list[str | None]:
    label = dict(items)
    return [label[item_id] for item_id in ids]


def test_oversampling_repeats_every_label_up_to_the_majority_count() -> None:
    items = imbalanced()
    plan = balance_plan(items, strategy="oversample", seed=0)
    assert plan.before == {"ham": 3, "spam": 10, None: 5}
    assert plan.after == {"ham": 10, "spam": 10, None: 5}
    assert class_distribution(labels_of(plan.ids, items)) == plan.after
    # 10 ham from 3: three whole copies and one more, so no example is repeated more than 4 times.
    assert sorted(Counter(i for i in plan.ids if i in (11, 12, 13)).values()) == [3, 3, 4]
    assert plan.ids == sorted(plan.ids)
    assert plan.weights == {"ham": 1.0, "spam": 1.0, None: 1.0}


def test_undersampling_draws_every_label_down_to_the_minority_count() -> None:
    items = imbalanced()
    plan = balance_plan(items, strategy="undersample", seed=0)
    assert plan.after == {"ham": 3, "spam": 3, None: 5}
    assert class_distribution(labels_of(plan.ids, items)) == plan.after
    assert len(set(plan.ids)) == len(plan.ids)
    assert {11, 12, 13} <= set(plan.ids)


def test_class_weights_match_scikit_learns_balanced_weights() -> None:
    items = [(i, label) for i, label in enumerate(["a"] * 7 + ["b"] * 2 + ["c"] * 1)] + [(50, None)]
    plan = balance_plan(items, strategy="class_weights", seed=0)
    classes = np.array(["a", "b", "c"])
    expected = compute_class_weight("balanced", classes=classes, y=np.array(["a"] * 7 + ["b"] * 2 + ["c"]))
    assert [plan.weights[label] for label in classes] == pytest.approx(list(expected))
    assert plan.weights[None] == 1.0
    assert plan.ids == sorted(item_id for item_id, _label in items)
    assert plan.after == plan.before


def test_no_balancing_trains_on_every_example_once() -> None:
    items = imbalanced()
    plan = balance_plan(items, strategy="none", seed=0)
    assert plan.ids == sorted(item_id for item_id, _label in items)
    assert plan.after == plan.before
    assert set(plan.weights.values()) == {1.0}


@pytest.mark.parametrize("strategy", BALANCE_STRATEGIES)
def test_balancing_leaves_unlabelled_items_as_they_are(strategy: str) -> None:
    plan = balance_plan(imbalanced(), strategy=strategy, seed=0)
    assert [item_id for item_id in plan.ids if item_id >= 20] == [20, 21, 22, 23, 24]
    assert plan.weights[None] == 1.0


def test_oversampling_repeats_no_example_more_than_once_beyond_the_others() -> None:
    items = [(i, "common") for i in range(20)] + [(100 + i, "rare") for i in range(7)]
    for seed in range(20):
        plan = balance_plan(items, strategy="oversample", seed=seed)
        repeats = Counter(item_id for item_id in plan.ids if item_id >= 100)
        assert set(repeats) == set(range(100, 107))
        assert max(repeats.values()) - min(repeats.values()) <= 1


@pytest.mark.parametrize("strategy", ["oversample", "undersample"])
def test_balancing_is_reproducible_across_input_order_and_changes_with_the_seed(strategy: str) -> None:
    items = [(i, "common") for i in range(40)] + [(100 + i, "rare") for i in range(7)]
    first = balance_plan(items, strategy=strategy, seed=1)
    assert balance_plan(items[::-1], strategy=strategy, seed=1) == first
    assert balance_plan(items, strategy=strategy, seed=2).ids != first.ids


def test_balancing_with_only_unlabelled_items_changes_nothing() -> None:
    plan = balance_plan([(1, None), (2, None)], strategy="oversample", seed=0)
    assert plan.ids == [1, 2]
    assert plan.after == {None: 2}


def test_it_rejects_an_unknown_balance_strategy() -> None:
    with pytest.raises(ValueError, match="none, oversample, undersample, class_weights"):
        balance_plan(imbalanced(), strategy="smote", seed=0)
