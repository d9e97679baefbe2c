"""A project's labels: add, rename, colour, key, retire and un-retire, merge one into another,
delete one nobody used. Each change is recorded as a ProjectChange; a merge also writes a
revision on every example it relabels, as any other change of an example's label does."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from curation.core.services import example_bulk_update
from curation.models import Annotation, Example, Label, LabelingRule, Project, WeakLabel
from curation.projects.services import ProjectError, change_record

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
# Keys the labeling page uses for itself (static/js/label.js): skip, undo, guidelines, edit.
RESERVED_KEYS = frozenset("sugeSUGE")
NAME_MAX = 100


def _name(project: Project, name: Any, *, label: Label | None = None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ProjectError("name", _("A label needs a name."))
    name = name.strip()
    if len(name) > NAME_MAX:
        raise ProjectError("name", _("At most %(n)d characters.") % {"n": NAME_MAX})
    others = project.labels.exclude(pk=label.pk) if label else project.labels.all()
    if others.filter(name=name).exists():
        raise ProjectError("name", _("This project already has a label named %(name)s.") % {"name": name})
    return name


def _colour(value: Any) -> str:
    if not isinstance(value, str) or not COLOUR.match(value.strip()):
        raise ProjectError("colour", _("A colour as #rrggbb, e.g. #0f766e."))
    return value.strip().lower()


def _shortcut(project: Project, value: Any, *, label: Label | None = None) -> str:
    """One character, not one of the labeling page's own keys, used by no other offered label;
    "" for none (the labeling page then gives the label a free number key)."""
    value = "" if value is None else value
    if not isinstance(value, str) or len(value) > 1 or (value and not value.isprintable()) or value == " ":
        raise ProjectError("shortcut", _("One character (a digit or a letter), or empty."))
    if value in RESERVED_KEYS:
        raise ProjectError(
            "shortcut",
            _("%(key)s is a key of the labeling page itself (s skip, u undo, g guidelines, e edit); choose another.")
            % {"key": value},
        )
    # Retired labels are not offered, so they hold no key: only the offered ones count.
    others = project.labels.filter(retired=False).exclude(pk=label.pk if label else None)
    taken_by = others.filter(shortcut=value).values_list("name", flat=True).first() if value else None
    if taken_by is not None:
        raise ProjectError(
            "shortcut", _("The key %(key)s is taken by the label %(name)s.") % {"key": value, "name": taken_by}
        )
    return value


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 2_000:
        raise ProjectError("description", _("Text of at most %(n)d characters.") % {"n": 2_000})
    return value.strip()


def _shown(label: Label) -> dict[str, Any]:
    return {
        "name": label.name,
        "colour": label.colour,
        "shortcut": label.shortcut,
        "description": label.description,
        "retired": label.retired,
    }


@transaction.atomic
def label_add(
    *, project: Project, user: Any, name: str, colour: str = "#64748b", shortcut: str = "", description: str = ""
) -> Label:
    label = Label.objects.create(
        project=project,
        name=_name(project, name),
        colour=_colour(colour or "#64748b"),
        shortcut=_shortcut(project, shortcut),
        description=_description(description),
    )
    change_record(
        project=project,
        user=user,
        action="label_add",
        label=label.name,
        after={"colour": label.colour, "shortcut": label.shortcut},
    )
    return label


LABEL_FIELDS = ("name", "colour", "shortcut", "description", "retired")


@transaction.atomic
def label_update(*, label: Label, user: Any, changes: dict[str, Any]) -> Label:
    """Rename, recolour, rekey, describe, retire (``retired``: True) or bring back (False). A
    retired label stays on its examples and in their history; it is no longer offered."""
    unknown = sorted(set(changes) - set(LABEL_FIELDS))
    if unknown:
        raise ProjectError(unknown[0], _("Not a label field that can be changed."))
    label = Label.objects.select_for_update().get(pk=label.pk)
    project = label.project
    clean: dict[str, Any] = {}
    if "name" in changes:
        clean["name"] = _name(project, changes["name"], label=label)
    if "colour" in changes:
        clean["colour"] = _colour(changes["colour"])
    if "shortcut" in changes:
        clean["shortcut"] = _shortcut(project, changes["shortcut"], label=label)
    if "description" in changes:
        clean["description"] = _description(changes["description"])
    if "retired" in changes:
        if not isinstance(changes["retired"], bool):
            raise ProjectError("retired", _("true or false."))
        clean["retired"] = changes["retired"]
        if label.retired and not clean["retired"] and "shortcut" not in clean and label.shortcut:
            # Brought back: its old key goes if an offered label took it meanwhile.
            taken = project.labels.filter(retired=False, shortcut=label.shortcut).exists()
            clean["shortcut"] = "" if taken else label.shortcut
    before = _shown(label)
    changed = {field: value for field, value in clean.items() if before[field] != value}
    if not changed:
        return label
    for field, value in changed.items():
        setattr(label, field, value)
    label.save(update_fields=list(changed))
    action = "label_update"
    if "retired" in changed:
        action = "label_retire" if label.retired else "label_unretire"
    change_record(
        project=project,
        user=user,
        action=action,
        label=before["name"],
        before={field: before[field] for field in changed},
        after=changed,
    )
    return label


def label_usage(label: Label) -> dict[str, int]:
    """What points at the label: examples, annotations, rules and weak labels."""
    return {
        "examples": Example.objects.filter(label=label).count(),
        "annotations": Annotation.objects.filter(label=label).count(),
        "rules": LabelingRule.objects.filter(label=label).count(),
        "weak_labels": WeakLabel.objects.filter(label=label).count()
        + WeakLabel.objects.filter(majority_label=label).exclude(label=label).count(),
    }


@transaction.atomic
def label_delete(*, label: Label, user: Any) -> None:
    """Only a label nothing points at; one in use is retired or merged instead."""
    label = Label.objects.select_for_update().get(pk=label.pk)
    usage = label_usage(label)
    if any(usage.values()):
        raise ProjectError(
            "label",
            _(
                "%(name)s is in use (%(examples)d examples, %(annotations)d annotations, %(rules)d rules, "
                "%(weak_labels)d weak labels): retire it, or merge it into another label."
            )
            % {"name": label.name, **usage},
        )
    change_record(project=label.project, user=user, action="label_delete", label=label.name, before=_shown(label))
    label.delete()


@transaction.atomic
def label_merge(*, label: Label, into: Label, user: Any) -> dict[str, int]:
    """Everything that points at ``label`` points at ``into`` afterwards: examples (each gets a
    revision), annotations, rules and weak labels; then ``label`` is gone. One transaction."""
    if into.project_id != label.project_id:
        raise ProjectError("into", _("Choose a label of this project."))
    if into.pk == label.pk:
        raise ProjectError("into", _("Choose another label to merge into."))
    project = label.project
    label = Label.objects.select_for_update().get(pk=label.pk)
    into = Label.objects.select_for_update().get(pk=into.pk)
    moved = {
        "examples": example_bulk_update(
            project=project,
            user=user,
            changes={"label": into.name},
            ids=list(Example.objects.filter(project=project, label=label).values_list("pk", flat=True)),
            keep_origin=True,
        )
    }
    moved["annotations"] = Annotation.objects.filter(label=label).update(label=into)
    moved["rules"] = LabelingRule.objects.filter(label=label).update(label=into)
    moved["weak_labels"] = WeakLabel.objects.filter(label=label).update(label=into)
    WeakLabel.objects.filter(majority_label=label).update(majority_label=into)
    change_record(
        project=project,
        user=user,
        action="label_merge",
        label=label.name,
        before={"label": label.name},
        after={"label": into.name},
        moved=moved,
    )
    label.delete()
    return moved
