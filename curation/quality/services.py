"""Quality scans and what an admin does with their findings: keep one of a duplicate cluster
or merge it, redact personal data, see the leaks between splits.

A scan (a Huey task) reads every example once, runs the plain-Python checks in
``curation.quality`` and stores what it found in one transaction at the end, replacing the
previous scan's findings; a scan that fails or whose worker dies writes nothing. Findings
remember the content hash they were made on, so an example edited since is never redacted
or merged on stale offsets: redaction always detects again on the current text.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import F, Max, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from curation.models import (
    Annotation,
    DuplicateCluster,
    DuplicatePair,
    Example,
    ExampleCheck,
    ExampleRevision,
    Project,
    QualityScan,
)
from curation.services import StaleVersion, content_hash, example_delete, example_snapshot, search_text

log = logging.getLogger(__name__)

# Cosine similarity of every pair is quadratic; past this many examples the semantic pass is
# skipped with a note rather than keeping a worker busy for an hour.
SEMANTIC_LIMIT = 20_000
EVAL_SPLITS = (Example.Split.VALIDATION, Example.Split.TEST)


class ScanBusy(Exception):
    """A scan of this project is already queued or running."""


class ResolveError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


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
def quality_scan_start(*, project: Project, user: Any) -> QualityScan:
    from curation.tasks import quality_scan_task

    Project.objects.select_for_update().filter(pk=project.pk).first()  # one start at a time per project
    busy = QualityScan.objects.filter(
        project=project, status__in=[QualityScan.Status.QUEUED, QualityScan.Status.RUNNING]
    ).first()
    if busy is not None:
        raise ScanBusy(_("Check %(number)s is still running; wait for it to finish.") % {"number": busy.number})
    number = (QualityScan.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    scan = QualityScan.objects.create(
        project=project,
        number=number,
        config=scan_config(project),
        total=Example.objects.filter(project=project).count(),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    transaction.on_commit(lambda: quality_scan_task(scan.pk))
    return scan


def quality_scans_mark_interrupted() -> int:
    """Scans left 'running' by a worker that died: say so (they wrote nothing)."""
    return QualityScan.objects.filter(status__in=[QualityScan.Status.RUNNING]).update(
        status=QualityScan.Status.INTERRUPTED,
        error=_("The worker stopped during this check; nothing was written. Run the check again."),
        finished_at=timezone.now(),
    )


def latest_scan(project: Project) -> QualityScan | None:
    return QualityScan.objects.filter(project=project, status=QualityScan.Status.DONE).order_by("-number").first()


def current_scan(project: Project) -> QualityScan | None:
    return QualityScan.objects.filter(project=project).order_by("-number").first()


@dataclass
class _Row:
    id: int
    messages: list[dict[str, Any]]
    split: str
    hash: str


@dataclass
class _Found:
    checks: dict[int, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def check(self, row: _Row) -> dict[str, Any]:
        return self.checks.setdefault(row.id, {"content_hash": row.hash})


class _Progress:
    """Progress to the scan row, at most every half second (each write is a query)."""

    def __init__(self, scan: QualityScan, stages: int, n: int) -> None:
        self.scan, self.n, self.total = scan, n, max(1, stages * n)
        self.base = 0
        self.last = 0.0

    def stage(self, name: str, index: int) -> None:
        self.base = index * self.n
        QualityScan.objects.filter(pk=self.scan.pk).update(stage=name, processed=self.base, total=self.total)

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.5:
            return
        self.last = now
        part = int(self.n * done / total) if total else self.n
        QualityScan.objects.filter(pk=self.scan.pk).update(processed=self.base + part)


STAGES = ("duplicates", "personal data", "lengths", "format", "facts")
STAGE_LABELS = {
    "duplicates": gettext_lazy("looking for duplicates"),
    "personal data": gettext_lazy("looking for personal data"),
    "lengths": gettext_lazy("counting tokens"),
    "format": gettext_lazy("checking the format"),
    "facts": gettext_lazy("looking for facts"),
}


def quality_scan_execute(*, scan: QualityScan) -> QualityScan:
    claimed = QualityScan.objects.filter(pk=scan.pk, status=QualityScan.Status.QUEUED).update(
        status=QualityScan.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return scan
    try:
        rows = [
            _Row(pk, messages, split, digest)
            for pk, messages, split, digest in Example.objects.filter(project_id=scan.project_id)
            .order_by("pk")
            .values_list("pk", "messages", "split", "content_hash")
        ]
        progress = _Progress(scan, len(STAGES), len(rows))
        found = _Found()
        project = scan.project
        cfg = scan.config
        seconds: dict[str, float] = {}

        def timed(index: int, name: str, run):
            progress.stage(name, index)
            started = time.monotonic()
            result = run()
            seconds[name] = round(time.monotonic() - started, 2)
            return result

        pairs = timed(0, "duplicates", lambda: _duplicates(rows, cfg, found, progress))
        timed(1, "personal data", lambda: _pii(rows, found, progress))
        timed(2, "lengths", lambda: _lengths(rows, cfg, found))
        timed(3, "format", lambda: _formats(rows, project, found))
        timed(4, "facts", lambda: _facts(rows, project, found))
        found.summary["seconds"] = seconds
        _store(scan, rows, pairs, found)
    except Exception as exc:
        log.exception("quality scan %s failed", scan.pk)
        QualityScan.objects.filter(pk=scan.pk).update(
            status=QualityScan.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
        )
        raise
    scan.refresh_from_db()
    return scan


def _duplicates(rows: list[_Row], cfg: dict[str, Any], found: _Found, progress: _Progress) -> list[tuple]:
    from curation.quality import near_dupes

    texts = [dedupe_text(r.messages) for r in rows]
    started = time.monotonic()
    pairs = [
        (
            p.a,
            p.b,
            p.similarity,
            DuplicatePair.Kind.EXACT if rows[p.a].hash == rows[p.b].hash else DuplicatePair.Kind.NEAR,
        )
        for p in near_dupes.find_pairs(texts, threshold=cfg["dedupe_threshold"], progress=progress)
    ]
    info: dict[str, Any] = {"near_seconds": round(time.monotonic() - started, 2)}
    if cfg.get("semantic_dedupe"):
        if len(rows) > SEMANTIC_LIMIT:
            info["semantic_skipped"] = _(
                "Semantic duplicates were not checked: the project has more than %(limit)s examples."
            ) % {"limit": f"{SEMANTIC_LIMIT:,}"}
        else:
            from django.conf import settings

            from curation.rules.embeddings import EmbeddingStore

            vectors = EmbeddingStore(settings.DATA_DIR / "embeddings").encode(texts)
            seen = {(a, b) for a, b, _s, _k in pairs}
            for p in near_dupes.semantic_pairs(vectors, threshold=cfg["semantic_threshold"]):
                if (p.a, p.b) not in seen:
                    pairs.append((p.a, p.b, p.similarity, DuplicatePair.Kind.SEMANTIC))
    found.summary["duplicates"] = info
    return pairs


def _pii(rows: list[_Row], found: _Found, progress: _Progress) -> None:
    from curation.quality import pii

    kinds: Counter[str] = Counter()
    for i, row in enumerate(rows):
        hits = pii.detect_messages(row.messages)
        if hits:
            # Offsets and kinds only: a copy of the personal data itself would outlive its redaction.
            found.check(row).update(
                pii=[{k: h[k] for k in ("message", "kind", "start", "end")} for h in hits], pii_count=len(hits)
            )
            kinds.update(h["kind"] for h in hits)
        if i % 2000 == 0:
            progress(i, len(rows))
    found.summary["pii"] = dict(kinds)


def _lengths(rows: list[_Row], cfg: dict[str, Any], found: _Found) -> None:
    from curation.quality import lengths

    limit = cfg["max_seq_length"]
    try:
        tokenizer = lengths.load_tokenizer(cfg["base_model"])
        context = lengths.context_length(cfg["base_model"])
    except lengths.LengthError as exc:
        found.summary["lengths"] = {"error": str(exc)}
        return
    counts = lengths.count_tokens(tokenizer, [r.messages for r in rows])
    over_limit = over_context = 0
    for row, n in zip(rows, counts, strict=True):
        if n > limit or n > context:
            found.check(row).update(tokens=n, truncated=n > limit, over_context=n > context)
            over_limit += n > limit
            over_context += n > context
    ordered = sorted(counts)
    found.summary["lengths"] = {
        "tokenizer": cfg["base_model"] or "SmolLM2-135M-Instruct",
        "limit": limit,
        "context": context,
        "over_limit": over_limit,
        "over_context": over_context,
        "max": ordered[-1] if ordered else 0,
        "mean": round(sum(ordered) / len(ordered), 1) if ordered else 0,
        "p95": ordered[int(0.95 * (len(ordered) - 1))] if ordered else 0,
        "bins": [[b.low, b.high, b.count] for b in lengths.histogram(counts, limits=[limit, context])],
    }


def _formats(rows: list[_Row], project: Project, found: _Found) -> None:
    from curation.quality import formats

    info: dict[str, Any] = {}
    if project.kind == Project.Kind.STRUCTURED:
        if project.json_schema is not None and project.structured_format == Project.StructuredFormat.JSON:
            info["schema_problems"] = formats.check_schema(project.json_schema)
        schema = None if info.get("schema_problems") else project.json_schema

        def check(messages: list[dict[str, Any]]) -> list[str]:
            return formats.check_structured(messages, format=project.structured_format, schema=schema)

    elif project.kind == Project.Kind.CLASSIFICATION:
        # The label is the answer; a conversation that stops at the user's turn is normal here.
        return
    else:
        expected = project.system_prompt or formats.usual_system_prompt(r.messages for r in rows)
        info["system_prompt"] = expected

        def check(messages: list[dict[str, Any]]) -> list[str]:
            return formats.check_chat(messages, expected_system=expected)

    problems = 0
    for row in rows:
        if found_problems := check(row.messages):
            found.check(row)["format_problems"] = found_problems[:5]
            problems += 1
    info["examples"] = problems
    found.summary["format"] = info


def _facts(rows: list[_Row], project: Project, found: _Found) -> None:
    from curation.quality import facts

    if project.kind == Project.Kind.CLASSIFICATION:
        return
    flagged = 0
    for row in rows:
        brings, new = facts.assess(row.messages)
        if brings:
            found.check(row).update(new_facts=new[:10], brings_facts=True)
            flagged += 1
    found.summary["facts"] = {
        "examples": len(rows),
        "with_new_facts": flagged,
        "share": round(flagged / len(rows), 3) if rows else 0.0,
    }


@transaction.atomic
def _store(scan: QualityScan, rows: list[_Row], pairs: list[tuple], found: _Found) -> None:
    from curation.quality import near_dupes

    # Findings of earlier scans go: the page shows the latest, and 100k rows per scan add up.
    old = QualityScan.objects.filter(project_id=scan.project_id).exclude(pk=scan.pk)
    ExampleCheck.objects.filter(scan__in=old).delete()
    DuplicatePair.objects.filter(scan__in=old).delete()
    DuplicateCluster.objects.filter(scan__in=old).delete()

    by_pair = {(a, b): (s, k) for a, b, s, k in pairs}
    groups = near_dupes.clusters(len(rows), [near_dupes.Pair(a, b, s) for a, b, s, _k in pairs])
    member_of = {i: g for g, members in enumerate(groups) for i in members}
    lowest: dict[int, float] = {}
    for (a, _b), (s, _k) in by_pair.items():
        lowest[member_of[a]] = min(lowest.get(member_of[a], 1.0), s)
    clusters = [
        DuplicateCluster(
            scan=scan,
            size=len(members),
            similarity=lowest.get(g, 0.0),
            splits=sorted({rows[i].split for i in members}),
        )
        for g, members in enumerate(groups)
    ]
    DuplicateCluster.objects.bulk_create(clusters, batch_size=1000)
    DuplicatePair.objects.bulk_create(
        [
            DuplicatePair(
                scan=scan,
                cluster=clusters[member_of[a]],
                a_id=rows[a].id,
                b_id=rows[b].id,
                a_hash=rows[a].hash,
                b_hash=rows[b].hash,
                kind=k,
                similarity=s,
            )
            for (a, b), (s, k) in by_pair.items()
        ],
        batch_size=1000,
    )
    for g, members in enumerate(groups):
        for i in members:
            found.check(rows[i])["cluster"] = clusters[g]
    ExampleCheck.objects.bulk_create(
        [ExampleCheck(scan=scan, example_id=pk, **values) for pk, values in found.checks.items()], batch_size=1000
    )
    summary = found.summary
    summary["duplicates"].update(
        clusters=len(groups),
        in_clusters=sum(len(g) for g in groups),
        pairs=len(pairs),
        exact=sum(1 for p in pairs if p[3] == DuplicatePair.Kind.EXACT),
    )
    summary["examples"] = len(rows)
    QualityScan.objects.filter(pk=scan.pk).update(
        status=QualityScan.Status.DONE,
        processed=F("total"),
        stage="",
        summary=summary,
        finished_at=timezone.now(),
    )


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
    keys = sorted(found)[:limit] if limit else sorted(found)
    examples = Example.objects.in_bulk({i for key in keys for i in key})
    return [Leak(examples[e], examples[t], *found[(e, t)]) for e, t in keys if e in examples and t in examples]


def leak_count(project: Project) -> int:
    return len(leaks(project))


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
    for messages in recheck.values_list("messages", flat=True).iterator(chunk_size=2000):
        hits = pii.detect_messages(messages)
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


# --- actions -----------------------------------------------------------------------------


def _author(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def _write_messages(
    *, example: Example, user: Any, messages: list[dict[str, Any]], action: str, extra: dict[str, Any] | None = None
) -> Example:
    """Replace messages (and fields in ``extra``) under the caller's row lock, with a revision."""
    before = example_snapshot(example)
    fields = {"messages": messages, "content_hash": content_hash(messages), "search_text": search_text(messages)}
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
    redacted, count = pii.redact_messages(locked.messages, kinds=kinds)
    if count:
        _write_messages(example=locked, user=user, messages=redacted, action=ExampleRevision.Action.REDACT)
        ExampleCheck.objects.filter(example=locked).update(pii=[], pii_count=0, content_hash=locked.content_hash)
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
