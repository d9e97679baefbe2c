"""Reads that are more than one line."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, TextField
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
    return qs.order_by(SORTS.get(filters.get("sort", ""), "id"), "id")


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
    # Where labels came from: accepting weak labels does not change an example's source, so
    # "Labeled by rules" above counts rule-made examples, and this counts rule-made labels.
    origin = base.aggregate(
        person=Count("id", filter=Q(label__isnull=False, weak_label__isnull=True)),
        rules=Count("id", filter=Q(label__isnull=False, weak_label__isnull=False)),
        none=Count("id", filter=Q(label__isnull=True)),
    )
    counts["label_source"] = [
        (_("A person"), origin["person"]),
        (_("Rules"), origin["rules"]),
        (_("No label"), origin["none"]),
    ]
    return counts
