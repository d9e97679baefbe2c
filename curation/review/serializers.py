"""Output shapes of the review API's preference pairs; the drafts' shapes are the generation
API's (curation/generation/serializers.py)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from curation.core.serializers import MessageSerializer, ToolsField
from curation.models import PreferencePair


class PreferencePairSerializer(serializers.ModelSerializer):
    origin = serializers.CharField(help_text=", ".join(PreferencePair.Origin.values))
    prompt = MessageSerializer(many=True, help_text=gettext_lazy("The conversation up to the answer."))
    chosen = MessageSerializer(
        help_text=gettext_lazy("The preferred assistant message, with its tool calls and reasoning.")
    )
    rejected = MessageSerializer(help_text=gettext_lazy("The assistant message it was preferred to."))
    tools = ToolsField(help_text=gettext_lazy("The functions the conversation may call."))
    example = serializers.IntegerField(source="example_id", allow_null=True)
    job = serializers.IntegerField(source="job_id", allow_null=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = PreferencePair
        fields = [
            "id",
            "origin",
            "prompt",
            "chosen",
            "rejected",
            "tools",
            "example",
            "job",
            "created_by",
            "created_at",
        ]
