"""Writes for weak supervision: rules, their runs and weak labels (accepting and withdrawing
them is in accepting.py).

The browser, the API and the Huey task all come through here, so permissions, validation
and provenance are enforced once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.core.errors import ServiceError
from curation.core.permissions import Action, can
from curation.models import Example, Label, LabelingRule, Project, RuleRevision, RuleRun, WeakLabel
from curation.rules import spec as S
from curation.rules import textstore
from curation.rules.engine import ABSTAIN, Corpus, apply_rules, highlight, match_spans
from curation.rules.models_backed import Models
from curation.rules.spec import RuleError, RuleSpec

if TYPE_CHECKING:
    from curation.rules.analysis import Labeling

PREVIEW_SAMPLE = 8
# The preview looks at the first examples only, so typing stays responsive on a large
# project; rules that run a model look at fewer. Applying a rule set covers every example.
PREVIEW_LIMIT = 20_000
MODEL_PREVIEW_LIMIT = {S.SIMILARITY: 2000, S.ZERO_SHOT: 12}


class StaleRule(ServiceError):
    """Someone else saved the rule since this version was read."""

    status = 409

    def __init__(self, rule: LabelingRule) -> None:
        message = _("Someone saved this rule since you read it; it is now at version %(version)d.")
        super().__init__("", message % {"version": rule.version})
        self.current = rule


def _check(user: Any, project: Project) -> None:
    if not can(user, project, Action.MANAGE_RULES):
        raise PermissionDenied(_("Only project admins may write or apply rules."))


def project_labels(project: Project) -> list[Label]:
    """The project's labels in matrix order (index = position)."""
    return list(project.labels.order_by("id"))


@dataclass
class RuleInput:
    """A rule as typed, checked: what create, update and preview share."""

    name: str
    kind: str
    params: dict[str, Any]
    label: Label
    target: str
    active: bool = True


def rule_clean(
    *,
    project: Project,
    name: Any,
    kind: Any,
    params: Any,
    label: Any,
    target: Any,
    active: Any = True,
    require_name: bool = True,
    rule_key: int | None = None,
) -> RuleInput:
    name = (name or "").strip() if isinstance(name, str) else ""
    if require_name and not name:
        raise RuleError("name", _("Give the rule a name."))
    if len(name) > 100:
        raise RuleError("name", _("At most 100 characters."))
    kind = kind if isinstance(kind, str) else ""
    cleaned = S.clean_params(kind, params if params is not None else {})
    target = S.clean_target(kind, target)
    if kind == S.COMBINE:
        saved = {pk: (k, p) for pk, k, p in project.rules.values_list("pk", "kind", "params")}
        S.combine_check(rule_key, cleaned, saved)
    if kind == S.ZERO_SHOT and "backend" in cleaned:
        cleaned["backend"] = _backend_clean(project, cleaned["backend"])
    if isinstance(label, Label):
        label_obj = label if label.project_id == project.pk else None
    else:
        label_obj = project.labels.filter(name=label).first() if isinstance(label, str) and label else None
    if label_obj is None:
        raise RuleError("label", _("Choose the label this rule votes for (one of the project's labels)."))
    return RuleInput(name, kind, cleaned, label_obj, target, bool(active))


def _backend_clean(project: Project, spec: dict[str, Any]) -> dict[str, Any]:
    """An LLM rule's model, checked as a generation job's is: one of the connections an admin
    defined for the project (or for every project), or a finished training run of the project."""
    from curation.connections.backends import backend_spec_clean
    from curation.connections.services import BackendChoiceError

    try:
        return backend_spec_clean(spec, project)
    except BackendChoiceError as error:
        raise RuleError("backend", error.message) from None


def _spec_dict(rule: LabelingRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "kind": rule.kind,
        "params": rule.params,
        "label": rule.label.name,
        "target": rule.target,
        "active": rule.active,
    }


def _record_revision(rule: LabelingRule, user: Any) -> RuleRevision:
    stats: dict[str, Any] = {}
    if rule.kind not in MODEL_PREVIEW_LIMIT:
        # Cheap rules are measured on every example as they are saved; model-backed ones when applied.
        preview = rule_preview(
            project=rule.project,
            rule=RuleInput(rule.name, rule.kind, rule.params, rule.label, rule.target, rule.active),
            sample=0,
        )
        stats["saved"] = preview.stats()
    return RuleRevision.objects.create(
        rule=rule,
        version=rule.version,
        spec=_spec_dict(rule),
        stats=stats,
        edited_by=user if getattr(user, "is_authenticated", False) else None,
    )


