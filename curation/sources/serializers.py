"""The sources API's input and output shapes."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from curation.models import Source


class SourceSerializer(serializers.ModelSerializer):
    """A source as admins see it: the secret by name only, never its value."""

    class Meta:
        model = Source
        fields = ["id", "name", "kind", "secret", "options", "licence", "description", "created_at", "synced_at"]


class SourceInputSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.CharField(required=False, help_text=", ".join(Source.Kind.values))
    secret = serializers.CharField(
        required=False, allow_blank=True, help_text="The NAME of one of the operator's secrets (sql, s3)."
    )
    licence = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    options = serializers.DictField(
        required=False,
        help_text="The kind's options. sql: query, mapping, row_limit, timeout. s3: bucket, prefix, endpoint_url, "
        "region, json_format, mapping. web: urls (a list or one a line), sitemap, delay_seconds, max_bytes, max_pages.",
    )

    def fields_for(self, source: Source | None = None) -> dict[str, Any]:
        """What source_create / source_update take; for an update, what is not sent stays."""
        data = dict(self.validated_data)
        if source is not None:
            for key in ("name", "kind", "secret", "licence", "description"):
                data.setdefault(key, getattr(source, key))
            data["options"] = {**source.options, **data.get("options", {})}
        return data


class SourceImportSerializer(serializers.Serializer):
    skip_bad_rows = serializers.BooleanField(required=False, default=False)
    update_changed = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Rows (pages, files) that changed since the last import replace what they made, with a revision.",
    )
    files = serializers.ListField(
        child=serializers.FileField(), required=False, help_text="documents sources: the files to import."
    )


class SourcePreviewRowSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="The row's number in the query's result.")
    messages = serializers.ListField(child=serializers.DictField())
    label = serializers.CharField(allow_null=True)
    errors = serializers.ListField(child=serializers.DictField(), help_text="code, field, message of each problem.")


class SourcePreviewSerializer(serializers.Serializer):
    columns = serializers.ListField(child=serializers.CharField())
    rows = SourcePreviewRowSerializer(many=True)
    error = serializers.CharField(allow_null=True, allow_blank=True, help_text="Why the query could not run.")
