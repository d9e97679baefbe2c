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


class ToolCallFunctionSerializer(serializers.Serializer):
    name = serializers.CharField()
    arguments = serializers.CharField(
        trim_whitespace=False, help_text=_("The arguments: a JSON object written as text, as OpenAI does.")
    )


class ToolCallSerializer(serializers.Serializer):
    id = serializers.CharField(help_text=_("Unique in the conversation; a tool result names it."))
    type = serializers.CharField(help_text=_('Always "function".'))
    function = ToolCallFunctionSerializer()


@extend_schema_field(ToolCallSerializer(many=True))
class ToolCallsField(serializers.JSONField):
    """A turn's calls as stored: written out whole, whatever their shape."""


class MessageSerializer(serializers.Serializer):
    """One message of the canonical conversation (docs/data-model.md); keys a message does not
    have are left out."""

    role = serializers.CharField(help_text=_("system, user, assistant or tool."))
    content = serializers.CharField(trim_whitespace=False, allow_blank=True, allow_null=True)
    name = serializers.CharField(required=False)
    reasoning = serializers.CharField(
        required=False, trim_whitespace=False, help_text=_("An assistant's thinking before its answer.")
    )
    tool_calls = ToolCallsField(required=False, help_text=_("The calls an assistant turn makes."))
    tool_call_id = serializers.CharField(required=False, help_text=_("On a tool result: the call it answers."))
    weight = serializers.IntegerField(
        required=False, help_text=_("On an assistant turn: 1 train on it (the default), 0 do not.")
    )


class ToolFunctionSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(required=False)
    parameters = serializers.JSONField(required=False, help_text=_("A JSON schema of the arguments."))


class ToolSerializer(serializers.Serializer):
    """One of an example's tools, in OpenAI's shape."""

    type = serializers.CharField(help_text=_('Always "function".'))
    function = ToolFunctionSerializer()


@extend_schema_field(ToolSerializer(many=True))
class ToolsField(serializers.JSONField):
    """An example's tools as stored (checked by the services, which name the field at fault)."""


class LabelSourceSerializer(serializers.Serializer):
    rule_set = serializers.IntegerField(help_text=_("The number of the rule run (rule set version) it came from."))
    probability = serializers.FloatField(help_text=_("The label model's confidence in the label."))
    run_id = serializers.IntegerField()


class ExampleSerializer(serializers.ModelSerializer):
    label = serializers.CharField(source="label.name", allow_null=True, default=None)
    messages = MessageSerializer(many=True)
    tools = ToolsField(read_only=True)
    label_source = serializers.SerializerMethodField(
        help_text=_("Where the label came from when it was accepted from the rules; null when a person gave it.")
    )

    class Meta:
        model = Example
        fields = [
            "id",
            "messages",
            "tools",
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
        return {
            "rule_set": weak.run.number,
            "model": weak.accepted_from or weak.Source.LABEL_MODEL,
            "probability": weak.accepted_confidence,
            "run_id": weak.run_id,
        }


class ExampleCreateSerializer(serializers.Serializer):
    messages = serializers.JSONField()
    tools = ToolsField(required=False, default=list, help_text=_("The functions the conversation may call."))
    label = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    status = serializers.ChoiceField(Example.Status.choices, default=Example.Status.NEEDS_REVIEW)
    split = serializers.ChoiceField(Example.Split.choices, default=Example.Split.UNASSIGNED)
    metadata = serializers.DictField(required=False, default=dict)


class ExampleUpdateSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, help_text="The version you read; a stale version is refused with 409."
    )
    messages = serializers.JSONField(required=False)
    tools = ToolsField(required=False, help_text=_("The functions the conversation may call; [] for none."))
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
    label_source = serializers.ChoiceField(["person", "rules", "none"], required=False, allow_blank=True)


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