@transaction.atomic
def rule_create(*, project: Project, user: Any, **fields: Any) -> LabelingRule:
    _check(user, project)
    data = rule_clean(project=project, **fields)
    if project.rules.filter(name=data.name).exists():
        raise RuleError("name", _("A rule with this name exists already."))
    author = user if getattr(user, "is_authenticated", False) else None
    rule = LabelingRule.objects.create(
        project=project,
        name=data.name,
        kind=data.kind,
        params=data.params,
        label=data.label,
        target=data.target,
        active=data.active,
        created_by=author,
        updated_by=author,
    )
    _record_revision(rule, user)
    return rule


@transaction.atomic
def rule_update(*, rule: LabelingRule, user: Any, version: int, **fields: Any) -> LabelingRule:
    """Change a rule if it is still at ``version`` (else StaleRule); each change is a new version."""
    project = rule.project
    _check(user, project)
    current = {**_spec_dict(rule), **{k: v for k, v in fields.items() if v is not None}}
    data = rule_clean(project=project, rule_key=rule.pk, **current)
    if project.rules.filter(name=data.name).exclude(pk=rule.pk).exists():
        raise RuleError("name", _("A rule with this name exists already."))
    updated = LabelingRule.objects.filter(pk=rule.pk, version=version).update(
        name=data.name,
        kind=data.kind,
        params=data.params,
        label=data.label,
        target=data.target,
        active=data.active,
        version=F("version") + 1,
        updated_at=timezone.now(),
        updated_by=user if getattr(user, "is_authenticated", False) else None,
    )
    if not updated:
        raise StaleRule(LabelingRule.objects.select_related("label").get(pk=rule.pk))
    rule.refresh_from_db()
    _record_revision(rule, user)
    return rule


@transaction.atomic
def rule_delete(*, rule: LabelingRule, user: Any) -> None:
    """Delete a rule that no combination uses (else RuleError naming the combinations)."""
    _check(user, rule.project)
    users = [
        name
        for name, params in rule.project.rules.filter(kind=S.COMBINE).values_list("name", "params")
        if rule.pk in (params or {}).get("rules", ())
    ]
    if users:
        raise RuleError(
            "rules",
            _("Combinations use this rule: %(names)s. Change or delete them first.") % {"names": ", ".join(users)},
        )
    rule.delete()


def _operand_snapshots(project: Project, params_list: list[dict[str, Any]], skip: set[int]) -> list[dict[str, Any]]:
    """The saved rules that combinations (their ``params``) use, directly or through other
    combinations, leaving out those in ``skip`` (the rules applied anyway)."""
    wanted = [ref for params in params_list for ref in params.get("rules", ())]
    found: dict[int, dict[str, Any]] = {}
    while wanted:
        batch = [ref for ref in wanted if ref not in found and ref not in skip]
        wanted = []
        for rule in project.rules.filter(pk__in=batch).select_related("label"):
            found[rule.pk] = {"id": rule.pk, "version": rule.version, **_spec_dict(rule)}
            if rule.kind == S.COMBINE:
                wanted.extend(rule.params.get("rules", ()))
    return [found[pk] for pk in sorted(found)]


def _specs(snapshots: list[dict[str, Any]], index: dict[str, int]) -> list[RuleSpec]:
    return [RuleSpec(r["id"], r["kind"], index[r["label"]], r["target"], r["params"]) for r in snapshots]


# --- applying rules -------------------------------------------------------------------


def _reads_metadata(specs: list[RuleSpec]) -> bool:
    return any(spec.kind == S.METADATA for spec in specs)


def _apply(
    specs: list[RuleSpec],
    corpus: Corpus,
    models: Models,
    operands: list[RuleSpec] | None = None,
    timeouts: dict[Any, int] | None = None,
) -> np.ndarray:
    """The chunk's label matrix; rows where a regular expression ran out of time (the rule
    abstained there) are added to ``timeouts`` per rule."""
    L = apply_rules(specs, corpus, similarity=models.similarity, zero_shot=models.zero_shot, operands=operands or ())
    if timeouts is not None:
        for key, count in corpus.timeouts.items():
            timeouts[key] = timeouts.get(key, 0) + count
    return L


