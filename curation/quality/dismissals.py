"""A reviewer's decision that a quality finding is not a problem, and the checks that respect it.

A dismissal names one finding on one example (FindingDismissal: kind, key) and the example's
content when it was made. While the example's content is the same, later scans leave the
finding out and the readiness report and the launch gates do not count it; once the content
changes the finding is checked afresh. The dismissal row is the record of who decided what,
when and why; undoing it deletes it.

Keys: personal data, a hash of the kind and the matched text (the same text twice in one
example is one finding; in another example it is another, unless the reviewer dismisses it
"in every example"); a duplicate pair or a leak, the other example's id and content hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.core.errors import ServiceError
from curation.core.permissions import Action, can
from curation.core.services import fold
from curation.models import (
    DuplicateCluster,
    DuplicatePair,
    Example,
    ExampleCheck,
    FindingDismissal,
    Project,
    QualityScan,
)

Kind, Reason = FindingDismissal.Kind, FindingDismissal.Reason
NOTE_LIMIT = 1000
# "Dismiss this text in every example" looks at this many examples at most.
EVERYWHERE_LIMIT = 5000
# The reason each kind offers first.
USUAL_REASON = {Kind.PII: Reason.NOT_PERSONAL, Kind.DUPLICATE: Reason.INTENDED_DUPLICATE}


def default_reason(kind: str) -> str:
    return USUAL_REASON.get(kind, Reason.FALSE_ALARM)


class DismissError(ServiceError):
    """A dismissal that cannot be made as asked; ``field`` names what to correct."""


def pii_key(kind: str, text: str) -> str:
    return hashlib.sha256(f"{kind}\x00{text}".encode()).hexdigest()[:40]


def pair_key(other_id: int, other_hash: str) -> str:
    return f"{other_id}:{other_hash}"


def _check(user: Any, project: Project) -> None:
    if not can(user, project, Action.REVIEW):
        raise PermissionDenied(_("Only reviewers and admins may dismiss or restore quality findings."))


def _author(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def current(project: Project | int, kind: str) -> QuerySet[FindingDismissal]:
    """The project's dismissals of ``kind`` made on the example's content as it is now."""
    return FindingDismissal.objects.filter(project=project, kind=kind, content_hash=F("example__content_hash"))


def dismissed_keys(project: Project | int, kind: str, example_ids: Iterable[int] | None = None) -> dict[int, set[str]]:
    """Example id → the keys of its findings of ``kind`` dismissed on its current content."""
    found = current(project, kind)
    if example_ids is not None:
        found = found.filter(example_id__in=list(example_ids))
    keys: dict[int, set[str]] = {}
    for example_id, key in found.values_list("example_id", "key"):
        keys.setdefault(example_id, set()).add(key)
    return keys


def pii_keep(hits: list[dict[str, Any]], keys: set[str] | None) -> list[dict[str, Any]]:
    """The personal data findings (pii.detect_messages) that are not dismissed."""
    if not keys:
        return hits
    return [h for h in hits if pii_key(h["kind"], h["text"]) not in keys]


def _clean(kind: str, reason: str, note: str) -> tuple[str, str]:
    if kind not in Kind.values:
        raise DismissError("kind", _("Choose one of: %(kinds)s.") % {"kinds": ", ".join(Kind.values)})
    if reason not in Reason.values:
        raise DismissError("reason", _("Choose one of: %(reasons)s.") % {"reasons": ", ".join(Reason.values)})
    note = (note or "").strip()
    if len(note) > NOTE_LIMIT:
        raise DismissError("note", _("At most %(n)s characters.") % {"n": NOTE_LIMIT})
    return reason, note


# --- personal data ----------------------------------------------------------------------


def pii_findings(example: Example) -> list[dict[str, Any]]:
    """The personal data on the example's current text, each with its key."""
    from curation.quality import pii

    return [h | {"key": pii_key(h["kind"], h["text"])} for h in pii.detect_messages(example.messages)]


