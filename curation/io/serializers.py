import json
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from curation.core.progress import ProgressFields
from curation.core.services import InvalidExample
from curation.io.tasks import import_progress
from curation.models import ImportJob


class ImportJobSerializer(ProgressFields, serializers.ModelSerializer):
    """An import; while it runs, `progress` (the fraction of the file read) and `rows_read` are
    the worker's latest, and the progress fields estimate the time left from them."""

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "format",
            "filename",
            "options",
            "status",
            "progress",
            *ProgressFields.PROGRESS_FIELDS,
            "rows_read",
            "rows_created",
            "rows_invalid",
            "rows_duplicate",
            "report",
            "error",
            "created_at",
            "finished_at",
        ]

    def progress_of(self, job: ImportJob) -> dict[str, Any]:
        return import_progress(job)

    def to_representation(self, instance: ImportJob) -> dict[str, Any]:
        self._progress(instance)  # reads the worker's latest into the row first
        return super().to_representation(instance)


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "object", "additionalProperties": True}]})
class MappingField(serializers.Field):
    """A column mapping: an object {"text": "question"} (a list of columns joins them), or text
    "text=question,label=category" (a form field may also hold the object as JSON). Checked
    against the format by the import service."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and data.lstrip().startswith("{"):
            try:
                return json.loads(data)
            except ValueError as exc:
                raise serializers.ValidationError(_("not valid JSON: %(error)s") % {"error": exc}) from exc
        if not isinstance(data, str | dict):
            raise serializers.ValidationError(_('expected an object such as {"text": "Body", "label": "Category"}'))
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def refuse_unknown(serializer: serializers.Serializer) -> None:
    """A ValidationError naming each field the request sent that the serializer does not take."""
    unknown = sorted(set(getattr(serializer, "initial_data", {})) - set(serializer.fields))
    if unknown:
        message = _('unknown option "%(option)s"; expected one of %(options)s')
        options = ", ".join(serializer.fields)
        raise serializers.ValidationError({name: [message % {"option": name, "options": options}] for name in unknown})


class ImportCreateSerializer(serializers.Serializer):
    """Every option manage.py import_examples takes; an unknown field is refused, and an option
    the format does not take too (by the import service), never ignored."""

    file = serializers.FileField()
    format = serializers.CharField()
    encoding = serializers.CharField(required=False, help_text="auto (default), utf-8, utf-16, cp932...")
    mapping = MappingField(
        required=False,
        help_text='Column mapping, any format: {"text": "question", "label": "category"} or '
        "text=question,label=category; instruction=title+body (or a list) joins columns with a blank line.",
    )
    delimiter = serializers.CharField(required=False, help_text="CSV/TSV: one character, or tab.")
    split = serializers.CharField(required=False, help_text="train, validation or test: for rows that name none.")
    skip_bad_rows = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        refuse_unknown(self)
        return attrs

    def import_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.validated_data.items() if k not in ("file", "format")}


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
class StatusesField(serializers.Field):
    """Statuses as a list, or as text separated by commas (checked by the export)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) or (isinstance(data, list) and all(isinstance(v, str) for v in data)):
            return data
        raise serializers.ValidationError(_('expected a list of statuses, such as ["approved"], or "any"'))

    def to_representation(self, value: Any) -> Any:
        return value


class HubPushSerializer(serializers.Serializer):
    """A push to the Hugging Face Hub: where, with which of the operator's secrets, and the
    export's options as the export endpoint takes them; an unknown field is refused."""

    repo_id = serializers.CharField(max_length=200, help_text="owner/name of a dataset repository.")
    secret = serializers.CharField(help_text="The name of one of the operator's secrets (the token).")
    private = serializers.BooleanField(default=True, help_text="For a new repository; one that exists keeps its own.")
    format = serializers.CharField()
    status = StatusesField(required=False, help_text="As the export takes it: approved when left out.")
    split = serializers.CharField(required=False, allow_blank=True)
    source = serializers.CharField(required=False, allow_blank=True)
    label = serializers.CharField(required=False, allow_blank=True)
    formulas = serializers.CharField(required=False, allow_blank=True)
    shikomi_fields = serializers.BooleanField(default=False)
    per_split = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        refuse_unknown(self)
        return {name: (value if value != "" else None) for name, value in attrs.items()}


class HubPushResultSerializer(serializers.Serializer):
    repo_id = serializers.CharField()
    url = serializers.CharField(help_text="The repository on the Hub.")
    commit_url = serializers.CharField()
    files = serializers.ListField(child=serializers.CharField())
    skipped = serializers.DictField(child=serializers.IntegerField(), help_text="Examples the format left out.")


def boolean(params: Any, name: str) -> bool:
    """A true/false query parameter (true, 1, yes, on / false, 0, no, off; absent is false)."""
    field = serializers.BooleanField()
    value = params.get(name)
    if value in (None, ""):
        return False
    try:
        return field.to_internal_value(value)
    except serializers.ValidationError as exc:
        raise InvalidExample(name, _("expected true or false")) from exc