@dataclass
class Preview:
    """How a rule being written does on the project, for the editor and the API."""

    total: int = 0
    scanned: int = 0
    hits: int = 0
    gold_hits: int = 0
    correct: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)
    limited: bool = False
    # An LLM rule's preview: the model that answered, how many examples it was asked about and
    # how long it took, so the cost of a whole run can be estimated before starting one.
    model: str = ""
    asked: int = 0
    seconds: float = 0.0

    @property
    def coverage(self) -> float:
        return self.hits / self.scanned if self.scanned else 0.0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.gold_hits if self.gold_hits else None

    @property
    def seconds_per_example(self) -> float | None:
        return self.seconds / self.asked if self.asked else None

    @property
    def estimate_seconds(self) -> float | None:
        """About how long the model would take on every example of the project."""
        per = self.seconds_per_example
        return per * self.total if per is not None else None

    def cost(self) -> dict[str, Any] | None:
        """What asking the model cost here, and would cost on every example (None without a model)."""
        if not self.model:
            return None
        return {
            "model": self.model,
            "asked": self.asked,
            "seconds": self.seconds,
            "seconds_per_example": self.seconds_per_example,
            "estimate_seconds": self.estimate_seconds,
        }

    def stats(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "hits": self.hits,
            "coverage": self.coverage,
            "gold_hits": self.gold_hits,
            "correct": self.correct,
            "accuracy": self.accuracy,
        }


def rule_preview(*, project: Project, rule: RuleInput, sample: int = PREVIEW_SAMPLE) -> Preview:
    """Hits, a sample of hits with what matched, and accuracy on examples people labeled."""
    labels = project_labels(project)
    index = {label.pk: i for i, label in enumerate(labels)}
    spec = RuleSpec("preview", rule.kind, index[rule.label.pk], rule.target, rule.params)
    by_name = {label.name: i for i, label in enumerate(labels)}
    operands = _specs(_operand_snapshots(project, [rule.params], set()), by_name) if rule.kind == S.COMBINE else []
    models = Models(project, labels)
    limit = MODEL_PREVIEW_LIMIT.get(rule.kind, PREVIEW_LIMIT)
    preview = Preview(total=Example.objects.filter(project=project).count())
    for chunk in textstore.chunks(project, limit=limit, with_metadata=_reads_metadata([spec, *operands])):
        votes = _apply([spec], chunk.corpus, models, operands)[:, 0] != ABSTAIN
        preview.scanned += len(chunk)
        preview.hits += int(votes.sum())
        texts = chunk.corpus.texts(rule.target)
        for i in np.flatnonzero(votes):
            gold = chunk.gold[i]
            if gold is not None:
                preview.gold_hits += 1
                preview.correct += int(index.get(gold) == spec.label)
            if len(preview.sample) < sample:
                text = texts[i]
                parts = highlight(text, match_spans(spec, text))
                preview.sample.append({"id": chunk.corpus.ids[i], "parts": parts, "gold": gold})
    preview.limited = preview.scanned < preview.total
    if rule.kind == S.ZERO_SHOT:
        preview.model = ", ".join(models.backend_names.values())  # none when nothing was asked
        preview.asked, preview.seconds = models.asked, models.seconds
    names = {label.pk: label.name for label in labels}
    for item in preview.sample:
        item["gold"] = names.get(item["gold"])
    return preview


# --- rule runs ------------------------------------------------------------------------


def rule_run_create(*, project: Project, user: Any) -> RuleRun:
    """Snapshot the active rules as the next rule set version (curation/rules/tasks.py queues
    their application)."""
    _check(user, project)
    rules = list(project.rules.filter(active=True).select_related("label").order_by("id"))
    if not rules:
        raise RuleError("rules", _("There is no active rule to apply. Write a rule first."))
    labels = project_labels(project)
    if len(labels) < 2:
        raise RuleError("labels", _("The label model needs at least two labels in the project."))
    snapshot = [{"id": r.pk, "version": r.version, **_spec_dict(r)} for r in rules]
    # Inactive rules that active combinations use: applied for them, without a column of their own.
    operands = _operand_snapshots(project, [r.params for r in rules if r.kind == S.COMBINE], {r.pk for r in rules})
    for entry in snapshot:
        if entry["kind"] == S.COMBINE and operands:
            entry["operands"] = operands
    for _attempt in range(5):
        try:
            with transaction.atomic():
                number = (project.rule_runs.aggregate(n=Max("number"))["n"] or 0) + 1
                run = RuleRun.objects.create(
                    project=project,
                    number=number,
                    rules=snapshot,
                    label_names=[label.name for label in labels],
                    total=Example.objects.filter(project=project).count(),
                    created_by=user if getattr(user, "is_authenticated", False) else None,
                )
                return run
        except IntegrityError:
            continue  # another run took the number; take the next
    raise RuleError("rules", _("Could not number the rule run; try again."))


