"""Quality scans and what an admin does with their findings: keep one of a duplicate cluster
or merge it, redact personal data, see the leaks between splits; and the quality settings.

A scan is created here, queued by curation/quality/tasks.py and run by
curation/quality/scanning.py. Findings remember the content hash they were made on, so an
example edited since is never redacted or merged on stale offsets: redaction always detects
again on the current text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F, Max, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from curation.core.errors import ServiceError
from curation.core.services import StaleVersion, content_hash, example_delete, example_snapshot, search_text
from curation.models import (
    Annotation,
    DuplicateCluster,
    DuplicatePair,
    Example,
    ExampleCheck,
    ExampleRevision,
    FindingDismissal,
    Project,
    QualityScan,
)

EVAL_SPLITS = (Example.Split.VALIDATION, Example.Split.TEST)


class ScanBusy(ServiceError):
    """A scan of this project is already queued or running."""

    status = 409

    def __init__(self, message: str) -> None:
        super().__init__("", message)


class ResolveError(ServiceError):
    """A duplicate group that cannot be resolved as asked; `field` names what to correct."""


def dedupe_text(messages: list[dict[str, Any]]) -> str:
    """What two examples are compared on: every turn but the system prompt, which projects
    share on purpose and which would make every pair look alike."""
    return "\n".join(str(m.get("content") or "") for m in messages if isinstance(m, dict) and m.get("role") != "system")


# --- scans -------------------------------------------------------------------------------


def scan_config(project: Project) -> dict[str, Any]:
    return {
        "dedupe_threshold": project.dedupe_threshold,
        "semantic_dedupe": project.semantic_dedupe,
        "semantic_threshold": project.semantic_threshold,
        "base_model": project.base_model,
        "max_seq_length": project.max_seq_length,
        "kind": project.kind,
        "structured_format": project.structured_format,
    }


@transaction.atomic
def quality_scan_create(*, project: Project, user: Any) -> QualityScan:
    """The next scan of the project, queued (curation/quality/tasks.py enqueues it); ScanBusy
    while one is queued or running."""
    Project.objects.select_for_update().filter(pk=project.pk).first()  # one start at a time per project
    busy = QualityScan.objects.filter(
        project=project, status__in=[QualityScan.Status.QUEUED, QualityScan.Status.RUNNING]
    ).first()
    if busy is not None:
        raise ScanBusy(_("Check %(number)s is still running; wait for it to finish.") % {"number": busy.number})
    number = (QualityScan.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    return QualityScan.objects.create(
        project=project,
        number=number,
        config=scan_config(project),
        total=Example.objects.filter(project=project).count(),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


def latest_scan(project: Project) -> QualityScan | None:
    return QualityScan.objects.filter(project=project, status=QualityScan.Status.DONE).order_by("-number").first()


def current_scan(project: Project) -> QualityScan | None:
    return QualityScan.objects.filter(project=project).order_by("-number").first()


# What a running scan's stage reads as on the page, in the order the scan takes them.
STAGE_LABELS = {
    "duplicates": gettext_lazy("looking for duplicates"),
    "personal data": gettext_lazy("looking for personal data"),
    "lengths": gettext_lazy("counting tokens"),
    "format": gettext_lazy("checking the format"),
    "facts": gettext_lazy("looking for facts"),
}


# --- findings ----------------------------------------------------------------------------


def fresh_checks(scan: QualityScan) -> QuerySet[ExampleCheck]:
    """The scan's findings on examples whose content has not changed since."""
    return ExampleCheck.objects.filter(scan=scan, example__content_hash=F("content_hash"))


def changed_since(project: Project, scan: QualityScan | None) -> int:
    if scan is None or scan.started_at is None:
        return 0
    return Example.objects.filter(project=project, updated_at__gt=scan.started_at).count()


