"""Annotating: the queue, drafts, submissions, consensus, disagreements and their resolution.

With one annotation per example, a submission is applied to the example at once (checked
against the version the annotator saw, so it never overwrites someone else's change). With
several, the example waits until enough annotators have answered: identical answers are
applied as consensus, differing ones go to the reviewers' disagreement queue.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.core.errors import ServiceError
from curation.core.permissions import Action, can
from curation.core.services import InvalidExample, example_update, needs_reply, validate_messages
from curation.models import Annotation, Example, Label, Project, RuleRun, WeakLabel

LEASE = timedelta(minutes=10)
COUNT_CAP = 1000


def queue_next(*, project: Project, user: Any) -> Example | None:
    """The next example that needs this person's annotation; never one they have answered.

    The example shown is leased to them (an open draft) for ten minutes, so annotators
    working at the same time are handed different examples."""
    # Their own open draft first: a closed tab comes back to where it was.
    draft = (
        Annotation.objects.filter(annotator=user, example__project=project, status=Annotation.Status.DRAFT)
        .select_related("example__label")
        .order_by("-updated_at")
        .first()
    )
    if draft is not None:
        return draft.example
    # Examples others have started come first, so each is finished (and its agreement
    # known) before new ones are opened. One query per count, each walking the
    # (project, annotation_count, id) index and stopping at the first match.
    required = project.annotations_per_example
    order = _queue_order(project)
    for count in reversed(range(required)):
        example = (
            _open_for(project, user, annotation_count=count)
            .filter(leased__lt=required - count)
            .select_related("label")
            .order_by(*order)
            .first()
        )
        if example is not None:
            Annotation.objects.get_or_create(
                example=example, annotator=user, defaults={"based_on_version": example.version}
            )
            return example
    return None


def _queue_order(project: Project) -> list[Any]:
    """Oldest first; or, when the project asks for it, the examples the latest rule run was
    least sure of: conflicting votes first, then the lowest label-model confidence."""
    if project.queue_order != Project.QueueOrder.UNCERTAIN:
        return ["id"]
    run = project.rule_runs.filter(status=RuleRun.Status.DONE).order_by("-number").values_list("pk", flat=True).first()
    if run is None:
        return ["id"]
    weak = WeakLabel.objects.filter(run_id=run, example=OuterRef("pk"))
    return [
        Subquery(weak.values("conflict")[:1]).desc(nulls_last=True),
        Subquery(weak.values("confidence")[:1]).asc(nulls_last=True),
        "id",
    ]


@transaction.atomic
def label_suggestions_set(*, project: Project, user: Any, value: str) -> Project:
    """Whether annotators see the example's current label (as a suggestion, never chosen for
    them) or label without it; hidden keeps their agreement an honest measure."""
    if not can(user, project, Action.MANAGE_PROJECT):
        raise PermissionDenied(_("Only project admins may change what annotators are shown."))
    if value not in Project.LabelSuggestions.values:
        choices = ", ".join(Project.LabelSuggestions.values)
        raise ServiceError("label_suggestions", _("Choose one of %(values)s.") % {"values": choices})
    Project.objects.filter(pk=project.pk).update(label_suggestions=value)
    project.label_suggestions = value
    return project


def queue_remaining(*, project: Project, user: Any) -> int:
    """How many examples wait for this person, counted up to COUNT_CAP + 1 (shown as 1000+)."""
    open_ = Example.objects.filter(project=project, annotation_count__lt=project.annotations_per_example).exclude(
        status=Example.Status.REJECTED
    )
    answered = Annotation.objects.filter(annotator=user, example=OuterRef("pk")).exclude(status=Annotation.Status.DRAFT)
    return open_.exclude(Exists(answered)).order_by()[: COUNT_CAP + 1].count()


def _open_for(project: Project, user: Any, *, annotation_count: int) -> QuerySet[Example]:
    """Examples with this many answers that this person has not answered or skipped,
    annotated with how many others hold a fresh lease on them."""
    answered = Annotation.objects.filter(annotator=user, example=OuterRef("pk")).exclude(status=Annotation.Status.DRAFT)
    leases = (
        Annotation.objects.filter(
            example=OuterRef("pk"),
            status=Annotation.Status.DRAFT,
            updated_at__gte=timezone.now() - LEASE,
        )
        .exclude(annotator=user)
        .order_by()
        .values("example")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        Example.objects.filter(project=project, annotation_count=annotation_count)
        .exclude(status=Example.Status.REJECTED)
        .exclude(Exists(answered))
        .annotate(leased=Coalesce(Subquery(leases), 0))
    )


def _label(project: Project, name: str | None) -> Label | None:
    if not name:
        return None
    label = project.labels.filter(name=name).first()
    if label is None:
        raise InvalidExample("label", _("%(name)s is not a label of this project.") % {"name": repr(name)})
    if label.retired:
        raise InvalidExample(
            "label", _("%(name)s is retired: it is no longer offered for labeling.") % {"name": repr(name)}
        )
    return label


def _clean(
    example: Example, label: str | None, messages: list[dict] | None, rating: int | None
) -> tuple[Label | None, list[dict] | None]:
    if rating is not None and not 1 <= rating <= 5:
        raise InvalidExample("rating", _("must be between 1 and 5."))
    if messages is not None:
        messages = validate_messages(messages, needs_reply=needs_reply(example.project), tools=example.tools)
        if messages == example.messages:
            messages = None  # unchanged: nothing to apply or to compare
    return _label(example.project, label), messages


def turn_ratings_clean(ratings: Any, messages: list[dict]) -> dict[str, int]:
    """Ratings of single turns as {"<message index>": 1..5}, each on an assistant turn of
    ``messages`` (the annotator's edit, or the example's own); raises InvalidExample naming the
    turn otherwise."""
    if ratings is None:
        return {}
    if not isinstance(ratings, dict):
        raise InvalidExample(
            "turn_ratings", _('expected an object {"<message index>": rating from 1 to 5}, such as {"1": 4}.')
        )
    clean: dict[str, int] = {}
    for key, value in ratings.items():
        index = int(key) if isinstance(key, str) and key.isdigit() else None
        if index is None or index >= len(messages):
            raise InvalidExample(
                "turn_ratings",
                _("%(key)s is not the index of a message; this example has messages 0 to %(last)d.")
                % {"key": repr(key), "last": len(messages) - 1},
            )
        message = messages[index]
        if not isinstance(message, dict) or message.get("role") != "assistant":
            raise InvalidExample(
                f"turn_ratings.{index}",
                _("message %(index)d is not an assistant turn; only assistant turns are rated.") % {"index": index},
            )
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise InvalidExample(
                f"turn_ratings.{index}",
                _("the rating of message %(index)d must be a whole number from 1 to 5.") % {"index": index},
            )
        clean[str(index)] = value
    return clean


def _draft_turn_ratings(ratings: Any, messages: list[dict]) -> dict[str, int]:
    """A draft keeps the ratings that are valid and drops the rest, as it does the rating."""
    if not isinstance(ratings, dict):
        return {}
    kept = {}
    for key, value in ratings.items():
        try:
            kept.update(turn_ratings_clean({key: value}, messages))
        except InvalidExample:
            continue
    return kept


@transaction.atomic
def annotation_save_draft(
    *,
    example: Example,
    user: Any,
    based_on_version: int,
    label: str | None = None,
    messages: list[dict] | None = None,
    rating: int | None = None,
    note: str = "",
    turn_ratings: dict[str, Any] | None = None,
) -> Annotation:
    """Autosave: keep whatever the annotator has typed so far. Drafts are not validated
    beyond their shape, so half-finished text is never refused."""
    annotation, _created = Annotation.objects.select_for_update().get_or_create(
        example=example, annotator=user, defaults={"based_on_version": based_on_version}
    )
    if annotation.status == Annotation.Status.SUBMITTED:
        return annotation  # a late autosave must not reopen a submitted answer
    label_obj = example.project.labels.filter(name=label).first() if label else None
    annotation.status = Annotation.Status.DRAFT
    annotation.label = label_obj
    annotation.messages = messages if isinstance(messages, list) and messages != example.messages else None
    annotation.rating = rating if rating in (1, 2, 3, 4, 5) else None
    annotation.turn_ratings = _draft_turn_ratings(turn_ratings, annotation.messages or example.messages)
    annotation.note = note or ""
    annotation.based_on_version = based_on_version
    annotation.save()
    return annotation


@transaction.atomic
def annotation_submit(
    *,
    example: Example,
    user: Any,
    based_on_version: int,
    label: str | None = None,
    messages: list[dict] | None = None,
    rating: int | None = None,
    note: str = "",
    turn_ratings: dict[str, Any] | None = None,
) -> Annotation:
    """Submit an answer. Raises StaleVersion (one annotation per example) when the example
    changed since the annotator opened it; the caller keeps their text as a draft."""
    label_obj, messages = _clean(example, label, messages, rating)
    turn_ratings = turn_ratings_clean(turn_ratings, messages or example.messages)
    if label_obj is None and messages is None and rating is None and not turn_ratings and not note.strip():
        raise InvalidExample("label", _("Choose a label, edit the text, rate or write a note, or skip."))
    if example.project.kind == Project.Kind.CLASSIFICATION and label_obj is None:
        raise InvalidExample("label", _("Choose a label."))
    annotation, _created = Annotation.objects.select_for_update().get_or_create(
        example=example, annotator=user, defaults={"based_on_version": based_on_version}
    )
    newly_submitted = annotation.status != Annotation.Status.SUBMITTED
    annotation.status = Annotation.Status.SUBMITTED
    annotation.label, annotation.messages, annotation.rating, annotation.note = label_obj, messages, rating, note
    annotation.turn_ratings = turn_ratings
    annotation.based_on_version = based_on_version
    annotation.submitted_at = timezone.now()
    annotation.save()
    if newly_submitted:
        Example.objects.filter(pk=example.pk).update(annotation_count=F("annotation_count") + 1)
    example.refresh_from_db()

    required = example.project.annotations_per_example
    if required == 1:
        changes: dict[str, Any] = {}
        if label_obj is not None and label_obj.pk != example.label_id:
            changes["label"] = label_obj.name
        if messages is not None:
            changes["messages"] = messages
        if changes:
            example_update(example=example, user=user, version=based_on_version, **changes)
    elif example.annotation_count >= required and example.resolved_at is None:
        _apply_consensus(example, user)
    return annotation


def _apply_consensus(example: Example, user: Any) -> None:
    answers = list(example.annotations.filter(status=Annotation.Status.SUBMITTED))
    labels = {a.label_id for a in answers}
    texts = {repr(a.messages) for a in answers}
    if len(labels) > 1 or len(texts) > 1:
        return  # a disagreement: a reviewer decides
    first = answers[0]
    changes: dict[str, Any] = {}
    if first.label_id is not None and first.label_id != example.label_id:
        changes["label"] = first.label.name
    if first.messages is not None:
        changes["messages"] = first.messages
    if changes:
        example_update(example=example, user=user, version=example.version, **changes)
    Example.objects.filter(pk=example.pk).update(resolved_at=timezone.now())


@transaction.atomic
def annotation_skip(*, example: Example, user: Any) -> Annotation:
    annotation, _created = Annotation.objects.select_for_update().get_or_create(
        example=example, annotator=user, defaults={"based_on_version": example.version}
    )
    if annotation.status == Annotation.Status.SUBMITTED:
        Example.objects.filter(pk=example.pk).update(annotation_count=F("annotation_count") - 1)
    annotation.status = Annotation.Status.SKIPPED
    annotation.save()
    return annotation


@transaction.atomic
def annotation_undo(*, project: Project, user: Any) -> Example | None:
    """Reopen this person's last submitted or skipped answer as a draft, to change it."""
    last = (
        Annotation.objects.select_for_update()
        .filter(annotator=user, example__project=project)
        .exclude(status=Annotation.Status.DRAFT)
        .order_by("-updated_at", "-id")
        .first()
    )
    if last is None:
        return None
    if last.status == Annotation.Status.SUBMITTED:
        Example.objects.filter(pk=last.example_id).update(annotation_count=F("annotation_count") - 1)
    # Any other open draft goes back to the pool, so the queue shows the undone example next.
    Annotation.objects.filter(annotator=user, example__project=project, status=Annotation.Status.DRAFT).delete()
    last.status = Annotation.Status.DRAFT
    last.based_on_version = last.example.version
    last.save()
    return last.example


