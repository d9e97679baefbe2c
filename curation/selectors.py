"""Reads that are more than one line."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from curation.models import Example, Project

FILTERS = ("split", "status", "source", "label")


def example_list(*, project: Project, filters: dict[str, Any] | None = None) -> QuerySet[Example]:
    """The project's examples narrowed by split, status, source and label (by name)."""
    qs = Example.objects.filter(project=project).select_related("label")
    for name, value in (filters or {}).items():
        if value in (None, ""):
            continue
        if name == "label":
            qs = qs.filter(label__isnull=True) if value == "-" else qs.filter(label__name=value)
        elif name in FILTERS:
            qs = qs.filter(**{name: value})
    return qs


def project_counts(*, project: Project) -> dict[str, list[tuple[str, int]]]:
    """Example counts by status, source, split and label, for the overview."""
    base = Example.objects.filter(project=project)
    counts: dict[str, list[tuple[str, int]]] = {}
    for field, choices in (
        ("status", Example.Status),
        ("source", Example.Source),
        ("split", Example.Split),
    ):
        found = dict(base.values_list(field).annotate(n=Count("id")).order_by())
        counts[field] = [(label, found.get(value, 0)) for value, label in choices.choices]
    by_label = dict(base.values_list("label__name").annotate(n=Count("id")).order_by())
    counts["label"] = [(name, by_label.get(name, 0)) for name in project.labels.values_list("name", flat=True)]
    if by_label.get(None):
        counts["label"].append(("—", by_label[None]))
    return counts
