from rest_framework import serializers

from curation.models import Example, ExampleRevision, ImportJob, Label, Project


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["slug", "name", "kind", "description", "guidelines", "system_prompt", "json_schema"]


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "description", "colour", "shortcut"]


class MessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField(trim_whitespace=False)


class ExampleSerializer(serializers.ModelSerializer):
    label = serializers.CharField(source="label.name", allow_null=True, default=None)
    messages = MessageSerializer(many=True)

    class Meta:
        model = Example
        fields = [
            "id",
            "messages",
            "label",
            "source",
            "status",
            "split",
            "metadata",
            "content_hash",
            "version",
            "import_job",
            "source_line",
            "created_at",
            "updated_at",
        ]


class ExampleCreateSerializer(serializers.Serializer):
    messages = serializers.JSONField()
    label = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    status = serializers.ChoiceField(Example.Status.choices, default=Example.Status.NEEDS_REVIEW)
    split = serializers.ChoiceField(Example.Split.choices, default=Example.Split.UNASSIGNED)
    metadata = serializers.DictField(required=False, default=dict)


class ExampleUpdateSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, help_text="The version you read; a stale version is refused with 409."
    )
    messages = serializers.JSONField(required=False)
    label = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    status = serializers.ChoiceField(Example.Status.choices, required=False)
    split = serializers.ChoiceField(Example.Split.choices, required=False)
    metadata = serializers.DictField(required=False)


class RevisionSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", allow_null=True, default=None)

    class Meta:
        model = ExampleRevision
        fields = ["id", "action", "version", "user", "before", "after", "created_at"]


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
