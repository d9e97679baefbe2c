from typing import Any

from django.utils.translation import gettext as _
from rest_framework import serializers

from curation.core.services import InvalidExample
from curation.models import ImportJob


class ImportJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportJob
        fields = [
            "id",
            "format",
            "filename",
            "options",
            "status",
            "progress",
            "rows_read",
            "rows_created",
            "rows_invalid",
            "rows_duplicate",
            "report",
            "error",
            "created_at",
            "finished_at",
        ]


class ImportCreateSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.CharField()
    encoding = serializers.CharField(required=False, default="auto")
    mapping = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    skip_bad_rows = serializers.BooleanField(required=False, default=False)


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
