"""Choosing which weak labels to accept: the rows accepting would write, a page at a time, each
with the votes of the rules behind it; and the people's choice among them.

A choice is all of the rows, all except some (``except``: the rows a person unticked), or
only some (``only``). Either list is bounded (MAX_IDS), so a choice over 100,000 rows is
"all except these few" rather than 100,000 ids. Ids that are not among the rows accepting
would write are ignored: a row that left them since (a person labeled the example) is not
accepted either way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from curation.models import RuleRun, WeakLabel
from curation.rules.spec import RuleError

ALL, ONLY, EXCEPT = "all", "only", "except"
MODES = (ALL, ONLY, EXCEPT)
MAX_IDS = 10_000
ROWS_PER_PAGE = 50


@dataclass(frozen=True)
class Choice:
    """Which of the rows accepting would write to accept."""

    mode: str = ALL
    ids: frozenset[int] = frozenset()

    def apply(self, weak_labels: QuerySet[WeakLabel]) -> QuerySet[WeakLabel]:
        if self.mode == ONLY:
            return weak_labels.filter(example_id__in=sorted(self.ids))
        if self.mode == EXCEPT and self.ids:
            return weak_labels.exclude(example_id__in=sorted(self.ids))
        return weak_labels

    @property
    def everything(self) -> bool:
        return self.mode == ALL or (self.mode == EXCEPT and not self.ids)


def ids_clean(value: Any, field_name: str) -> list[int]:
    """Example ids from a list (the API) or from text such as "3, 17 42" (a form)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items: Iterable[Any] = value.replace(",", " ").split()
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise RuleError(field_name, _("Give a list of example ids."))
    ids = []
    for item in items:
        try:
            number = int(item)
        except (TypeError, ValueError):
            raise RuleError(
                field_name, _("%(value)s is not an example id: give whole numbers.") % {"value": str(item)[:40]}
            ) from None
        if isinstance(item, bool) or number <= 0:
            raise RuleError(field_name, _("%(value)s is not an example id.") % {"value": str(item)[:40]})
        ids.append(number)
        if len(ids) > MAX_IDS:
            raise RuleError(
                field_name,
                _("At most %(n)s example ids; for more, choose all and name the ones to leave out.")
                % {"n": f"{MAX_IDS:,}"},
            )
    return ids


def choice_clean(*, only: Any = None, except_: Any = None) -> Choice:
    """The choice from the ids to accept (``only``) or the ids to leave out (``except``), not
    both; neither is every row. None means not given."""
    if only is not None and except_ is not None:
        raise RuleError("only", _("Give the ids to accept (only) or the ids to leave out (except), not both."))
    if only is not None:
        ids = ids_clean(only, "only")
        if not ids:
            raise RuleError("only", _("Choose at least one example to accept."))
        return Choice(ONLY, frozenset(ids))
    if except_ is not None:
        return Choice(EXCEPT, frozenset(ids_clean(except_, "except")))
    return Choice()


def form_choice(data: Any) -> Choice:
    """The choice a form sends: ``mode`` (all, only or except) and ``ids``."""
    mode = data.get("mode") or ALL
    if mode not in MODES:
        raise RuleError("mode", _("Choose all, only or except."))
    if mode == ALL:
        return Choice()
    return choice_clean(**{"only" if mode == ONLY else "except_": data.get("ids") or ""})


@dataclass
class Row:
    example_id: int
    text: str
    label: str
    confidence: float
    votes: list[tuple[str, str]]  # (rule name, the label it voted for)
    current: str | None
    current_rule_set: int | None

    def data(self) -> dict[str, Any]:
        return {
            "example_id": self.example_id,
            "text": self.text,
            "label": self.label,
            "confidence": self.confidence,
            "votes": [{"rule": rule, "label": label} for rule, label in self.votes],
            "current": self.current,
            "current_rule_set": self.current_rule_set,
        }


@dataclass
class RowsPage:
    """One page of the rows accepting would write, in example order."""

    number: int
    total: int
    per_page: int
    rows: list[Row] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def rule_names(run: RuleRun) -> dict[str, str]:
    """Rule id (as the votes name it) → its name when the run applied it."""
    return {str(rule.get("id")): str(rule.get("name") or rule.get("id")) for rule in run.rules or ()}


def rows_page(
    weak_labels: QuerySet[WeakLabel], *, run: RuleRun, source_fields: tuple[str, str], page: int = 1, total: int
) -> RowsPage:
    """Page ``page`` (past the last: the last) of ``weak_labels`` (the rows accepting would
    write, ``total`` of them), each with the rules' votes, by rule name."""
    label, confidence = source_fields
    found = RowsPage(1, total, ROWS_PER_PAGE)
    found.number = min(page, found.pages)
    start = (found.number - 1) * ROWS_PER_PAGE
    names = rule_names(run)
    shown = weak_labels.select_related(label, "example__label", "example__weak_label__run").order_by("example_id")
    for weak in shown[start : start + ROWS_PER_PAGE]:
        example, current = weak.example, weak.example.weak_label
        votes = sorted(
            ((names.get(str(rule), f"#{rule}"), str(voted)) for rule, voted in (weak.votes or {}).items()),
            key=lambda vote: (vote[1] != getattr(weak, label).name, vote[0]),
        )
        found.rows.append(
            Row(
                example_id=example.pk,
                text=example.first_user_text,
                label=getattr(weak, label).name,
                confidence=getattr(weak, confidence),
                votes=votes,
                current=example.label.name if example.label_id else None,
                current_rule_set=current.run.number if current is not None else None,
            )
        )
    return found