class _RunProgress:
    """A run's `processed` as it goes: after each chunk, and while its LLM rules classify a
    chunk, the rows before it plus the texts they answered in it (per LLM rule). The models
    report once per batch, so there is at most one write per batch."""

    def __init__(self, run_pk: int, llm_rules: int, report: Callable[[int], None] | None) -> None:
        self.run_pk, self.llm_rules, self.report = run_pk, max(llm_rules, 1), report
        self.done = self.size = self.base = self.shown = 0

    def chunk(self, size: int, answered: int) -> None:
        self.size, self.base = size, answered

    def answered(self, answered: int) -> None:
        self._show(self.done + min(self.size, (answered - self.base) // self.llm_rules))

    def chunk_done(self) -> None:
        self.done += self.size
        self._show(self.done)

    def _show(self, processed: int) -> None:
        if processed == self.shown:
            return
        self.shown = processed
        RuleRun.objects.filter(pk=self.run_pk).update(processed=processed)
        if self.report:
            self.report(processed)


def rule_run_execute(*, run: RuleRun, progress: Callable[[int], None] | None = None) -> RuleRun:
    """Apply the run's rules to every example, analyse them, fit the label model, store the
    weak labels. Writes nothing but progress until the end, then everything in one
    transaction: a failed or killed run leaves no half-saved weak labels."""
    if not RuleRun.claim(run.pk, started_at=timezone.now()):
        return run  # a duplicate delivery of the task: the first one has it
    run.refresh_from_db()
    project = run.project
    try:
        labels = project_labels(project)
        index = {label.name: i for i, label in enumerate(labels)}
        by_id = {label.pk: i for i, label in enumerate(labels)}
        missing = [r["label"] for r in run.rules if r["label"] not in index]
        if missing:
            raise RuleError("label", _("Label %(name)s was deleted after the run was queued.") % {"name": missing[0]})
        run.label_names = [label.name for label in labels]
        specs = _specs(run.rules, index)
        extra = {o["id"]: o for r in run.rules for o in r.get("operands", ())}
        missing = [o["label"] for o in extra.values() if o["label"] not in index]
        if missing:
            raise RuleError("label", _("Label %(name)s was deleted after the run was queued.") % {"name": missing[0]})
        operands = _specs(list(extra.values()), index)
        tracker = _RunProgress(run.pk, sum(s.kind == S.ZERO_SHOT for s in [*specs, *operands]), progress)
        models = Models(project, labels, progress=tracker.answered)
        matrices, ids, gold = [], [], []
        timeouts: dict[Any, int] = {}
        for chunk in textstore.chunks(project, with_metadata=_reads_metadata([*specs, *operands])):
            tracker.chunk(len(chunk), models.answered)
            matrices.append(_apply(specs, chunk.corpus, models, operands, timeouts))
            ids.extend(chunk.corpus.ids)
            gold.extend(by_id.get(g, ABSTAIN) if g is not None else ABSTAIN for g in chunk.gold)
            tracker.chunk_done()
        L = np.vstack(matrices) if matrices else np.zeros((0, len(specs)), dtype=np.int64)
        y = np.array(gold, dtype=np.int64)
        # Snorkel and torch load here, not when the web server or `serve` imports this module.
        from curation.rules import analysis

        stats = analysis.rule_stats(L, y)
        labeling = analysis.label(L, y, run.label_names)
        _store(run, L, ids, labels, labeling, stats)
        if timeouts:
            # Rows where a pattern took too long to confirm: the rule abstained there (engine.py).
            metrics = {**RuleRun.objects.get(pk=run.pk).metrics, "timeouts": {str(k): n for k, n in timeouts.items()}}
            RuleRun.objects.filter(pk=run.pk).update(metrics=metrics)
    except Exception as exc:  # noqa: BLE001 - any failure must end in a clear state
        RuleRun.objects.filter(pk=run.pk).update(
            status=RuleRun.Status.FAILED, error=str(exc) or exc.__class__.__name__, finished_at=timezone.now()
        )
        raise
    run.refresh_from_db()
    return run


def majority_vote(L: np.ndarray, cardinality: int) -> tuple[np.ndarray, np.ndarray]:
    """Majority vote's label per row (ABSTAIN on a tie or without votes, as Snorkel's
    MajorityLabelVoter decides) and the winner's share of the votes cast. Snorkel gives every
    decision probability 1, which says nothing; the share says how far the rules agreed."""
    counts = np.stack([(L == j).sum(axis=1) for j in range(cardinality)], axis=1) if len(L) else np.zeros((0, 1))
    total = counts.sum(axis=1)
    best = counts.max(axis=1, initial=0)
    decided = (total > 0) & ((counts == best[:, None]).sum(axis=1) == 1)
    labels = np.where(decided, counts.argmax(axis=1), ABSTAIN).astype(np.int64)
    share = np.where(decided, best / np.maximum(total, 1), 0.0)
    return labels, share


@transaction.atomic
def _store(
    run: RuleRun,
    L: np.ndarray,
    ids: list[int],
    labels: list[Label],
    labeling: Labeling,
    stats: list[dict[str, Any]],
) -> None:
    names = [label.name for label in labels]
    rule_ids = [r["id"] for r in run.rules]
    majority, share = majority_vote(L, len(labels))
    rows = []
    for i, example_id in enumerate(ids):
        row = L[i]
        voted = np.flatnonzero(row != ABSTAIN)
        chosen = int(labeling.labels[i])
        most = int(majority[i])
        rows.append(
            WeakLabel(
                run=run,
                example_id=example_id,
                votes={str(rule_ids[j]): names[int(row[j])] for j in voted},
                probabilities=(
                    {name: round(float(p), 4) for name, p in zip(names, labeling.probabilities[i], strict=True)}
                    if len(voted)
                    else {}
                ),
                label=labels[chosen] if chosen != ABSTAIN else None,
                confidence=float(labeling.confidence[i]),
                conflict=bool(labeling.conflict[i]),
                majority_label=labels[most] if most != ABSTAIN else None,
                majority_confidence=float(share[i]),
            )
        )
    WeakLabel.objects.bulk_create(rows, batch_size=2000)
    analysis_rows = [
        {
            "id": r["id"],
            "name": r["name"],
            "version": r["version"],
            "kind": r["kind"],
            "label": r["label"],
            **s,
            "polarity": [names[p] for p in s["polarity"]],
        }
        for r, s in zip(run.rules, stats, strict=True)
    ]
    RuleRun.objects.filter(pk=run.pk).update(
        status=RuleRun.Status.DONE,
        analysis=analysis_rows,
        metrics=labeling.metrics,
        processed=len(ids),
        total=len(ids),
        label_names=names,
        finished_at=timezone.now(),
        error="",
    )
    # Each rule version's history gains this run's figures, so an edit can be judged.
    for row in analysis_rows:
        revision = RuleRevision.objects.filter(rule_id=row["id"], version=row["version"]).first()
        if revision is not None:
            revision.stats = {
                **revision.stats,
                "run": {
                    "number": run.number,
                    **{
                        k: row[k]
                        for k in ("coverage", "overlaps", "conflicts", "hits", "gold_hits", "correct", "accuracy")
                    },
                },
            }
            revision.save(update_fields=["stats"])


def latest_run(project: Project) -> RuleRun | None:
    return project.rule_runs.filter(status=RuleRun.Status.DONE).order_by("-number").first()


# --- the annotation queue -------------------------------------------------------------


@transaction.atomic
def queue_order_set(*, project: Project, user: Any, order: str) -> Project:
    _check(user, project)
    if order not in Project.QueueOrder.values:
        choices = ", ".join(Project.QueueOrder.values)
        raise RuleError("queue_order", _("Choose one of %(values)s.") % {"values": choices})
    Project.objects.filter(pk=project.pk).update(queue_order=order)
    project.queue_order = order
    return project