def disagreement_list(*, project: Project) -> QuerySet[Example]:
    """Examples every required annotator answered, whose answers were not the same."""
    return (
        Example.objects.filter(
            project=project,
            annotation_count__gte=max(project.annotations_per_example, 2),
            resolved_at__isnull=True,
        )
        .select_related("label")
        .order_by("id")
    )


@transaction.atomic
def disagreement_resolve(
    *, example: Example, user: Any, version: int, label: str | None, messages: list[dict] | None = None
) -> Example:
    """A reviewer's decision becomes the example's gold label and text, and approves it."""
    changes: dict[str, Any] = {"label": label or None, "status": Example.Status.APPROVED}
    if messages is not None and messages != example.messages:
        changes["messages"] = messages
    example = example_update(example=example, user=user, version=version, **changes)
    Example.objects.filter(pk=example.pk).update(resolved_by=user, resolved_at=timezone.now())
    example.refresh_from_db()
    return example


def annotations_by_example(*, project: Project) -> dict[int, dict[int, str]]:
    """Submitted labels as {example id: {annotator id: label name}}, for agreement."""
    rows = Annotation.objects.filter(
        example__project=project, status=Annotation.Status.SUBMITTED, label__isnull=False
    ).values_list("example_id", "annotator_id", "label__name")
    found: dict[int, dict[int, str]] = {}
    for example_id, annotator_id, label in rows:
        found.setdefault(example_id, {})[annotator_id] = label
    return found
