"""Reads that are more than one line."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils.translation import gettext as _

from curation.core.limits import search_words
from curation.core.selectors import METADATA_KEY, PROVENANCE_DEFER, SORTS
from curation.models import Annotation, Example, Project
from curation.rules.selectors import LABEL_SOURCES, examples_by_label_source


def example_list(*, project: Project, filters: dict[str, Any] | None = None) -> QuerySet[Example]:
    """The project's examples narrowed by the browser's filters (unknown values are ignored
    by the caller's form; here they simply match nothing). A search longer than the limits
    raises LimitExceeded (an InvalidExample naming "q")."""
    filters = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    qs = Example.objects.filter(project=project).select_related("label", "weak_label__run").defer(*PROVENANCE_DEFER)
    for name in ("split", "status", "source"):
        if name in filters:
            qs = qs.filter(**{name: filters[name]})
    if "label" in filters:
        qs = qs.filter(label__isnull=True) if filters["label"] == "-" else qs.filter(label__name=filters["label"])
    for word in search_words(str(filters.get("q", ""))):
        qs = qs.filter(search_text__contains=word)
    if annotator := filters.get("annotator"):
        answered = Annotation.objects.filter(
            example=OuterRef("pk"), annotator__username=annotator, status=Annotation.Status.SUBMITTED
        )
        qs = qs.filter(Exists(answered))
    if filters.get("disagreement"):
        qs = qs.filter(annotation_count__gte=max(project.annotations_per_example, 2), resolved_at__isnull=True)
    if check := filters.get("check"):
        qs = _with_check(project, qs, check)
    if (origin := filters.get("label_source")) in LABEL_SOURCES:
        qs = examples_by_label_source(qs, origin)
    key = filters.get("meta_key", "")
    if key and METADATA_KEY.match(key) and "meta_value" in filters:
        # KeyTextTransform, not metadata__<key>: a key must never become a lookup.
        value = Cast(KeyTextTransform(key, "metadata"), output_field=TextField())
        qs = qs.annotate(metadata_match=value).filter(metadata_match=str(filters["meta_value"]))
    order = SORTS.get(filters.get("sort", ""), "id")
    if order.lstrip("-") in NULLABLE_SORTS:
        # Examples without a label first, on SQLite and PostgreSQL alike (they differ by default).
        column = F(order.lstrip("-"))
        return qs.order_by(
            column.desc(nulls_last=True) if order.startswith("-") else column.asc(nulls_first=True), "id"
        )
    return qs.order_by(order, "id")


NULLABLE_SORTS = ("label__name",)


# What the readiness report links to: the examples a quality line is about.
CHECKS = ("duplicate", "leak", "pii", "truncated", "over_context", "format", "facts", "drafts")


def _with_check(project: Project, qs: QuerySet[Example], check: str) -> QuerySet[Example]:
    from curation.quality import services as quality

    if check == "drafts":
        return qs.filter(
            source__in=[Example.Source.SYNTHETIC, Example.Source.AUGMENTED],
            status__in=[Example.Status.DRAFT, Example.Status.NEEDS_REVIEW],
        )
    if check == "leak":
        return qs.filter(pk__in=[leak.evaluated.pk for leak in quality.leaks(project)])
    scan = quality.latest_scan(project)
    if scan is None or check not in CHECKS:
        return qs.none()
    checks = quality.fresh_checks(scan)
    flagged = {
        "duplicate": Q(cluster__isnull=False, cluster__resolved_at__isnull=True),
        "pii": Q(pii_count__gt=0),
        "truncated": Q(truncated=True),
        "over_context": Q(over_context=True),
        "format": ~Q(format_problems=[]),
        "facts": Q(brings_facts=True),
    }[check]
    return qs.filter(pk__in=checks.filter(flagged).values("example_id"))


@dataclass(frozen=True)
class Tally:
    """How many examples have each combination of status, source, split and label: the rows
    the overview's counts, the class balance and the attention card are all sums of."""

    rows: list[tuple[str, str, str, int | None, int, int]]  # status, source, split, label id, n, with weak label
    labels: list[tuple[int, str]]  # the project's labels (id, name), by name

    @property
    def total(self) -> int:
        return sum(row[4] for row in self.rows)

    def by(self, index: int) -> Counter:
        found: Counter = Counter()
        for row in self.rows:
            found[row[index]] += row[4]
        return found


def example_tally(*, project: Project) -> Tally:
    """One grouped query, read from the (project, status, source, split, label, weak label)
    covering index (migration 0017) without touching the examples' rows, however many."""
    rows = (
        Example.objects.filter(project=project)
        .values_list("status", "source", "split", "label_id")
        .annotate(n=Count("id"), weak=Count("weak_label_id"))
        .order_by()
    )
    return Tally(rows=list(rows), labels=list(project.labels.order_by("name").values_list("id", "name")))


def project_counts(*, project: Project, tally: Tally | None = None) -> dict[str, list[tuple[str, int]]]:
    """Example counts by status, source, split and label, for the overview (from ``tally`` when
    the caller has it: the dashboard's, so the page asks once)."""
    tally = tally or example_tally(project=project)
    counts: dict[str, list[tuple[str, int]]] = {}
    for index, field, choices in (
        (0, "status", Example.Status),
        (1, "source", Example.Source),
        (2, "split", Example.Split),
    ):
        found = tally.by(index)
        counts[field] = [(label, found.get(value, 0)) for value, label in choices.choices]
    by_label = tally.by(3)
    counts["label"] = [(name, by_label.get(pk, 0)) for pk, name in tally.labels]
    if by_label.get(None):
        counts["label"].append(("—", by_label[None]))
    # Where labels came from: accepting weak labels does not change an example's source, so
    # "Labeled by rules" above counts rule-made examples, and this counts rule-made labels.
    labelled = [row for row in tally.rows if row[3] is not None]
    rules = sum(row[5] for row in labelled)
    counts["label_source"] = [
        (_("A person"), sum(row[4] for row in labelled) - rules),
        (_("Rules"), rules),
        (_("No label"), by_label.get(None, 0)),
    ]
    return counts
