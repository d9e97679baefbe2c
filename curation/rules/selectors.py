"""Where an example's label came from, for the pages that filter or export by it.

An example's label is from rules while ``Example.weak_label`` is set (the weak label names the
run, and ``accepted_from`` the model); a person's edit clears it. These reads are for the
examples browser and the export, which belong to other features. The names of the models
LLM rules ask are for the rules and run pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from curation.models import Connection, Example, Project

# The choices a filter offers: no label, a person's label, any rules' label.
PERSON, RULES, NONE = "person", "rules", "none"
LABEL_SOURCES = (PERSON, RULES, NONE)


def examples_by_label_source(
    examples: QuerySet[Example], source: str, *, rule_set: int | None = None, model: str | None = None
) -> QuerySet[Example]:
    """``examples`` whose label came from ``source``; for rules, optionally from one rule set
    version (``rule_set``, the run's number) and one model (``label_model`` or ``majority``)."""
    if source == NONE:
        return examples.filter(label__isnull=True)
    if source == PERSON:
        return examples.filter(label__isnull=False, weak_label__isnull=True)
    if source != RULES:
        raise ValueError(f"unknown label source {source!r}")
    examples = examples.filter(weak_label__isnull=False)
    if rule_set is not None:
        examples = examples.filter(weak_label__run__number=rule_set)
    if model is not None:
        examples = examples.filter(weak_label__accepted_from=model)
    return examples


def label_source(example: Example) -> dict[str, Any] | None:
    """An example's label origin, as an export column: None without a label, {"source":
    "person"}, or the rule set, the model and its confidence. Select ``weak_label__run``
    with the examples (core.selectors.PROVENANCE_DEFER keeps the large fields out)."""
    if example.label_id is None:
        return None
    weak = example.weak_label if example.weak_label_id is not None else None
    if weak is None:
        return {"source": PERSON}
    return {
        "source": RULES,
        "rule_set": weak.run.number,
        "model": weak.accepted_from or None,
        "probability": weak.accepted_confidence,
    }


def llm_model_names(project: Project, rules: Iterable[tuple[Any, str, dict[str, Any] | None]]) -> dict[Any, str]:
    """The model each LLM rule asks, by name, for the rules and run pages: rule key → the
    connection's name, the tuned model of a training run, or the embedded model when the rule
    names none. `rules` are (key, kind, params); one query for all the connections named."""
    from curation.rules.spec import ZERO_SHOT

    specs = {key: (params or {}).get("backend") or {} for key, kind, params in rules if kind == ZERO_SHOT}
    wanted = {int(s["connection"]) for s in specs.values() if str(s.get("connection", "")).isdigit()}
    names = dict(Connection.objects.filter(pk__in=wanted).values_list("pk", "name")) if wanted else {}
    shown: dict[Any, str] = {}
    for key, spec in specs.items():
        if spec.get("kind") == "tuned":
            from training.interface import run_model

            run = run_model(project, spec.get("run"))
            shown[key] = (
                _("Tuned model of run %(n)s") % {"n": run.number} if run is not None else _("a deleted training run")
            )
        elif str(spec.get("connection", "")).isdigit():
            shown[key] = names.get(int(spec["connection"])) or _("a deleted connection")
        else:
            shown[key] = _("Embedded model")
    return shown
