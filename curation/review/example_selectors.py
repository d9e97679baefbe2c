"""Reads of the review queue for examples that need review (imported, labeled by rules, edited
after approval): which example comes next under the filters, where its label came from, and
why it waits for review, read from its revisions.

Every read is bounded: one example at a time, and at most REVISIONS_READ of its revisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from curation.core.selectors import PROVENANCE_DEFER
from curation.models import Example, ExampleRevision, Label, Project
from curation.rules.selectors import LABEL_SOURCES, examples_by_label_source

# The newest revisions read to say why an example waits: enough for its recent history.
REVISIONS_READ = 50

LABEL_SOURCE_NAMES: dict[str, Any] = {
    "person": gettext_lazy("A person"),
    "rules": gettext_lazy("Rules"),
    "none": gettext_lazy("No label"),
}


class FilterError(ValueError):
    """A filter value that is not one of the choices; `field` names the filter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def clean_filters(source: str | None, label_source: str | None) -> dict[str, str]:
    """The queue's filters as given ("" or None: no filter), or FilterError naming the bad one."""
    filters: dict[str, str] = {}
    if source:
        if source not in Example.Source.values:
            raise FilterError("source", _("Choose one of %(values)s.") % {"values": ", ".join(Example.Source.values)})
        filters["source"] = source
    if label_source:
        if label_source not in LABEL_SOURCES:
            raise FilterError("label_source", _("Choose one of %(values)s.") % {"values": ", ".join(LABEL_SOURCES)})
        filters["label_source"] = label_source
    return filters


def waiting_examples(project: Project, filters: dict[str, str] | None = None) -> QuerySet[Example]:
    """The project's examples that need review, oldest first, under the filters."""
    examples = Example.objects.filter(project=project, status=Example.Status.NEEDS_REVIEW)
    filters = filters or {}
    if "source" in filters:
        examples = examples.filter(source=filters["source"])
    if "label_source" in filters:
        examples = examples_by_label_source(examples, filters["label_source"])
    return examples.order_by("id")


def next_example(
    project: Project, filters: dict[str, str] | None = None, *, after: int | None = None
) -> Example | None:
    """The first example waiting for review (after the one with id `after`, to skip it)."""
    examples = waiting_examples(project, filters)
    if after is not None:
        examples = examples.filter(id__gt=after)
    return (
        examples.select_related("label", "import_job", "created_by", "weak_label", "weak_label__run")
        .defer(*PROVENANCE_DEFER)
        .first()
    )


def previous_id(project: Project, filters: dict[str, str], before: int) -> int | None:
    """The id of the waiting example just before `before`, to go back to it."""
    return waiting_examples(project, filters).filter(id__lt=before).order_by("-id").values_list("id", flat=True).first()


@dataclass
class LabelOrigin:
    """Where an example's label came from: a person (who, when known), the rules (rule set
    version, model, confidence), or no label."""

    source: str  # person, rules, none
    text: str
    user: str | None = None
    rule_set: int | None = None
    model: str | None = None
    confidence: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "text": self.text,
            "user": self.user,
            "rule_set": self.rule_set,
            "model": self.model,
            "confidence": self.confidence,
        }


@dataclass
class Waiting:
    """One example as the queue shows it: its label's origin and why it waits."""

    example: Example
    origin: LabelOrigin
    reasons: list[str] = field(default_factory=list)


def _revisions(example: Example) -> list[ExampleRevision]:
    """The example's newest revisions, oldest first."""
    newest = list(example.revisions.select_related("user").order_by("-id")[:REVISIONS_READ])
    return newest[::-1]


def _who(revision: ExampleRevision) -> str:
    return revision.user.get_username() if revision.user else _("someone")


def _sets_label(revision: ExampleRevision, name: str) -> bool:
    return (revision.after or {}).get("label") == name and (revision.before or {}).get("label") != name


