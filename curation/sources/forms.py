"""The source pages' forms: they collect the fields; `source_clean` decides whether they can work.
The secret is chosen from the operator's list, never typed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from curation.connections.services import secret_names
from curation.formats.mapping import FIELDS
from curation.models import Source
from curation.sources.s3 import JSON_FORMATS
from curation.sources.services import KIND_OPTIONS, MAX_TIMEOUT


def mapping_text(mapping: dict[str, Any] | None) -> str:
    """A stored mapping as the text the form takes: text=Body,instruction=Title+Body, in the order of
    the CSV fields (a PostgreSQL JSON column does not keep the order it was given)."""
    order = {name: index for index, name in enumerate(FIELDS["csv"])}
    items = sorted((mapping or {}).items(), key=lambda item: order.get(item[0], len(order)))
    return ",".join(f"{key}={'+'.join(v) if isinstance(v, list) else v}" for key, v in items)


class SourceForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Source.Kind.choices, widget=forms.RadioSelect)
    licence = forms.CharField(label=gettext_lazy("Licence"), required=False, max_length=200)
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    secret = forms.ChoiceField(
        label=gettext_lazy("Secret"),
        required=False,
        help_text=gettext_lazy(
            "SQL: a secret whose value is the database address, postgresql://user:password@host/db or "
            "sqlite:///absolute/path. S3: a secret whose value is ACCESS_KEY_ID:SECRET_ACCESS_KEY. Only the "
            "operator's secrets are listed (by name); their values are never shown."
        ),
    )
    query = forms.CharField(
        label=gettext_lazy("Query (SQL)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
        help_text=gettext_lazy("One SELECT (or WITH … SELECT) statement; it runs read-only."),
    )
    mapping = forms.CharField(
        label=gettext_lazy("Column mapping"),
        required=False,
        max_length=1000,
        help_text=gettext_lazy(
            "As for a CSV file: text=body,label=category or instruction=title+body,output=answer (SQL columns; "
            "S3: the CSV objects)."
        ),
    )
    row_limit = forms.IntegerField(label=gettext_lazy("Row limit (SQL)"), required=False, min_value=1)
    timeout = forms.IntegerField(
        label=gettext_lazy("Timeout in seconds (SQL)"), required=False, min_value=1, max_value=MAX_TIMEOUT
    )
    bucket = forms.CharField(label=gettext_lazy("Bucket (S3)"), required=False, max_length=255)
    prefix = forms.CharField(label=gettext_lazy("Prefix (S3)"), required=False, max_length=1000)
    endpoint_url = forms.CharField(
        label=gettext_lazy("Endpoint (S3)"),
        required=False,
        max_length=500,
        help_text=gettext_lazy("Empty for AWS; an S3-compatible server's address is checked against the allow list."),
    )
    region = forms.CharField(label=gettext_lazy("Region (S3)"), required=False, max_length=50)
    json_format = forms.ChoiceField(
        label=gettext_lazy("Format of .jsonl and .json objects (S3)"),
        required=False,
        choices=[(f, f) for f in JSON_FORMATS],
    )
    urls = forms.CharField(
        label=gettext_lazy("Pages (web)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text=gettext_lazy("One address a line."),
    )
    sitemap = forms.CharField(label=gettext_lazy("Sitemap (web)"), required=False, max_length=2000)
    delay_seconds = forms.FloatField(
        label=gettext_lazy("Seconds between requests to a site (web)"), required=False, min_value=0, max_value=60
    )
    max_bytes = forms.IntegerField(label=gettext_lazy("Largest page in bytes (web)"), required=False, min_value=1000)
    max_pages = forms.IntegerField(label=gettext_lazy("Most pages (web)"), required=False, min_value=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["secret"].choices = [("", _("None"))] + [(name, name) for name in secret_names()]

    def rows(self) -> list[tuple[forms.BoundField, str]]:
        """Each field with the kinds that read it ("" for every kind), for the page to show only
        the chosen kind's fields (static/js/sources.js)."""
        users: dict[str, list[str]] = {"secret": [Source.Kind.SQL, Source.Kind.S3]}
        for kind, names in KIND_OPTIONS.items():
            for name in names:
                users.setdefault(name, []).append(kind)
        return [(self[name], " ".join(users.get(name, []))) for name in self.fields]

    def source_fields(self) -> dict[str, Any]:
        """What source_create and source_update take: the common fields and the kind's options."""
        data = self.cleaned_data
        kind = data["kind"]
        options = {key: data.get(key) for key in KIND_OPTIONS.get(Source.Kind(kind), ())}
        common = {key: data.get(key, "") for key in ("name", "kind", "secret", "licence", "description")}
        return common | {"options": options}

    @staticmethod
    def initial_for(source: Source) -> dict[str, Any]:
        options = dict(source.options)
        if "mapping" in options:
            options["mapping"] = mapping_text(options["mapping"])
        if "urls" in options:
            options["urls"] = "\n".join(options["urls"])
        common = {key: getattr(source, key) for key in ("name", "kind", "secret", "licence", "description")}
        return common | options


class SourceImportForm(forms.Form):
    skip_bad_rows = forms.BooleanField(
        label=gettext_lazy("Skip bad rows"),
        required=False,
        help_text=gettext_lazy("Import the good rows and report the bad ones; otherwise one bad row imports nothing."),
    )
    update_changed = forms.BooleanField(
        label=gettext_lazy("Update changed rows"),
        required=False,
        help_text=gettext_lazy(
            "A row whose content changed since the last import (same object and line, or same page or file) "
            "replaces the example or document it made, with a revision; otherwise it is reported and left alone."
        ),
    )
