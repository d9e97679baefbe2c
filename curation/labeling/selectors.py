"""Reads for the labeling pages and the dashboard: each label's key, the suggestion an
annotator may be shown, and agreement. Reads only; a fixed number of queries whatever the data
size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from curation.labeling import agreement
from curation.labeling.services import annotations_by_example
from curation.models import Annotation, Example, Label, Membership, Project, WeakLabel

# The keys labels without a shortcut of their own are given, in this order.
NUMBER_KEYS = "1234567890"


def labels_with_keys(*, project: Project) -> list[Label]:
    """The project's labels, each with ``key``: its own shortcut, or else the next number key
    no other label uses (1-9, then 0), handed out in the order the labels were made so a label
    keeps its key from one page to the next. Past ten, a label may have no key ("").
    Retired labels are not offered, so they hold no key.
    Sorted as a keyboard reads: numbers, then other keys, then labels without one."""
    labels = list(project.labels.filter(retired=False).order_by("id"))
    taken = {label.shortcut for label in labels if label.shortcut}
    free = iter([key for key in NUMBER_KEYS if key not in taken])
    for label in labels:
        label.key = label.shortcut or next(free, "")

    def place(label: Label) -> tuple[int, str, str]:
        if not label.key:
            return (2, "", label.name)
        if label.key in NUMBER_KEYS:
            return (0, str(NUMBER_KEYS.index(label.key)), label.name)
        return (1, label.key, label.name)

    return sorted(labels, key=place)


def keys_in_words(keys: list[str]) -> str:
    """The label keys for the page's key help: "1–5" for a run of number keys from 1, else the
    keys themselves ("1, 2, a")."""
    if len(keys) >= 3 and "".join(keys) == NUMBER_KEYS[: len(keys)]:
        return f"{keys[0]}–{keys[-1]}" if len(keys) <= 9 else "1–9, 0"
    return ", ".join(keys)


def label_suggestion(*, project: Project, example: Example | None) -> dict[str, Any] | None:
    """The example's current label as a suggestion, when its project shows suggestions:
    the label and, for one accepted from the rules, its weak label (run number, model and
    confidence); None otherwise. Never a choice made for the annotator."""
    if example is None or example.label_id is None:
        return None
    if project.label_suggestions != Project.LabelSuggestions.SUGGESTION:
        return None
    weak = None
    if example.weak_label_id is not None:
        weak = WeakLabel.objects.select_related("run").filter(pk=example.weak_label_id).first()
    return {"label": example.label, "weak": weak}


def resolution_choices(*, project: Project, answers: Iterable[Annotation]) -> dict[str, Any]:
    """The gold labels a reviewer resolving a disagreement picks from: the labels with their keys,
    each with ``voters`` (who chose it; a retired label someone chose is kept, marked ``retired``),
    and ``majority``, the label strictly more annotators chose than any other (None when the
    most-chosen labels are tied or nobody chose one): shown as a suggestion, never chosen."""
    voters: dict[int, list[str]] = defaultdict(list)
    chosen: dict[int, Label] = {}
    for answer in answers:
        if answer.label_id:
            voters[answer.label_id].append(answer.annotator.username)
            chosen[answer.label_id] = answer.label
    labels = labels_with_keys(project=project)
    offered = {label.pk for label in labels}
    for label in sorted((chosen[pk] for pk in chosen if pk not in offered), key=lambda label: label.name):
        label.key = ""
        labels.append(label)
    for label in labels:
        label.voters = sorted(voters.get(label.pk, []))
    ranked = sorted((len(names) for names in voters.values()), reverse=True)
    majority = None
    if ranked and (len(ranked) == 1 or ranked[0] > ranked[1]):
        majority = next(label for label in labels if len(label.voters) == ranked[0])
    return {"labels": labels, "majority": majority, "answered": sum(ranked)}


def agreement_summary(*, project: Project) -> dict[str, Any]:
    by_example = annotations_by_example(project=project)
    names = dict(Membership.objects.filter(project=project).values_list("user_id", "user__username"))
    pairs = [
        {
            "a": names.get(p.annotator_a, p.annotator_a),
            "b": names.get(p.annotator_b, p.annotator_b),
            "units": p.units,
            "kappa": p.kappa,
            "band": agreement.interpret(p.kappa),
        }
        for p in agreement.pairwise_cohen(by_example)
    ]
    alpha = agreement.krippendorff_alpha(by_example)
    fleiss = agreement.fleiss_kappa(by_example)
    return {
        "units": sum(1 for labels in by_example.values() if len(labels) >= 2),
        "alpha": alpha,
        "alpha_band": agreement.interpret(alpha),
        "fleiss": fleiss,
        "fleiss_band": agreement.interpret(fleiss),
        "pairs": pairs,
        "per_label": [
            {"label": label, "alpha": value, "band": agreement.interpret(value)}
            for label, value in sorted(agreement.per_label_agreement(by_example).items(), key=lambda kv: str(kv[0]))
        ],
    }