@dataclass(frozen=True)
class Leak:
    evaluated: Example
    trained: Example
    kind: str
    similarity: float

    @property
    def kind_label(self) -> str:
        return str(DuplicatePair.Kind(self.kind).label)


def leaks(project: Project, *, limit: int | None = None) -> list[Leak]:
    """Validation or test examples that are duplicates of a training example, with the
    splits as they are now: exact ones by content hash (always current), near and semantic
    ones from the latest scan whose two examples have not changed since."""
    found: dict[tuple[int, int], tuple[str, float]] = {}
    train = Example.objects.filter(project=project, split=Example.Split.TRAIN)
    exact = (
        Example.objects.filter(project=project, split__in=EVAL_SPLITS, content_hash__in=train.values("content_hash"))
        .order_by("pk")
        .values_list("pk", "content_hash")
    )
    hashes: dict[str, list[int]] = {}
    for pk, digest in exact:
        hashes.setdefault(digest, []).append(pk)
    if hashes:
        first_train: dict[str, int] = {}
        for pk, digest in train.filter(content_hash__in=list(hashes)).order_by("pk").values_list("pk", "content_hash"):
            first_train.setdefault(digest, pk)
        for digest, evaluated in hashes.items():
            for pk in evaluated:
                found[(pk, first_train[digest])] = (DuplicatePair.Kind.EXACT, 1.0)
    scan = latest_scan(project)
    if scan is not None:
        current = DuplicatePair.objects.filter(
            scan=scan, a__content_hash=F("a_hash"), b__content_hash=F("b_hash")
        ).filter(
            Q(a__split=Example.Split.TRAIN, b__split__in=EVAL_SPLITS)
            | Q(b__split=Example.Split.TRAIN, a__split__in=EVAL_SPLITS)
        )
        for a, b, a_split, kind, similarity in current.values_list("a_id", "b_id", "a__split", "kind", "similarity"):
            key = (b, a) if a_split == Example.Split.TRAIN else (a, b)
            found.setdefault(key, (kind, similarity))
    if found:
        from curation.quality.dismissals import dismissed_keys, pair_key

        # A leak a reviewer dismissed, while both examples are as they were then.
        hashes = dict(Example.objects.filter(pk__in={t for _e, t in found}).values_list("pk", "content_hash"))
        dismissed = dismissed_keys(project, FindingDismissal.Kind.LEAKAGE)
        found = {(e, t): v for (e, t), v in found.items() if pair_key(t, hashes.get(t, "")) not in dismissed.get(e, ())}
    keys = sorted(found)[:limit] if limit else sorted(found)
    examples = Example.objects.in_bulk({i for key in keys for i in key})
    return [Leak(examples[e], examples[t], *found[(e, t)]) for e, t in keys if e in examples and t in examples]


def pii_unredacted(project: Project, examples: QuerySet[Example] | None = None) -> tuple[int, Counter[str]]:
    """(examples holding personal data, findings by kind) among ``examples`` (default: all).

    The latest scan answers for the examples it saw unchanged; examples new or edited since
    are checked now, so an export never relies on an out-of-date scan."""
    from curation.quality import pii

    examples = Example.objects.filter(project=project) if examples is None else examples
    kinds: Counter[str] = Counter()
    flagged = 0
    scan = latest_scan(project)
    recheck = examples
    if scan is not None:
        for found in (
            fresh_checks(scan).filter(example__in=examples.values("pk"), pii_count__gt=0).values_list("pii", flat=True)
        ):
            flagged += 1
            kinds.update(h["kind"] for h in found)
        seen = ExampleCheck.objects.filter(scan=scan, example__content_hash=F("content_hash")).values("example_id")
        since = scan.started_at or scan.created_at
        unchanged = Q(created_at__lt=since, updated_at__lt=since) | Q(pk__in=seen)
        recheck = examples.exclude(unchanged)
    from curation.quality.dismissals import dismissed_keys, pii_keep

    kept = dismissed_keys(project, FindingDismissal.Kind.PII)
    for pk, messages in recheck.values_list("pk", "messages").iterator(chunk_size=2000):
        hits = pii_keep(pii.detect_messages(messages), kept.get(pk))
        if hits:
            flagged += 1
            kinds.update(h["kind"] for h in hits)
    return flagged, kinds


