"""Accepting a run's weak labels, and withdrawing them.

A run gives every example two answers: the label model's and majority vote's (each with a
confidence), and either may be accepted above a threshold. What an accept would do is shown
before it is done: coverage and accuracy on the labels people gave, at that threshold and at
the usual ones, and the first examples with the label they would get. Accepting a run older
than the newest moves labels back, so it asks first. Withdrawing takes a run's labels off the
examples that still carry them; a label a person has set since is theirs and stays.

Every change is an example revision (before, after, and the rule set in ``label_source``); a
label a person gave is never replaced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.core.errors import ServiceError
from curation.core.permissions import Action, can
from curation.core.services import example_snapshot
from curation.models import Example, ExampleRevision, RuleRun, WeakLabel
from curation.rules.choosing import ROWS_PER_PAGE, Choice, RowsPage, rows_page
from curation.rules.spec import RuleError

LABEL_MODEL, MAJORITY = WeakLabel.Source.LABEL_MODEL, WeakLabel.Source.MAJORITY
SOURCES = (LABEL_MODEL, MAJORITY)
# Where the curve is read; the chosen threshold is added when it is not one of them.
CURVE_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
PREVIEW_ROWS = ROWS_PER_PAGE
KEPT_SHOWN = 50
CHUNK = 1000
# (label, confidence) fields of each source on WeakLabel.
FIELDS = {LABEL_MODEL: ("label", "confidence"), MAJORITY: ("majority_label", "majority_confidence")}


class NeedsConfirmation(ServiceError):
    """Accepting a run older than the newest would move labels back: it needs a yes."""

    status = 409

    def __init__(self, run: RuleRun, newest: RuleRun, summary: AcceptSummary) -> None:
        message = _(
            "Rule set v%(v)d is older than v%(newest)d. Accepting it would write %(n)d labels: "
            "%(new)d examples get a first label and %(relabel)d labels from rules change; %(newer)d "
            "of the examples now carry a label from a newer rule set. Confirm to accept anyway."
        ) % {
            "v": run.number,
            "newest": newest.number,
            "n": summary.acceptable,
            "new": summary.new,
            "relabel": summary.relabel,
            "newer": summary.from_newer,
        }
        super().__init__("confirm", message)
        self.summary = summary
        self.newest = newest

    def data(self) -> dict[str, Any]:
        s = self.summary
        return {
            "detail": self.message,
            "newest": self.newest.number,
            **{k: getattr(s, k) for k in ("acceptable", "new", "relabel", "from_newer")},
        }


def _check(user: Any, run: RuleRun) -> None:
    if not can(user, run.project, Action.MANAGE_RULES):
        raise PermissionDenied(_("Only project admins may accept or withdraw weak labels."))


def run_model(run: RuleRun) -> str:
    """The model a run's weak labels came from: majority vote where it had too few rules."""
    return MAJORITY if (run.metrics or {}).get("model") == MAJORITY else LABEL_MODEL


def sources_of(run: RuleRun) -> list[str]:
    """The sources a run offers: a run with too few rules has no label model."""
    return [MAJORITY] if run_model(run) == MAJORITY else list(SOURCES)


def better_source(run: RuleRun) -> str:
    """The source that was more accurate where it decided, on the labels people gave."""
    metrics = run.metrics or {}
    accuracy = {s: (metrics.get(s) or {}).get("accuracy") for s in SOURCES}
    if run_model(run) == MAJORITY or accuracy[LABEL_MODEL] is None:
        return MAJORITY if accuracy[MAJORITY] is not None or run_model(run) == MAJORITY else LABEL_MODEL
    if accuracy[MAJORITY] is not None and accuracy[MAJORITY] > accuracy[LABEL_MODEL]:
        return MAJORITY
    return LABEL_MODEL


def source_clean(run: RuleRun, source: Any) -> str:
    """The source asked for, or the run's own model when none is."""
    if source in (None, ""):
        return run_model(run)
    if source not in SOURCES:
        raise RuleError("source", _("Choose label_model or majority."))
    if source not in sources_of(run):
        raise RuleError(
            "source",
            _("This rule set had fewer than three rules, so it has no label model: accept from majority vote."),
        )
    return str(source)


