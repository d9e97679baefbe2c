"""Making a project (blank, or a copy of another's setup) and changing its settings.

Each change writes a ProjectChange: who, what, and the values before and after. A refusal is a
``ProjectError`` naming the field to correct (curation/core/errors.py turns it into the API's
400 and the pages' form errors).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _
from jsonschema.validators import validator_for

from curation.core.errors import ServiceError
from curation.models import Label, Membership, Project, ProjectChange, PromptTemplate, Role


class ProjectError(ServiceError):
    """A project, setting, label or member change refused; ``field`` names what to correct."""


# What the settings page and PATCH /api/projects/<slug>/ change.
SETTINGS_FIELDS = (
    "name",
    "description",
    "kind",
    "guidelines",
    "system_prompt",
    "annotations_per_example",
    "queue_order",
    "label_suggestions",
    "structured_format",
    "json_schema",
)
# What a copy takes from the project it copies (besides its labels and prompt templates).
COPIED_FIELDS = (
    "guidelines",
    "system_prompt",
    "json_schema",
    "structured_format",
    "annotations_per_example",
    "queue_order",
    "label_suggestions",
)
TEXT_LIMITS = {"name": 200, "description": 5_000, "guidelines": 100_000, "system_prompt": 50_000}
CHOICES = {
    "kind": Project.Kind,
    "queue_order": Project.QueueOrder,
    "label_suggestions": Project.LabelSuggestions,
    "structured_format": Project.StructuredFormat,
}
SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
SLUG_MAX = 100
# A change's record keeps long texts (guidelines, schemas) to this many characters.
RECORDED_CHARS = 2_000


def may_create_projects(user: Any) -> bool:
    """Staff, and users given Django's curation.add_project permission (superusers have it)."""
    return bool(getattr(user, "is_authenticated", False) and (user.is_staff or user.has_perm("curation.add_project")))


def change_record(*, project: Project, user: Any, action: str, **detail: Any) -> ProjectChange:
    author = user if getattr(user, "is_authenticated", False) else None
    return ProjectChange.objects.create(project=project, user=author, action=action, detail=detail)


def _recorded(value: Any) -> Any:
    """A value as a change's record keeps it: long text cut (the project holds the whole)."""
    if not isinstance(value, str) and value is not None and not isinstance(value, int | float | bool):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and len(value) > RECORDED_CHARS:
        return value[:RECORDED_CHARS] + "…"
    return value


def settings_version(project: Project) -> str:
    """A short digest of the settings as they are: a form sends back the one it was shown, so a
    save over someone else's newer change is refused instead of undoing it."""
    values = {name: getattr(project, name) for name in SETTINGS_FIELDS}
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- checking values ---------------------------------------------------------------------------