def pii_message(flagged: int, kinds: Counter[str]) -> str:
    from curation.quality.pii import KIND_LABELS

    parts = ", ".join(f"{KIND_LABELS.get(k, k)}: {n}" for k, n in kinds.most_common())
    return ngettext(
        "%(count)s example still holds personal data (%(kinds)s). Redact it on the Quality page, "
        "or turn off the block in the quality settings.",
        "%(count)s examples still hold personal data (%(kinds)s). Redact it on the Quality page, "
        "or turn off the block in the quality settings.",
        flagged,
    ) % {"count": flagged, "kinds": parts}


# --- settings ----------------------------------------------------------------------------

# What the quality settings form changes: the next scan's thresholds and tokenizer, the gates.
QUALITY_SETTINGS = (
    "dedupe_threshold",
    "semantic_dedupe",
    "semantic_threshold",
    "base_model",
    "max_seq_length",
    "structured_format",
    "block_on_pii",
)


def quality_settings_update(*, project: Project, **values: Any) -> Project:
    """Save the project's quality settings; they apply from the next scan. Each value passes its
    field's validators (ValidationError otherwise)."""
    if unknown := set(values) - set(QUALITY_SETTINGS):
        raise ValueError(f"not a quality setting: {', '.join(sorted(unknown))}")
    for name, value in values.items():
        setattr(project, name, value)
    project.clean_fields(exclude=[f.name for f in Project._meta.fields if f.name not in values])
    project.save(update_fields=list(values))
    return project


# --- actions -----------------------------------------------------------------------------