@transaction.atomic
def pii_dismiss(
    *,
    example: Example,
    user: Any,
    key: str,
    reason: str = Reason.NOT_PERSONAL,
    note: str = "",
    everywhere: bool = False,
) -> int:
    """Dismiss the personal data finding ``key`` on ``example`` (its current text); with
    ``everywhere``, on every example of the project whose current text has the same finding.
    Returns how many examples it was dismissed on."""
    project = example.project
    _check(user, project)
    reason, note = _clean(Kind.PII, reason, note)
    example = Example.objects.select_for_update(of=("self",)).get(pk=example.pk)
    found = next((h for h in pii_findings(example) if h["key"] == key), None)
    if found is None:
        raise DismissError("key", _("This finding is not on the example's current text; reload the page."))
    examples = [example]
    if everywhere:
        from curation.quality import pii

        others = (
            Example.objects.filter(project=project, search_text__contains=fold(found["text"]))
            .exclude(pk=example.pk)
            .order_by("pk")[:EVERYWHERE_LIMIT]
        )
        for other in others.only("pk", "messages", "content_hash"):
            hits = pii.detect_messages(other.messages, kinds=[found["kind"]])
            if any(pii_key(h["kind"], h["text"]) == key for h in hits):
                examples.append(other)
    _save(project, examples, Kind.PII, lambda e: key, reason, note, user)
    refresh_pii([e.pk for e in examples])
    return len(examples)


def _save(project, examples, kind, key_of, reason, note, user) -> None:
    now = timezone.now()
    FindingDismissal.objects.bulk_create(
        [
            FindingDismissal(
                project=project,
                example=e,
                kind=kind,
                key=key_of(e),
                content_hash=e.content_hash,
                reason=reason,
                note=note,
                created_by=_author(user),
                created_at=now,
            )
            for e in examples
        ],
        update_conflicts=True,
        unique_fields=["example", "kind", "key"],
        update_fields=["content_hash", "reason", "note", "created_by", "created_at"],
        batch_size=500,
    )


def refresh_pii(example_ids: list[int]) -> None:
    """The latest scan's personal data findings on these examples, found again on their current
    text without the dismissed ones, so the lists, the report and the gates agree at once."""
    from curation.quality import pii

    if not example_ids:
        return
    examples = list(
        Example.objects.filter(pk__in=example_ids).only(
            "pk", "project_id", "messages", "content_hash", "created_at", "updated_at"
        )
    )
    if not examples:
        return
    # The latest finished scan (as services.latest_scan, which imports this module).
    scan = (
        QualityScan.objects.filter(project_id=examples[0].project_id, status=QualityScan.Status.DONE)
        .order_by("-number")
        .first()
    )
    if scan is None:
        return
    keys = dismissed_keys(examples[0].project_id, Kind.PII, example_ids)
    checks = {c.example_id: c for c in ExampleCheck.objects.filter(scan=scan, example_id__in=example_ids)}
    for example in examples:
        hits = pii_keep(pii.detect_messages(example.messages), keys.get(example.pk))
        stored = [{k: h[k] for k in ("message", "kind", "start", "end")} for h in hits]
        check = checks.get(example.pk)
        since = scan.started_at or scan.created_at
        if check is not None:
            if check.content_hash == example.content_hash:  # else the check is stale and not shown
                ExampleCheck.objects.filter(pk=check.pk).update(pii=stored, pii_count=len(stored))
        elif stored and example.updated_at < since and example.created_at < since:
            ExampleCheck.objects.create(
                scan=scan, example=example, content_hash=example.content_hash, pii=stored, pii_count=len(stored)
            )


# --- duplicates and leaks ----------------------------------------------------------------