def threshold_clean(threshold: Any) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise RuleError("threshold", _("Must be a number between 0 and 1.")) from None
    if not 0.0 <= value <= 1.0:
        raise RuleError("threshold", _("Must be a number between 0 and 1."))
    return value


def newest_run(run: RuleRun) -> RuleRun | None:
    """The project's newest finished run, when it is newer than ``run``."""
    return (
        RuleRun.objects.filter(project_id=run.project_id, status=RuleRun.Status.DONE, number__gt=run.number)
        .order_by("-number")
        .first()
    )


def _candidates(run: RuleRun, source: str, threshold: float) -> QuerySet[WeakLabel]:
    """The run's weak labels that accepting would write: the source decides at ``threshold``,
    nobody has labeled the example (a label from rules may be replaced), and the example does
    not carry this very label already."""
    label, confidence = FIELDS[source]
    return (
        WeakLabel.objects.filter(run=run, **{f"{label}__isnull": False, f"{confidence}__gte": threshold})
        .filter(Q(example__label__isnull=True) | Q(example__weak_label__isnull=False))
        .exclude(example__weak_label=F("pk"), accepted_from=source)
    )


@dataclass
class CurvePoint:
    """At one threshold: on the labels people gave, how many the source decides (covered) and
    gets right; and how many examples accepting would write."""

    threshold: float
    gold: int
    covered: int
    correct: int
    acceptable: int

    @property
    def coverage(self) -> float | None:
        return self.covered / self.gold if self.gold else None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.covered if self.covered else None

    def data(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "gold": self.gold,
            "covered": self.covered,
            "correct": self.correct,
            "coverage": self.coverage,
            "accuracy": self.accuracy,
            "acceptable": self.acceptable,
        }


def accept_curve(*, run: RuleRun, source: str, thresholds: list[float]) -> list[CurvePoint]:
    """Coverage and accuracy of ``source`` on the examples people labeled (as they are now),
    and the examples accepting would write, at each threshold: two queries in all."""
    label, confidence = FIELDS[source]
    rows = list(
        WeakLabel.objects.filter(run=run, example__label__isnull=False, example__weak_label__isnull=True)
        .values_list(f"{label}_id", confidence, "example__label_id")
        .order_by()
    )
    # An undecided example is below every threshold.
    scores = np.array([score if chosen is not None else -np.inf for chosen, score, _gold in rows], dtype=float)
    right = np.array([chosen == gold for chosen, _score, gold in rows], dtype=bool)
    writable = np.array(list(_candidates(run, source, 0.0).values_list(confidence, flat=True).order_by()), dtype=float)
    points = []
    for t in thresholds:
        hit = scores >= t
        points.append(CurvePoint(t, len(rows), int(hit.sum()), int((hit & right).sum()), int((writable >= t).sum())))
    return points


@dataclass
class AcceptSummary:
    """What accepting ``source`` at ``threshold`` would do, before it is done."""

    run: RuleRun
    source: str
    threshold: float
    acceptable: int = 0  # examples accepting would write
    new: int = 0  # of them, without a label now
    relabel: int = 0  # of them, with a label from rules that would change
    from_newer: int = 0  # of them, with a label accepted from a newer rule set
    point: CurvePoint | None = None
    curve: list[CurvePoint] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)
    newest: RuleRun | None = None  # the newest finished run, when newer than this one
    page: RowsPage | None = None  # a page of the rows accepting would write
    choice: Choice = field(default_factory=Choice)  # the rows a person chose, for the confirm step