def _text(field: str, value: Any, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ProjectError(field, _("Must be text."))
    value = value.strip() if field == "name" else value.replace("\r\n", "\n")
    if required and not value:
        raise ProjectError(field, _("This field is required."))
    limit = TEXT_LIMITS[field]
    if len(value) > limit:
        raise ProjectError(
            field, _("%(n)d characters; at most %(limit)d are allowed.") % {"n": len(value), "limit": limit}
        )
    return value


def _choice(field: str, value: Any) -> str:
    choices = CHOICES[field]
    if value not in choices.values:
        raise ProjectError(field, _("Choose one of %(values)s.") % {"values": ", ".join(choices.values)})
    return value


def _annotations(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or str(number) != str(value).strip() or not 1 <= number <= 10:
        raise ProjectError("annotations_per_example", _("A whole number from 1 to 10."))
    return number


def json_schema_clean(value: Any) -> Any:
    """None (no schema) or a valid JSON Schema (a JSON object); the problem named otherwise."""
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ProjectError(
                "json_schema",
                _("Not valid JSON (line %(line)d, column %(column)d: %(message)s).")
                % {"line": error.lineno, "column": error.colno, "message": error.msg},
            ) from None
    if not isinstance(value, dict):
        raise ProjectError("json_schema", _("A JSON Schema is a JSON object ({…})."))
    validator_class = validator_for(value)
    error = next(iter(sorted(validator_class(validator_class.META_SCHEMA).iter_errors(value), key=str)), None)
    if error is not None:
        raise ProjectError(
            "json_schema",
            _("Not a valid JSON Schema at %(path)s: %(error)s") % {"path": error.json_path, "error": error.message},
        )
    return value


def settings_clean(changes: dict[str, Any]) -> dict[str, Any]:
    """Each setting checked; the first problem raises, naming its field."""
    unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
    if unknown:
        raise ProjectError(unknown[0], _("Not a setting that can be changed here."))
    clean: dict[str, Any] = {}
    for field, value in changes.items():
        if field in TEXT_LIMITS:
            clean[field] = _text(field, value, required=field == "name")
        elif field in CHOICES:
            clean[field] = _choice(field, value)
        elif field == "annotations_per_example":
            clean[field] = _annotations(value)
        elif field == "json_schema":
            clean[field] = json_schema_clean(value)
    return clean


def slug_clean(slug: str, name: str) -> str:
    """The slug given (checked and free), or one made from the name: free, numbered if needed."""
    slug = (slug or "").strip()
    if slug:
        if not SLUG.match(slug) or len(slug) > SLUG_MAX:
            raise ProjectError(
                "slug",
                _("Use at most %(n)d letters, digits, hyphens or underscores (it becomes part of the address).")
                % {"n": SLUG_MAX},
            )
        if Project.objects.filter(slug=slug).exists():
            raise ProjectError("slug", _("%(slug)s is taken by another project; choose another.") % {"slug": slug})
        return slug
    base = slugify(name)[: SLUG_MAX - 6].strip("-") or "project"
    taken = set(Project.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


# --- making a project --------------------------------------------------------------------------


def project_create(
    *,
    user: Any,
    name: str,
    slug: str = "",
    kind: str = "",
    description: str = "",
    copy_from: Project | None = None,
) -> Project:
    """A new project whose admin is its maker. ``copy_from`` (a project the maker is an admin of,
    checked by the caller) gives it that project's labels (colours, keys), guidelines, system
    prompt, schema, queue and annotation settings and prompt templates; never its examples."""
    if not may_create_projects(user):
        raise ProjectError("", _("Only staff and users allowed to add projects may create one."), status=403)
    fields = settings_clean({"name": name, "description": description})
    if copy_from is not None:
        fields.update({field: getattr(copy_from, field) for field in COPIED_FIELDS})
    fields["kind"] = _choice("kind", kind) if kind else (copy_from.kind if copy_from else Project.Kind.CHAT)
    try:
        with transaction.atomic():
            project = Project.objects.create(slug=slug_clean(slug, fields["name"]), **fields)
            Membership.objects.create(project=project, user=user, role=Role.ADMIN)
            copied = _copy_setup(copy_from, project, user) if copy_from is not None else {}
            change_record(
                project=project,
                user=user,
                action="project_create",
                after={"name": project.name, "slug": project.slug, "kind": project.kind},
                copied_from=copy_from.slug if copy_from else None,
                **copied,
            )
    except IntegrityError:
        raise ProjectError(
            "slug", _("%(slug)s is taken by another project; choose another.") % {"slug": slug}
        ) from None
    return project


def _copy_setup(source: Project, project: Project, user: Any) -> dict[str, int]:
    labels = [
        Label(
            project=project,
            name=label.name,
            description=label.description,
            colour=label.colour,
            shortcut=label.shortcut,
        )
        for label in source.labels.filter(retired=False).order_by("id")
    ]
    Label.objects.bulk_create(labels)
    # The newest version of each template, as version 1 of the copy's own.
    newest: dict[str, PromptTemplate] = {}
    for template in source.prompt_templates.order_by("name", "-version"):
        newest.setdefault(template.name, template)
    PromptTemplate.objects.bulk_create(
        PromptTemplate(project=project, name=t.name, text=t.text, few_shot=t.few_shot, created_by=user)
        for t in newest.values()
    )
    return {"labels": len(labels), "templates": len(newest)}


# --- changing settings -------------------------------------------------------------------------


@transaction.atomic
def project_update(*, project: Project, user: Any, changes: dict[str, Any], version: str | None = None) -> Project:
    """Change settings; records the fields that changed, before and after. With ``version`` (from
    ``settings_version``), a save over a newer change is refused with 409 and nothing changes."""
    clean = settings_clean(changes)
    project = Project.objects.select_for_update().get(pk=project.pk)
    if version and version != settings_version(project):
        error = ProjectError(
            "settings_version",
            _("Someone changed the settings since you opened them. Nothing was saved; the page shows theirs now."),
            status=409,
        )
        error.current = project
        raise error
    before = {field: getattr(project, field) for field in clean if getattr(project, field) != clean[field]}
    if not before:
        return project
    for field in before:
        setattr(project, field, clean[field])
    project.save(update_fields=list(before))
    change_record(
        project=project,
        user=user,
        action="settings",
        before={field: _recorded(value) for field, value in before.items()},
        after={field: _recorded(clean[field]) for field in before},
    )
    return project
