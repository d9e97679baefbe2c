from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from curation.core.serializers import ExampleSerializer
from curation.models import Annotation


class QueueSerializer(serializers.Serializer):
    example = ExampleSerializer(allow_null=True)
    remaining = serializers.IntegerField(help_text=_("Examples waiting for you, counted up to 1001."))


class AnnotationInputSerializer(serializers.Serializer):
    based_on_version = serializers.IntegerField(
        min_value=1, help_text=_("The example version you read; a stale version is refused with 409.")
    )
    label = serializers.CharField(required=False, allow_null=True, allow_blank=True, default=None)
    messages = serializers.JSONField(
        required=False, allow_null=True, default=None, help_text=_("Your edit of the messages; leave out if unchanged.")
    )
    rating = serializers.IntegerField(required=False, allow_null=True, default=None)
    turn_ratings = serializers.JSONField(
        required=False,
        allow_null=True,
        default=None,
        help_text=_('Ratings of single assistant turns, 1 to 5, by message index: {"1": 4, "3": 2}.'),
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class AnnotationSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username")
    label = serializers.CharField(source="label.name", allow_null=True, default=None)

    class Meta:
        model = Annotation
        fields = [
            "id",
            "example",
            "annotator",
            "status",
            "label",
            "messages",
            "rating",
            "turn_ratings",
            "note",
            "based_on_version",
            "submitted_at",
            "updated_at",
        ]


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    current = ExampleSerializer()


class ResolveSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, help_text=_("The example version you read; a stale version is refused with 409.")
    )
    label = serializers.CharField(allow_null=True, allow_blank=True, help_text=_("The gold label; null for none."))
    messages = serializers.JSONField(required=False, allow_null=True, default=None)


class PairAgreementSerializer(serializers.Serializer):
    a = serializers.CharField()
    b = serializers.CharField()
    units = serializers.IntegerField()
    kappa = serializers.FloatField(allow_null=True)
    band = serializers.CharField()


class LabelAgreementSerializer(serializers.Serializer):
    label = serializers.CharField()
    alpha = serializers.FloatField(allow_null=True)
    band = serializers.CharField()


class AgreementSerializer(serializers.Serializer):
    units = serializers.IntegerField(help_text=_("Examples with at least two submitted labels."))
    alpha = serializers.FloatField(allow_null=True, help_text=_("Krippendorff's alpha (nominal)."))
    alpha_band = serializers.CharField()
    fleiss = serializers.FloatField(allow_null=True, help_text=_("Fleiss' kappa."))
    fleiss_band = serializers.CharField()
    pairs = PairAgreementSerializer(many=True)
    per_label = LabelAgreementSerializer(many=True)