def _author(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def _write_messages(
    *, example: Example, user: Any, messages: list[dict[str, Any]], action: str, extra: dict[str, Any] | None = None
) -> Example:
    """Replace messages (and fields in ``extra``) under the caller's row lock, with a revision."""
    before = example_snapshot(example)
    fields = {
        "messages": messages,
        "content_hash": content_hash(messages, example.tools),
        "search_text": search_text(messages),
    }
    fields.update(extra or {})
    Example.objects.filter(pk=example.pk).update(version=F("version") + 1, updated_at=timezone.now(), **fields)
    example.refresh_from_db()
    ExampleRevision.objects.create(
        example=example,
        project=example.project,
        user=_author(user),
        action=action,
        version=example.version,
        before=before,
        after=example_snapshot(example),
    )
    return example


@transaction.atomic
def example_redact(
    *, example: Example, user: Any, version: int | None = None, kinds: Iterable[str] | None = None
) -> int:
    """Replace the personal data in one example by typed placeholders ([EMAIL]); one revision.
    ``version``, when given, must still be current (StaleVersion otherwise). Returns how many
    items were replaced (0: nothing changed, no revision)."""
    from curation.quality import pii

    locked = Example.objects.select_for_update(of=("self",)).select_related("project", "label").get(pk=example.pk)
    if version is not None and locked.version != version:
        raise StaleVersion(locked)
    from curation.quality import dismissals

    kept = dismissals.dismissed_keys(locked.project, FindingDismissal.Kind.PII, [locked.pk]).get(locked.pk, set())
    redacted, count = pii.redact_messages(
        locked.messages, kinds=kinds, keep=lambda kind, text: dismissals.pii_key(kind, text) in kept
    )
    if count:
        before = locked.content_hash
        _write_messages(example=locked, user=user, messages=redacted, action=ExampleRevision.Action.REDACT)
        # What a reviewer dismissed is still there, unchanged: the dismissals follow the new content.
        FindingDismissal.objects.filter(example=locked, content_hash=before).update(content_hash=locked.content_hash)
        ExampleCheck.objects.filter(example=locked).update(pii=[], pii_count=0, content_hash=locked.content_hash)
        dismissals.refresh_pii([locked.pk])
    example.refresh_from_db()
    return count


def pii_redact_all(*, project: Project, user: Any, kinds: Iterable[str] | None = None) -> tuple[int, int]:
    """Redact every example the latest scan flagged, plus any changed since it. Returns
    (examples changed, items replaced). Each example is its own transaction, so a redaction
    of 10,000 examples does not hold one lock on all of them."""
    kinds = list(kinds) if kinds else None
    scan = latest_scan(project)
    ids: set[int] = set()
    if scan is not None:
        ids.update(ExampleCheck.objects.filter(scan=scan, pii_count__gt=0).values_list("example_id", flat=True))
        since = Example.objects.filter(project=project).filter(
            Q(updated_at__gte=scan.started_at or scan.created_at)
            | Q(created_at__gte=scan.started_at or scan.created_at)
        )
    else:
        since = Example.objects.filter(project=project)
    ids.update(since.values_list("pk", flat=True))
    changed = replaced = 0
    for example in Example.objects.filter(project=project, pk__in=sorted(ids)).only("pk").iterator(chunk_size=1000):
        n = example_redact(example=example, user=user, kinds=kinds)
        changed += bool(n)
        replaced += n
    return changed, replaced


@transaction.atomic
def cluster_resolve(*, cluster: DuplicateCluster, user: Any, keep: int, merge: bool = False) -> Example:
    """Keep one example of a duplicate cluster and delete the others (each deletion is a
    revision that holds the whole example). With ``merge``, the kept example also takes what
    only the others had: the label if it has none, metadata keys it lacks, and the annotations
    of annotators who had not annotated it; it records the ids it absorbed."""
    cluster = DuplicateCluster.objects.select_for_update().select_related("scan").get(pk=cluster.pk)
    if cluster.resolved_at is not None:
        raise ResolveError("cluster", _("This cluster was already resolved."))
    member_ids = set(ExampleCheck.objects.filter(cluster=cluster).values_list("example_id", flat=True))
    if keep not in member_ids:
        raise ResolveError("keep", _("Choose an example of this cluster to keep."))
    members = list(
        Example.objects.select_for_update(of=("self",))
        .filter(pk__in=member_ids)
        .select_related("project", "label")
        .order_by("pk")
    )
    kept = next(e for e in members if e.pk == keep)
    others = [e for e in members if e.pk != keep]
    if merge and others:
        metadata = dict(kept.metadata)
        for other in others:
            for key, value in other.metadata.items():
                metadata.setdefault(key, value)
        metadata["merged_from"] = sorted({*metadata.get("merged_from", []), *(e.pk for e in others)})
        extra: dict[str, Any] = {"metadata": metadata}
        if kept.label_id is None:
            label = next((e.label for e in others if e.label_id is not None), None)
            if label is not None:
                extra["label"] = label
        annotated = set(kept.annotations.values_list("annotator_id", flat=True))
        for other in others:
            for annotation in Annotation.objects.filter(example=other).exclude(annotator_id__in=annotated):
                annotation.example = kept
                annotation.save(update_fields=["example"])
                annotated.add(annotation.annotator_id)
        Example.objects.filter(pk=kept.pk).update(
            annotation_count=kept.annotations.filter(status=Annotation.Status.SUBMITTED).count()
        )
        kept.refresh_from_db()
        _write_messages(
            example=kept, user=user, messages=kept.messages, action=ExampleRevision.Action.MERGE, extra=extra
        )
    for other in others:
        example_delete(example=other, user=user)
    DuplicateCluster.objects.filter(pk=cluster.pk).update(
        resolution="merged" if merge else "kept", kept=kept, resolved_by=_author(user), resolved_at=timezone.now()
    )
    return kept