@transaction.atomic
def cluster_dismiss(
    *, cluster: DuplicateCluster, user: Any, reason: str = Reason.INTENDED_DUPLICATE, note: str = ""
) -> int:
    """Dismiss a duplicate group: each pair of it whose examples are unchanged is recorded as
    meant to be alike, and the group is closed as dismissed. Returns the pairs recorded."""
    project = cluster.scan.project
    _check(user, project)
    reason, note = _clean(Kind.DUPLICATE, reason, note)
    cluster = DuplicateCluster.objects.select_for_update().get(pk=cluster.pk)
    if cluster.resolved_at is not None:
        raise DismissError("cluster", _("This group was already resolved."))
    pairs = list(
        DuplicatePair.objects.filter(cluster=cluster, a__content_hash=F("a_hash"), b__content_hash=F("b_hash"))
        .select_related("a")
        .only("a__id", "a__content_hash", "a__project_id", "b_id", "b_hash")
    )
    if not pairs:
        raise DismissError("cluster", _("The examples of this group have changed since the check; run it again."))
    now = timezone.now()
    FindingDismissal.objects.bulk_create(
        [
            FindingDismissal(
                project=project,
                example_id=p.a_id,
                kind=Kind.DUPLICATE,
                key=pair_key(p.b_id, p.b_hash),
                content_hash=p.a.content_hash,
                reason=reason,
                note=note,
                created_by=_author(user),
                created_at=now,
            )
            for p in pairs
        ],
        update_conflicts=True,
        unique_fields=["example", "kind", "key"],
        update_fields=["content_hash", "reason", "note", "created_by", "created_at"],
    )
    DuplicateCluster.objects.filter(pk=cluster.pk).update(
        resolution="dismissed", resolved_by=_author(user), resolved_at=now
    )
    return len(pairs)


@transaction.atomic
def cluster_restore(*, cluster: DuplicateCluster, user: Any) -> int:
    """Undo a group's dismissal: its pairs count as duplicates again and the group reopens."""
    _check(user, cluster.scan.project)
    cluster = DuplicateCluster.objects.select_for_update().get(pk=cluster.pk)
    if cluster.resolution != "dismissed":
        raise DismissError("cluster", _("This group was not dismissed."))
    removed = 0
    for a_id, b_id, b_hash in DuplicatePair.objects.filter(cluster=cluster).values_list("a_id", "b_id", "b_hash"):
        removed += FindingDismissal.objects.filter(
            example_id=a_id, kind=Kind.DUPLICATE, key=pair_key(b_id, b_hash)
        ).delete()[0]
    DuplicateCluster.objects.filter(pk=cluster.pk).update(resolution="", resolved_by=None, resolved_at=None)
    return removed


def dismissed_pairs(project: Project | int) -> set[tuple[int, str]]:
    """(example id, key) of the duplicate pairs dismissed on the examples' current content."""
    return set(current(project, Kind.DUPLICATE).values_list("example_id", "key"))


@transaction.atomic
def leak_dismiss(
    *, evaluated: Example, trained: Example, user: Any, reason: str = Reason.FALSE_ALARM, note: str = ""
) -> FindingDismissal:
    """Dismiss one leak: the evaluation example and the training example it duplicates."""
    _check(user, evaluated.project)
    reason, note = _clean(Kind.LEAKAGE, reason, note)
    _save(
        evaluated.project,
        [evaluated],
        Kind.LEAKAGE,
        lambda e: pair_key(trained.pk, trained.content_hash),
        reason,
        note,
        user,
    )
    return FindingDismissal.objects.get(
        example=evaluated, kind=Kind.LEAKAGE, key=pair_key(trained.pk, trained.content_hash)
    )


# --- undo ---------------------------------------------------------------------------------


@transaction.atomic
def dismissals_restore(*, project: Project, user: Any, ids: Iterable[int]) -> int:
    """Undo dismissals (by id): their findings count again. Returns how many were undone."""
    _check(user, project)
    ids = list(ids)
    chosen = FindingDismissal.objects.filter(project=project, pk__in=ids)
    found = list(chosen.values_list("pk", "kind", "example_id", "key"))
    if missing := sorted(set(ids) - {pk for pk, *_rest in found}):
        raise DismissError("ids", _("No such dismissals in this project: %(ids)s") % {"ids": missing[:20]}, 404)
    pii_examples = [example_id for _pk, kind, example_id, _key in found if kind == Kind.PII]
    pairs = [(example_id, key) for _pk, kind, example_id, key in found if kind == Kind.DUPLICATE]
    chosen.delete()
    refresh_pii(pii_examples)
    for example_id, key in pairs:
        other = int(key.split(":", 1)[0])
        DuplicateCluster.objects.filter(resolution="dismissed", pairs__a_id=example_id, pairs__b_id=other).update(
            resolution="", resolved_by=None, resolved_at=None
        )
    return len(found)
