"""Reads for the project pages: the labels offered for labeling, each label's use, members,
recent changes, the projects a user may copy. A fixed number of queries whatever the data size."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from curation.core.permissions import projects_for_user
from curation.models import Annotation, Example, Label, LabelingRule, Membership, Project, ProjectChange, Role

RECENT_CHANGES = 50


def labels_offered(project: Project) -> QuerySet[Label]:
    """The labels annotators and reviewers may choose: every label that is not retired. A retired
    label stays on its examples and in their history."""
    return project.labels.filter(retired=False)


def label_rows(project: Project) -> list[Label]:
    """The project's labels (offered first, then retired), each with ``examples``,
    ``annotations`` and ``rules``: how many point at it (four queries)."""
    by_example = dict(
        Example.objects.filter(project=project, label__isnull=False)
        .values_list("label_id")
        .annotate(n=Count("id"))
        .values_list("label_id", "n")
    )
    by_annotation = dict(
        Annotation.objects.filter(example__project=project, label__isnull=False)
        .values_list("label_id")
        .annotate(n=Count("id"))
        .values_list("label_id", "n")
    )
    by_rule = dict(
        LabelingRule.objects.filter(project=project)
        .values_list("label_id")
        .annotate(n=Count("id"))
        .values_list("label_id", "n")
    )
    labels = list(project.labels.order_by("retired", "name"))
    for label in labels:
        label.examples_count = by_example.get(label.pk, 0)
        label.annotations_count = by_annotation.get(label.pk, 0)
        label.rules_count = by_rule.get(label.pk, 0)
        label.in_use = bool(label.examples_count or label.annotations_count or label.rules_count)
    return labels


def members(project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user").order_by("user__username", "pk")


def admin_count(project: Project) -> int:
    return Membership.objects.filter(project=project, role=Role.ADMIN).count()


def recent_changes(project: Project, limit: int = RECENT_CHANGES) -> list[ProjectChange]:
    return list(ProjectChange.objects.filter(project=project).select_related("user")[:limit])


def projects_to_copy(user: Any) -> QuerySet[Project]:
    """The projects whose setup ``user`` may copy: those they are an admin of."""
    if user.is_superuser:
        return projects_for_user(user).order_by("name")
    return Project.objects.filter(memberships__user=user, memberships__role=Role.ADMIN).order_by("name")
