from rest_framework import serializers

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
