"""Where an example's label came from, for the pages that filter or export by it.

An example's label is from rules while ``Example.weak_label`` is set (the weak label names the
run, and ``accepted_from`` the model); a person's edit clears it. These reads are for the
examples browser and the export, which belong to other features.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from curation.models import Example

# The choices a filter offers: no label, a person's label, any rules' label.
PERSON, RULES, NONE = "person", "rules", "none"
LABEL_SOURCES = (PERSON, RULES, NONE)


def examples_by_label_source(
    examples: QuerySet[Example], source: str, *, rule_set: int | None = None, model: str | None = None
) -> QuerySet[Example]:
    """``examples`` whose label came from ``source``; for rules, optionally from one rule set
    version (``rule_set``, the run's number) and one model (``label_model`` or ``majority``)."""
    if source == NONE:
        return examples.filter(label__isnull=True)
    if source == PERSON:
        return examples.filter(label__isnull=False, weak_label__isnull=True)
    if source != RULES:
        raise ValueError(f"unknown label source {source!r}")
    examples = examples.filter(weak_label__isnull=False)
    if rule_set is not None:
        examples = examples.filter(weak_label__run__number=rule_set)
    if model is not None:
        examples = examples.filter(weak_label__accepted_from=model)
    return examples


def label_source(example: Example) -> dict[str, Any] | None:
    """An example's label origin, as an export column: None without a label, {"source":
    "person"}, or the rule set, the model and its confidence. Select ``weak_label__run``
    with the examples (core.selectors.PROVENANCE_DEFER keeps the large fields out)."""
    if example.label_id is None:
        return None
    weak = example.weak_label if example.weak_label_id is not None else None
    if weak is None:
        return {"source": PERSON}
    return {
        "source": RULES,
        "rule_set": weak.run.number,
        "model": weak.accepted_from or None,
        "probability": weak.accepted_confidence,
    }
