"""What the project dashboard shows: counts, class balance, annotator progress, agreement,
and what needs attention. Reads only; a fixed number of queries whatever the data size, and
the agreement, whose cost grows with the annotations, is cached until one of them changes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, Q, Sum

from curation.labeling.selectors import agreement_summary
from curation.labeling.services import disagreement_list
from curation.models import Annotation, Example, Membership, Project, Role
from curation.workspace.selectors import Tally, example_tally, project_counts

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


def class_balance(*, project: Project, tally: Tally | None = None) -> list[tuple[str, dict[str, int]]]:
    """Examples per label, broken down by split (unlabelled examples last, as '—')."""
    tally = tally or example_tally(project=project)
    names = dict(tally.labels)
    counts: dict[str, dict[str, int]] = {name: {} for _pk, name in tally.labels}
    for _status, _source, split, label_id, n, _weak in tally.rows:
        parts = counts.setdefault(names.get(label_id, f"#{label_id}") if label_id is not None else "—", {})
        parts[split] = parts.get(split, 0) + n
    return list(counts.items())


@dataclass(frozen=True)
class Progress:
    rows: list[dict[str, Any]]
    stamp: tuple  # changes whenever a submitted annotation is added, changed or removed


def annotator_progress(*, project: Project, members: list[Membership] | None = None) -> Progress:
    """For each member who labels: submitted, skipped and open drafts. The same query gives
    the stamp of the submitted annotations that the cached agreement is keyed by."""
    if members is None:
        members = list(Membership.objects.filter(project=project).select_related("user").order_by("user__username"))
    submitted = Q(status=Annotation.Status.SUBMITTED)
    counts = {
        row["annotator_id"]: row
        for row in Annotation.objects.filter(example__project=project)
        .values("annotator_id")
        .annotate(
            submitted=Count("id", filter=submitted),
            skipped=Count("id", filter=Q(status=Annotation.Status.SKIPPED)),
            drafts=Count("id", filter=Q(status=Annotation.Status.DRAFT)),
            last_id=Max("id", filter=submitted),
            last_change=Max("updated_at", filter=submitted),
            label_sum=Sum("label_id", filter=submitted),
        )
        .order_by()
    }
    rows = [
        {
            "user": m.user.username,
            "role": m.get_role_display(),
            "submitted": counts.get(m.user_id, {}).get("submitted", 0),
            "skipped": counts.get(m.user_id, {}).get("skipped", 0),
            "drafts": counts.get(m.user_id, {}).get("drafts", 0),
        }
        for m in members
        if m.role in LABELLING_ROLES
    ]
    stamp = tuple(
        sorted(
            (pk, row["submitted"], row["last_id"], str(row["last_change"]), row["label_sum"])
            for pk, row in counts.items()
            if row["submitted"]
        )
    )
    return Progress(rows, stamp)


LABELLING_ROLES = (Role.ANNOTATOR, Role.REVIEWER, Role.ADMIN)


def cached_agreement(*, project: Project, stamp: tuple, members: list[Membership], tally: Tally) -> dict[str, Any]:
    """agreement_summary, computed again only when its inputs change: the key holds the
    submitted annotations' stamp (count, last id, last change and sum of label ids per
    annotator, so a new, changed, relabelled, merged or removed annotation makes a new key), the
    label names and the members' names the summary shows. Saving an answer moves its last
    change on; the only bulk change of answers, merging a label into another, moves their label
    sum (a bulk update swapping two answers' labels would not, and nothing does one). Nothing
    needs to delete an entry: a stale one is never asked for again and expires."""
    names = sorted((m.user_id, m.user.username) for m in members)
    digest = hashlib.sha256(repr((stamp, tally.labels, names)).encode()).hexdigest()
    key = f"shikomi:agreement:{project.pk}:{digest}"
    found = cache.get(key)
    if found is None:
        found = agreement_summary(project=project)
        cache.set(key, found, timeout=AGREEMENT_CACHE_SECONDS)
    return found


AGREEMENT_CACHE_SECONDS = 7 * 24 * 3600


def attention(*, project: Project, tally: Tally | None = None) -> dict[str, int]:
    """What waits for someone: generated drafts, examples that need review, examples without
    a label, disagreements. From the dashboard's tally when given, else one aggregate (the
    project menu's, on every project page) read from the same covering index."""
    if tally is None:
        counts = Example.objects.filter(project=project).aggregate(
            drafts=Count("id", filter=Q(status=Example.Status.DRAFT, source=Example.Source.SYNTHETIC)),
            needs_review=Count("id", filter=Q(status=Example.Status.NEEDS_REVIEW)),
            unlabelled=Count("id", filter=Q(label__isnull=True)),
        )
    else:
        counts = {"drafts": 0, "needs_review": 0, "unlabelled": 0}
        for status, source, _split, label_id, n, _weak in tally.rows:
            if status == Example.Status.DRAFT and source == Example.Source.SYNTHETIC:
                counts["drafts"] += n
            if status == Example.Status.NEEDS_REVIEW:
                counts["needs_review"] += n
            if label_id is None:
                counts["unlabelled"] += n
    counts["disagreements"] = disagreement_list(project=project).count()
    return counts


def dashboard(*, project: Project) -> dict[str, Any]:
    """Everything the project page shows about its examples, in six queries whatever their
    number: the tally (one grouped query over a covering index), the labels, the members,
    the annotations per annotator, the disagreements and the agreement's cache entry (the
    agreement itself only when an annotation changed). ``counts`` and ``total`` are the
    overview's, so the page needs no other count of its examples."""
    tally = example_tally(project=project)
    members = list(Membership.objects.filter(project=project).select_related("user").order_by("user__username"))
    balance = class_balance(project=project, tally=tally)
    progress = annotator_progress(project=project, members=members)
    most = max((p["submitted"] + p["skipped"] for p in progress.rows), default=0) or 1
    return {
        "balance_bars": stacked_bars(balance, SPLIT_COLOURS),
        "balance_height": 28 * len(balance) + 8,
        "progress_height": 28 * len(progress.rows) + 8,
        "split_colours": {Example.Split(name).label: colour for name, colour in SPLIT_COLOURS.items()},
        "progress": [
            {**p, "y": 28 * i, "width": 160 * (p["submitted"] + p["skipped"]) / most}
            for i, p in enumerate(progress.rows)
        ],
        "agreement": cached_agreement(project=project, stamp=progress.stamp, members=members, tally=tally),
        "attention": attention(project=project, tally=tally),
        "counts": project_counts(project=project, tally=tally),
        "total": tally.total,
    }
