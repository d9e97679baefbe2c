"""A project's recorded changes in words, for the settings page's "Recent changes"."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from curation.models import Project, ProjectChange, Role

ACTIONS = {
    "project_create": gettext_lazy("Project created"),
    "hub_push": gettext_lazy("Pushed to the Hugging Face Hub"),
    "settings": gettext_lazy("Settings changed"),
    "label_add": gettext_lazy("Label added"),
    "label_update": gettext_lazy("Label changed"),
    "label_retire": gettext_lazy("Label retired"),
    "label_unretire": gettext_lazy("Label brought back"),
    "label_merge": gettext_lazy("Labels merged"),
    "label_delete": gettext_lazy("Label deleted"),
    "member_add": gettext_lazy("Member added"),
    "member_role": gettext_lazy("Role changed"),
    "member_remove": gettext_lazy("Member removed"),
}
FIELDS = {
    "name": gettext_lazy("Name"),
    "repository": gettext_lazy("Repository"),
    "files": gettext_lazy("Files"),
    "description": gettext_lazy("Description"),
    "kind": gettext_lazy("Kind"),
    "guidelines": gettext_lazy("Guidelines"),
    "system_prompt": gettext_lazy("System prompt"),
    "annotations_per_example": gettext_lazy("Annotations per example"),
    "queue_order": gettext_lazy("Annotation queue order"),
    "label_suggestions": gettext_lazy("Current label on the labeling page"),
    "structured_format": gettext_lazy("Structured answers are"),
    "json_schema": gettext_lazy("JSON schema"),
    "colour": gettext_lazy("Colour"),
    "shortcut": gettext_lazy("Key"),
    "retired": gettext_lazy("Retired"),
    "role": gettext_lazy("Role"),
    "label": gettext_lazy("Label"),
    "slug": gettext_lazy("Address"),
}
CHOICES = {
    "kind": dict(Project.Kind.choices),
    "queue_order": dict(Project.QueueOrder.choices),
    "label_suggestions": dict(Project.LabelSuggestions.choices),
    "structured_format": dict(Project.StructuredFormat.choices),
    "role": dict(Role.choices),
}
SHOWN_CHARS = 80


def _value(field: str, value: Any) -> str:
    if value is None or value == "":
        return _("(empty)")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    text = str(CHOICES.get(field, {}).get(value, value))
    text = " ".join(text.split())
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def change_lines(change: ProjectChange) -> list[str]:
    """ "Field: before → after" for each value the change records."""
    detail = change.detail or {}
    before, after = detail.get("before") or {}, detail.get("after") or {}
    lines = []
    for field in list(dict.fromkeys([*before, *after])):
        name = FIELDS.get(field, field)
        if field in before and field in after:
            lines.append(f"{name}: {_value(field, before[field])} → {_value(field, after[field])}")
        elif field in after:
            lines.append(f"{name}: {_value(field, after[field])}")
        else:
            lines.append(f"{name}: {_value(field, before[field])} → {_('(removed)')}")
    moved = detail.get("moved")
    if moved:
        lines.append(
            _("moved: %(examples)d examples, %(annotations)d annotations, %(rules)d rules, %(weak_labels)d weak labels")
            % {key: moved.get(key, 0) for key in ("examples", "annotations", "rules", "weak_labels")}
        )
    if detail.get("copied_from"):
        lines.append(
            _("copied from %(slug)s: %(labels)d labels, %(templates)d prompt templates")
            % {
                "slug": detail["copied_from"],
                "labels": detail.get("labels", 0),
                "templates": detail.get("templates", 0),
            }
        )
    return lines


def described(changes: list[ProjectChange]) -> list[dict[str, Any]]:
    return [
        {
            "change": change,
            "action": ACTIONS.get(change.action, change.action),
            "subject": (change.detail or {}).get("label") or (change.detail or {}).get("member") or "",
            "lines": change_lines(change),
        }
        for change in changes
    ]
