"""The forms of the project pages. They collect what was typed; the services decide whether it
can be saved and name the field at fault (put back on the form with ``add_service_error``)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from curation.models import Project, Role
from curation.projects.services import SETTINGS_FIELDS, SLUG_MAX, TEXT_LIMITS


class ProjectCreateForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=TEXT_LIMITS["name"])
    slug = forms.CharField(
        label=_("Address"),
        max_length=SLUG_MAX,
        required=False,
        help_text=_("Part of the project's address (/p/…/): letters, digits and hyphens. Made from the name if empty."),
    )
    kind = forms.ChoiceField(label=_("Kind"), required=False)
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=TEXT_LIMITS["description"],
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    copy_from = forms.ChoiceField(
        label=_("Copy the setup of"),
        required=False,
        help_text=_(
            "Its labels (with colours and keys), guidelines, system prompt, schema, annotation and queue "
            "settings and prompt templates; never its examples. Only projects you are an admin of are listed."
        ),
    )

    def __init__(self, *args: Any, copyable: list[Project], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", _("The copied project's kind (Chat for a blank project)"))] + list(
            Project.Kind.choices
        )
        self.fields["copy_from"].choices = [("", _("Nothing: a blank project"))] + [(p.slug, p.name) for p in copyable]
        self.fields["name"].widget.attrs["data-slug-source"] = ""
        self.fields["slug"].widget.attrs.update({"data-slug-target": "", "pattern": "[-a-zA-Z0-9_]+"})


class SettingsForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=TEXT_LIMITS["name"])
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    kind = forms.ChoiceField(label=_("Kind"), choices=Project.Kind.choices)
    guidelines = forms.CharField(
        label=_("Guidelines"),
        required=False,
        help_text=_("Markdown. Annotators read them on the labeling page (key g)."),
        widget=forms.Textarea(attrs={"rows": 12}),
    )
    system_prompt = forms.CharField(label=_("System prompt"), required=False, widget=forms.Textarea(attrs={"rows": 4}))
    annotations_per_example = forms.IntegerField(
        label=_("Annotations per example"),
        min_value=1,
        max_value=10,
        help_text=Project._meta.get_field("annotations_per_example").help_text,
    )
    queue_order = forms.ChoiceField(
        label=_("Annotation queue order"), choices=Project.QueueOrder.choices, widget=forms.RadioSelect
    )
    label_suggestions = forms.ChoiceField(
        label=_("Current label on the labeling page"),
        choices=Project.LabelSuggestions.choices,
        widget=forms.RadioSelect,
        help_text=Project._meta.get_field("label_suggestions").help_text,
    )
    structured_format = forms.ChoiceField(
        label=_("Structured answers are"),
        choices=Project.StructuredFormat.choices,
        widget=forms.RadioSelect,
        help_text=Project._meta.get_field("structured_format").help_text,
    )
    json_schema = forms.CharField(
        label=_("JSON schema"),
        required=False,
        help_text=_("For structured JSON answers: the JSON Schema every answer must fit. Empty for none."),
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"}),
    )
    settings_version = forms.CharField(required=False, widget=forms.HiddenInput)

    @staticmethod
    def initial_for(project: Project, version: str) -> dict[str, Any]:
        initial = {field: getattr(project, field) for field in SETTINGS_FIELDS}
        schema = project.json_schema
        initial["json_schema"] = json.dumps(schema, indent=2, ensure_ascii=False) if schema is not None else ""
        initial["settings_version"] = version
        return initial


class LabelForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    colour = forms.CharField(label=_("Colour"), initial="#64748b", widget=forms.TextInput(attrs={"type": "color"}))
    shortcut = forms.CharField(
        label=_("Key"),
        required=False,
        max_length=1,
        help_text=_("One character; empty gives the next free number key."),
        widget=forms.TextInput(attrs={"size": 2, "autocomplete": "off"}),
    )


class MemberAddForm(forms.Form):
    who = forms.CharField(
        label=_("Username or email address"), max_length=254, widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.ANNOTATOR)

    def field_for(self, field: str) -> str | None:
        return {"user": "who", "role": "role"}.get(field)