def label_origin(example: Example, revisions: list[ExampleRevision]) -> LabelOrigin:
    if example.label_id is None:
        return LabelOrigin("none", _("No label"))
    weak = example.weak_label if example.weak_label_id is not None else None
    if weak is not None:
        model = weak.accepted_from or weak.Source.LABEL_MODEL
        confidence = round(weak.accepted_confidence, 3)
        return LabelOrigin(
            "rules",
            _("Rules v%(n)s (%(model)s), confidence %(p).0f%%")
            % {"n": weak.run.number, "model": weak.Source(model).label, "p": confidence * 100},
            rule_set=weak.run.number,
            model=model,
            confidence=confidence,
        )
    name = example.label.name
    setter = next((r for r in reversed(revisions) if _sets_label(r, name)), None)
    user = setter.user.get_username() if setter and setter.user else None
    text = _("A person (%(user)s)") % {"user": user} if user else _("A person")
    return LabelOrigin("person", text, user=user)


def _entry(example: Example, revisions: list[ExampleRevision]) -> ExampleRevision | None:
    """The revision that last put the example into "needs review"."""
    for revision in reversed(revisions):
        after = revision.after or {}
        before = revision.before or {}
        if after.get("status") == Example.Status.NEEDS_REVIEW and before.get("status") != Example.Status.NEEDS_REVIEW:
            return revision
    return None


def _created_reason(example: Example, revision: ExampleRevision | None) -> str:
    """Why a new example waits: how it was made."""
    if example.source == Example.Source.IMPORTED or example.import_job_id:
        job = example.import_job
        if job is not None:
            line = _(", line %(n)s") % {"n": example.source_line} if example.source_line else ""
            return _("Imported by import job %(job)s (%(file)s%(line)s).") % {
                "job": job.pk,
                "file": job.filename,
                "line": line,
            }
        return _("Imported.")
    if example.source == Example.Source.RULE:
        return _("Made by rules.")
    if example.source in (Example.Source.SYNTHETIC, Example.Source.AUGMENTED):
        return _("Generated by a model (%(source)s).") % {"source": example.get_source_display()}
    who = revision.user.get_username() if revision and revision.user else None
    return _("Written by %(user)s; not reviewed yet.") % {"user": who} if who else _("Not reviewed yet.")


def _changed(revision: ExampleRevision) -> list[str]:
    before, after = revision.before or {}, revision.after or {}
    parts = []
    if before.get("messages") != after.get("messages") or before.get("tools") != after.get("tools"):
        parts.append(_("the conversation"))
    if before.get("label") != after.get("label"):
        parts.append(
            _("the label (%(old)s → %(new)s)") % {"old": before.get("label") or "—", "new": after.get("label") or "—"}
        )
    return parts


def why_waiting(example: Example, revisions: list[ExampleRevision]) -> list[str]:
    """Why the example needs review, in words: how it was made, or who sent it back and what they
    changed; and when its label was accepted from the rules."""
    entry = _entry(example, revisions)
    reasons: list[str] = []
    if entry is None or entry.before is None:
        reasons.append(_created_reason(example, entry))
    elif entry.before.get("status") == Example.Status.APPROVED:
        changed = _changed(entry)
        reasons.append(
            _("Edited after approval by %(user)s (%(what)s).")
            % {"user": _who(entry), "what": ", ".join(changed) or _("no change to its text")}
        )
    else:
        reasons.append(
            _("Set back to needs review by %(user)s (it was %(status)s).")
            % {"user": _who(entry), "status": Example.Status(entry.before["status"]).label}
        )
    if example.weak_label_id is not None:
        reasons.append(_("Labeled by rules v%(n)s.") % {"n": example.weak_label.run.number})
    return reasons


def waiting(example: Example) -> Waiting:
    revisions = _revisions(example)
    return Waiting(example=example, origin=label_origin(example, revisions), reasons=why_waiting(example, revisions))


def label_keys(project: Project, current: Label | None = None) -> list[tuple[Label, str]]:
    """The labels a reviewer may choose, each with its number key: its own shortcut, or else the
    first digit no other label has. A retired label is offered only when it is the current one."""
    labels = [label for label in project.labels.order_by("name") if not label.retired or label == current]
    taken = {label.shortcut for label in labels if label.shortcut}
    free = [digit for digit in "123456789" if digit not in taken]
    keyed = []
    for label in labels:
        key = label.shortcut or (free.pop(0) if free else "")
        keyed.append((label, key))
    return keyed
