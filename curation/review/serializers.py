"""Output shapes of the review API's preference pairs; the drafts' shapes are the generation
API's (curation/generation/serializers.py)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from curation.core.serializers import ExampleSerializer, MessageSerializer, ToolsField
from curation.generation import serializers as generation
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


class RankSerializer(generation.RankSerializer):
    none_good_enough = serializers.BooleanField(
        default=False,
        help_text=gettext_lazy(
            "Record the preference between the candidates, but approve none: every candidate is rejected with "
            "the reason none_good_enough."
        ),
    )


class RankResultSerializer(serializers.Serializer):
    best = generation.DraftSerializer(
        help_text=gettext_lazy("The first-ranked candidate: an approved example, unless none was good enough.")
    )
    approved = serializers.BooleanField(help_text=gettext_lazy("Whether the first candidate was approved."))
    pairs = serializers.IntegerField(help_text=gettext_lazy("Preference pairs the ranking made."))


class LabelOriginSerializer(serializers.Serializer):
    source = serializers.ChoiceField(["person", "rules", "none"])
    text = serializers.CharField(help_text=gettext_lazy("Where the label came from, in words."))
    user = serializers.CharField(allow_null=True, help_text=gettext_lazy("Who set a person's label, when known."))
    rule_set = serializers.IntegerField(allow_null=True, help_text=gettext_lazy("The rule set version (rules)."))
    model = serializers.CharField(allow_null=True, help_text=gettext_lazy("label_model or majority (rules)."))
    confidence = serializers.FloatField(allow_null=True, help_text=gettext_lazy("0 to 1 (rules)."))


class ExampleReviewItemSerializer(serializers.Serializer):
    example = ExampleSerializer(allow_null=True, help_text=gettext_lazy("The next example; null when none waits."))
    label_origin = LabelOriginSerializer(allow_null=True)
    why = serializers.ListField(child=serializers.CharField(), help_text=gettext_lazy("Why it needs review, in words."))
    remaining = serializers.IntegerField(help_text=gettext_lazy("Examples that need review under the filters."))


class ExampleReviewDecideSerializer(serializers.Serializer):
    example = serializers.IntegerField(help_text=gettext_lazy("The id of the example decided."))
    version = serializers.IntegerField(min_value=1, help_text=gettext_lazy("The version you read."))
    action = serializers.ChoiceField(["approve", "reject"])
    label = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text=gettext_lazy("Approve with this label (null or empty: no label); left out, the label stays."),
    )
    messages = serializers.JSONField(
        required=False, help_text=gettext_lazy("Approve the conversation as you edited it (the whole list).")
    )


class ExampleReviewResultSerializer(serializers.Serializer):
    example = ExampleSerializer(help_text=gettext_lazy("The example as decided."))
    remaining = serializers.IntegerField(help_text=gettext_lazy("Examples that still need review."))