def accept_summary(
    *,
    run: RuleRun,
    source: str,
    threshold: float,
    rows: int = PREVIEW_ROWS,
    page: int = 1,
    choice: Choice | None = None,
) -> AcceptSummary:
    """Counts, the curve with the chosen threshold marked, and page ``page`` of the examples
    accepting would write (``rows`` of them in ``preview``, 0 for none), each with its text, the
    proposed label, its confidence, the rules' votes and the current label. With ``choice``,
    the counts are of the chosen rows."""
    summary = AcceptSummary(run, source, threshold, newest=newest_run(run))
    if run.status != RuleRun.Status.DONE:
        return summary
    label, _confidence = FIELDS[source]
    candidates = (choice or Choice()).apply(_candidates(run, source, threshold))
    counts = candidates.aggregate(
        acceptable=Count("pk"),
        new=Count("pk", filter=Q(example__label__isnull=True)),
        relabel=Count("pk", filter=Q(example__label__isnull=False) & ~Q(example__label=F(label))),
        from_newer=Count("pk", filter=Q(example__weak_label__run__number__gt=run.number)),
    )
    summary.acceptable, summary.new = counts["acceptable"], counts["new"]
    summary.relabel, summary.from_newer = counts["relabel"], counts["from_newer"]
    thresholds = sorted({*CURVE_THRESHOLDS, threshold})
    summary.curve = accept_curve(run=run, source=source, thresholds=thresholds)
    summary.point = next(p for p in summary.curve if p.threshold == threshold)
    if rows:
        summary.page = rows_page(candidates, run=run, source_fields=FIELDS[source], page=page, total=summary.acceptable)
        summary.preview = [row.data() for row in summary.page.rows[:rows]]
    return summary


@transaction.atomic
def weak_labels_accept(
    *,
    run: RuleRun,
    user: Any,
    threshold: float,
    source: str | None = None,
    confirm: bool = False,
    choice: Choice | None = None,
) -> int:
    """Put ``source``'s labels with at least ``threshold`` confidence on the examples nobody has
    labeled (of them, those ``choice`` keeps: all, only some, all except some), each change a
    revision that records the rule set, the source and the confidence. A run older than the
    newest finished one needs ``confirm``; else NeedsConfirmation says how many labels would
    change."""
    _check(user, run)
    if run.status != RuleRun.Status.DONE:
        raise RuleError("run", _("This run has not finished."))
    threshold = threshold_clean(threshold)
    source = source_clean(run, source)
    newest = newest_run(run)
    if newest is not None and not confirm:
        summary = accept_summary(run=run, source=source, threshold=threshold, rows=0, choice=choice)
        summary.choice = choice or Choice()
        if summary.acceptable:
            raise NeedsConfirmation(run, newest, summary)
    label, confidence = FIELDS[source]
    chosen = (choice or Choice()).apply(_candidates(run, source, threshold))
    weak = {w.example_id: w for w in chosen.select_related(label)}
    author = user if getattr(user, "is_authenticated", False) else None
    changed = 0
    ids = sorted(weak)
    for start in range(0, len(ids), CHUNK):
        examples = Example.objects.select_for_update(of=("self",)).filter(pk__in=ids[start : start + CHUNK])
        revisions = []
        for example in examples.select_related("label"):
            w = weak[example.pk]
            if example.label_id is not None and example.weak_label_id is None:
                continue  # a person labeled it since the query above
            before = example_snapshot(example)
            example.label, example.weak_label = getattr(w, label), w
            example.version += 1
            example.updated_at = timezone.now()
            after = example_snapshot(example)
            after["label_source"] = {
                "rule_set": run.number,
                "model": source,
                "probability": round(getattr(w, confidence), 4),
            }
            revisions.append(_revision(example, author, before, after))
        Example.objects.bulk_update(
            [r.example for r in revisions], ["label", "weak_label", "version", "updated_at"], batch_size=CHUNK
        )
        ExampleRevision.objects.bulk_create(revisions)
        WeakLabel.objects.filter(pk__in=[weak[r.example.pk].pk for r in revisions]).update(accepted_from=source)
        changed += len(revisions)
    return changed


def _revision(example: Example, author: Any, before: dict[str, Any], after: dict[str, Any]) -> ExampleRevision:
    return ExampleRevision(
        example=example,
        project_id=example.project_id,
        user=author,
        action=ExampleRevision.Action.UPDATE,
        version=example.version,
        before=before,
        after=after,
    )


# --- withdrawing ----------------------------------------------------------------------


@dataclass
class KeptLabel:
    """A label accepted from the run that a person has set since: it is theirs now."""

    example_id: int
    text: str
    label: str | None
    by: str
    at: datetime | None


@dataclass
class Withdrawal:
    """What withdrawing a run's labels does (or did): the labels taken off, and those kept
    because a person has set the example's label since (the first KEPT_SHOWN listed)."""

    run: RuleRun
    withdrawn: int = 0
    kept_count: int = 0
    kept: list[KeptLabel] = field(default_factory=list)


