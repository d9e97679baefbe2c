from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from curation.core.services import BULK_FIELDS
from curation.models import Example, ExampleRevision, Label, Project


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


class LabelSourceSerializer(serializers.Serializer):
    rule_set = serializers.IntegerField(help_text=_("The number of the rule run (rule set version) it came from."))
    probability = serializers.FloatField(help_text=_("The label model's confidence in the label."))
    run_id = serializers.IntegerField()


class ExampleSerializer(serializers.ModelSerializer):
    label = serializers.CharField(source="label.name", allow_null=True, default=None)
    messages = MessageSerializer(many=True)
    label_source = serializers.SerializerMethodField(
        help_text=_("Where the label came from when it was accepted from the rules; null when a person gave it.")
    )

    class Meta:
        model = Example
        fields = [
            "id",
            "messages",
            "label",
            "label_source",
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

    @extend_schema_field(LabelSourceSerializer(allow_null=True))
    def get_label_source(self, example: Example) -> dict[str, Any] | None:
        if example.weak_label_id is None:
            return None
        weak = example.weak_label
        return {"rule_set": weak.run.number, "probability": weak.confidence, "run_id": weak.run_id}


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


class BrowseFiltersSerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True)
    label = serializers.CharField(required=False, allow_blank=True, help_text=_('A label name, or "-" for none.'))
    status = serializers.CharField(required=False, allow_blank=True)
    source = serializers.CharField(required=False, allow_blank=True)
    split = serializers.CharField(required=False, allow_blank=True)
    annotator = serializers.CharField(required=False, allow_blank=True)
    disagreement = serializers.BooleanField(required=False, default=False)
    meta_key = serializers.CharField(required=False, allow_blank=True)
    meta_value = serializers.CharField(required=False, allow_blank=True)


class BulkUpdateSerializer(serializers.Serializer):
    field = serializers.ChoiceField(BULK_FIELDS)
    value = serializers.CharField(allow_null=True, allow_blank=True, help_text=_("Empty or null clears a label."))
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)
    filters = BrowseFiltersSerializer(required=False, help_text=_("Every example matching these, instead of ids."))

    def validate(self, attrs: dict) -> dict:
        if ("ids" in attrs) == ("filters" in attrs):
            raise serializers.ValidationError({"ids": [_("Send either ids or filters.")]})
        return attrs


class BulkResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField()
