"""Running a quality scan (the Huey task's body): read every example once, run the plain-Python
checks in ``curation.quality`` (duplicates, personal data, token lengths, format, facts) and
store what they found in one transaction at the end, replacing the previous scan's findings.
A scan that fails or whose worker dies writes nothing. What is done with the findings is in
curation/quality/services.py."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.models import (
    DuplicateCluster,
    DuplicatePair,
    Example,
    ExampleCheck,
    FindingDismissal,
    Project,
    QualityScan,
)
from curation.quality.services import STAGE_LABELS, dedupe_text

log = logging.getLogger(__name__)

# Cosine similarity of every pair is quadratic; past this many examples the semantic pass is
# skipped with a note rather than keeping a worker busy for an hour.
SEMANTIC_LIMIT = 20_000


@dataclass
class _Row:
    id: int
    messages: list[dict[str, Any]]
    split: str
    hash: str
    tools: list[dict[str, Any]] | None = None


@dataclass
class _Found:
    project_id: int = 0
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


STAGES = tuple(STAGE_LABELS)


def quality_scan_execute(*, scan: QualityScan) -> QualityScan:
    if not QualityScan.claim(scan.pk, started_at=timezone.now()):
        return scan
    try:
        rows = [
            _Row(pk, messages, split, digest, tools)
            for pk, messages, split, digest, tools in Example.objects.filter(project_id=scan.project_id)
            .order_by("pk")
            .values_list("pk", "messages", "split", "content_hash", "tools")
        ]
        progress = _Progress(scan, len(STAGES), len(rows))
        found = _Found(scan.project_id)
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
    # Pairs a reviewer dismissed as meant to be alike, while both examples are as they were then.
    from curation.quality.dismissals import dismissed_pairs, pair_key

    dismissed = dismissed_pairs(found.project_id)
    if dismissed:
        kept = [
            p
            for p in pairs
            if (rows[p[0]].id, pair_key(rows[p[1]].id, rows[p[1]].hash)) not in dismissed
            and (rows[p[1]].id, pair_key(rows[p[0]].id, rows[p[0]].hash)) not in dismissed
        ]
        info["dismissed_pairs"] = len(pairs) - len(kept)
        pairs = kept
    found.summary["duplicates"] = info
    return pairs


def _pii(rows: list[_Row], found: _Found, progress: _Progress) -> None:
    from curation.quality import pii
    from curation.quality.dismissals import dismissed_keys, pii_keep

    # Findings a reviewer dismissed on this very content are left out.
    dismissed = dismissed_keys(found.project_id, FindingDismissal.Kind.PII)
    kinds: Counter[str] = Counter()
    left_out = 0
    for i, row in enumerate(rows):
        every = pii.detect_messages(row.messages)
        hits = pii_keep(every, dismissed.get(row.id))
        left_out += len(every) - len(hits)
        if hits:
            # Offsets and kinds only: a copy of the personal data itself would outlive its redaction.
            found.check(row).update(
                pii=[{k: h[k] for k in ("message", "kind", "start", "end")} for h in hits], pii_count=len(hits)
            )
            kinds.update(h["kind"] for h in hits)
        if i % 2000 == 0:
            progress(i, len(rows))
    found.summary["pii"] = dict(kinds)
    found.summary["dismissed"] = {"pii": left_out}


def _lengths(rows: list[_Row], cfg: dict[str, Any], found: _Found) -> None:
    from curation.quality import lengths

    limit = cfg["max_seq_length"]
    try:
        tokenizer = lengths.load_tokenizer(cfg["base_model"])
        context = lengths.context_length(cfg["base_model"])
    except lengths.LengthError as exc:
        found.summary["lengths"] = {"error": str(exc)}
        return
    counts = lengths.count_tokens(tokenizer, [r.messages for r in rows], tools=[r.tools for r in rows])
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