def _kept(run: RuleRun) -> tuple[int, list[KeptLabel]]:
    """Examples that took this run's label and whose label a person has set since: the last
    revision that speaks of rules is this run's accept, and the example no longer carries a
    label from rules (a person's edit is the only thing that clears it, withdrawing aside)."""
    took = ExampleRevision.objects.filter(
        project_id=run.project_id,
        example__isnull=False,
        example__weak_label__isnull=True,
        after__label_source__rule_set=run.number,
    ).values("example_id")
    latest: dict[int, tuple[int, Any]] = {}
    revisions = ExampleRevision.objects.filter(example_id__in=took, after__has_key="label_source")
    for example_id, pk, source in revisions.values_list("example_id", "id", "after__label_source").order_by("id"):
        latest[example_id] = (pk, source)
    mine = {
        example_id: pk
        for example_id, (pk, source) in latest.items()
        if isinstance(source, dict) and source.get("rule_set") == run.number and not source.get("withdrawn")
    }
    if not mine:
        return 0, []
    shown = sorted(mine)[:KEPT_SHOWN]
    examples = {e.pk: e for e in Example.objects.filter(pk__in=shown).select_related("label")}
    changes = {}
    for revision in (
        ExampleRevision.objects.filter(example_id__in=shown)
        .select_related("user")
        .order_by("id")
        .only("id", "example_id", "created_at", "user__username")
    ):
        if revision.pk > mine[revision.example_id] and revision.example_id not in changes:
            changes[revision.example_id] = revision
    kept = []
    for example_id in shown:
        example, change = examples[example_id], changes.get(example_id)
        kept.append(
            KeptLabel(
                example_id,
                example.first_user_text,
                example.label.name if example.label_id else None,
                str(change.user) if change is not None and change.user is not None else "—",
                change.created_at if change is not None else None,
            )
        )
    return len(mine), kept


def withdrawal_plan(*, run: RuleRun) -> Withdrawal:
    """What withdrawing would do, before it is done."""
    kept_count, kept = _kept(run)
    withdrawn = Example.objects.filter(project_id=run.project_id, weak_label__run=run).count()
    return Withdrawal(run, withdrawn, kept_count, kept)


@transaction.atomic
def weak_labels_withdraw(*, run: RuleRun, user: Any) -> Withdrawal:
    """Take the run's labels off the examples that still carry them (they are left without a
    label, as before the accept), each a revision whose ``label_source`` says so. A label a
    person has set since is kept and reported."""
    _check(user, run)
    author = user if getattr(user, "is_authenticated", False) else None
    ids = list(
        Example.objects.filter(project_id=run.project_id, weak_label__run=run)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    withdrawn = 0
    for start in range(0, len(ids), CHUNK):
        examples = Example.objects.select_for_update(of=("self",)).filter(pk__in=ids[start : start + CHUNK])
        revisions = []
        for example in examples.select_related("label", "weak_label"):
            weak = example.weak_label
            if weak is None or weak.run_id != run.pk:
                continue  # changed since the query above
            before = example_snapshot(example)
            example.label, example.weak_label = None, None
            example.version += 1
            example.updated_at = timezone.now()
            after = example_snapshot(example)
            after["label_source"] = {"rule_set": run.number, "model": weak.accepted_from, "withdrawn": True}
            revisions.append(_revision(example, author, before, after))
        Example.objects.bulk_update(
            [r.example for r in revisions], ["label", "weak_label", "version", "updated_at"], batch_size=CHUNK
        )
        ExampleRevision.objects.bulk_create(revisions)
        withdrawn += len(revisions)
    WeakLabel.objects.filter(run=run).exclude(accepted_from="").update(accepted_from="")
    kept_count, kept = _kept(run)
    return Withdrawal(run, withdrawn, kept_count, kept)


def with_labels_in_use(runs: QuerySet[RuleRun]) -> QuerySet[RuleRun]:
    """The runs, each with ``in_use``: how many examples carry a label accepted from it now."""
    count = (
        Example.objects.filter(weak_label__run=OuterRef("pk"))
        .order_by()
        .values("weak_label__run")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return runs.annotate(in_use=Coalesce(Subquery(count, output_field=IntegerField()), 0))
