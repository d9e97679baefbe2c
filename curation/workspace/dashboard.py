"""What the project dashboard shows: counts, class balance, annotator progress, agreement,
and what needs attention. Reads only; a fixed number of queries whatever the data size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q

from curation.labeling.selectors import agreement_summary
from curation.labeling.services import disagreement_list
from curation.models import Annotation, Example, Membership, Project, Role

SPLIT_COLOURS = {"train": "#9a3412", "validation": "#d97706", "test": "#2563eb", "unassigned": "#cbd5e1"}


@dataclass(frozen=True)
class Segment:
    name: str
    value: int
    x: float
    width: float
    colour: str


@dataclass(frozen=True)
class Bar:
    """One row of a horizontal stacked bar chart, in SVG user units."""

    label: str
    total: int
    y: float
    segments: list[Segment]


def stacked_bars(rows: list[tuple[str, dict[str, int]]], colours: dict[str, str], width: float = 260) -> list[Bar]:
    """Geometry of a horizontal stacked bar chart, scaled to the longest row."""
    longest = max((sum(parts.values()) for _, parts in rows), default=0) or 1
    bars = []
    for i, (label, parts) in enumerate(rows):
        x = 0.0
        segments = []
        for name, colour in colours.items():
            value = parts.get(name, 0)
            w = width * value / longest
            if value:
                segments.append(Segment(name, value, x, w, colour))
            x += w
        bars.append(Bar(label, sum(parts.values()), 28.0 * i, segments))
    return bars


def class_balance(*, project: Project) -> list[tuple[str, dict[str, int]]]:
    """Examples per label, broken down by split (unlabelled examples last, as '—')."""
    counts: dict[str, dict[str, int]] = {name: {} for name in project.labels.values_list("name", flat=True)}
    rows = (
        Example.objects.filter(project=project).values_list("label__name", "split").annotate(n=Count("id")).order_by()
    )
    for label, split, n in rows:
        counts.setdefault(label if label is not None else "—", {})[split] = n
    return list(counts.items())


def annotator_progress(*, project: Project) -> list[dict[str, Any]]:
    """For each member who labels: submitted, skipped and open drafts."""
    members = (
        Membership.objects.filter(project=project, role__in=[Role.ANNOTATOR, Role.REVIEWER, Role.ADMIN])
        .select_related("user")
        .order_by("user__username")
    )
    counts = {
        row["annotator_id"]: row
        for row in Annotation.objects.filter(example__project=project)
        .values("annotator_id")
        .annotate(
            submitted=Count("id", filter=Q(status=Annotation.Status.SUBMITTED)),
            skipped=Count("id", filter=Q(status=Annotation.Status.SKIPPED)),
            drafts=Count("id", filter=Q(status=Annotation.Status.DRAFT)),
        )
        .order_by()
    }
    return [
        {
            "user": m.user.username,
            "role": m.get_role_display(),
            "submitted": counts.get(m.user_id, {}).get("submitted", 0),
            "skipped": counts.get(m.user_id, {}).get("skipped", 0),
            "drafts": counts.get(m.user_id, {}).get("drafts", 0),
        }
        for m in members
    ]


def attention(*, project: Project) -> dict[str, int]:
    examples = Example.objects.filter(project=project)
    counts = examples.aggregate(
        drafts=Count("id", filter=Q(status=Example.Status.DRAFT, source=Example.Source.SYNTHETIC)),
        needs_review=Count("id", filter=Q(status=Example.Status.NEEDS_REVIEW)),
        unlabelled=Count("id", filter=Q(label__isnull=True)),
    )
    counts["disagreements"] = disagreement_list(project=project).count()
    return counts


def dashboard(*, project: Project) -> dict[str, Any]:
    balance = class_balance(project=project)
    progress = annotator_progress(project=project)
    most = max((p["submitted"] + p["skipped"] for p in progress), default=0) or 1
    return {
        "balance_bars": stacked_bars(balance, SPLIT_COLOURS),
        "balance_height": 28 * len(balance) + 8,
        "progress_height": 28 * len(progress) + 8,
        "split_colours": {Example.Split(name).label: colour for name, colour in SPLIT_COLOURS.items()},
        "progress": [
            {**p, "y": 28 * i, "width": 160 * (p["submitted"] + p["skipped"]) / most} for i, p in enumerate(progress)
        ],
        "agreement": agreement_summary(project=project),
        "attention": attention(project=project),
    }
