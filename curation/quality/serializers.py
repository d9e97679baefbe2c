"""Input and output shapes of the quality API."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from curation.core.progress import ProgressFields
from curation.models import DuplicateCluster, QualityScan
from curation.quality.pii import PiiKind


class LineSerializer(serializers.Serializer):
    key = serializers.CharField()
    status = serializers.ChoiceField(choices=["pass", "warn", "fail"])
    title = serializers.CharField()
    detail = serializers.CharField()
    link = serializers.CharField(allow_blank=True)


class ScanSerializer(ProgressFields, serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    progress = serializers.FloatField(read_only=True)

    class Meta:
        model = QualityScan
        fields = [
            "number",
            "status",
            "stage",
            "progress",
            "total",
            "processed",
            *ProgressFields.PROGRESS_FIELDS,
            "config",
            "summary",
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]


class ReadinessSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["pass", "warn", "fail"])
    lines = LineSerializer(many=True)
    scan = ScanSerializer(allow_null=True)
    changed_since_scan = serializers.IntegerField()


class ClusterSerializer(serializers.ModelSerializer):
    members = serializers.SerializerMethodField()
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = DuplicateCluster
        fields = ["id", "size", "similarity", "splits", "members", "resolution", "kept", "resolved_by", "resolved_at"]

    def get_members(self, cluster: DuplicateCluster) -> list[int]:
        return self.context["members"].get(cluster.pk, [])


@extend_schema_serializer(component_name="ClusterResolve")  # curation.core.serializers has a "Resolve" too
class ResolveSerializer(serializers.Serializer):
    keep = serializers.IntegerField(help_text=_("The example to keep; the others are deleted."))
    mode = serializers.ChoiceField(choices=["keep", "merge"], default="keep")


class LeakSerializer(serializers.Serializer):
    evaluated = serializers.IntegerField(source="evaluated.pk")
    evaluated_split = serializers.CharField(source="evaluated.split")
    trained = serializers.IntegerField(source="trained.pk")
    kind = serializers.CharField()
    similarity = serializers.FloatField()


class FindingSerializer(serializers.Serializer):
    message = serializers.IntegerField()
    role = serializers.CharField(allow_null=True)
    kind = serializers.CharField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()


class PiiExampleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    findings = FindingSerializer(many=True)


class RedactSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text=_("Examples to redact; all flagged ones if absent.")
    )
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=[k.value for k in PiiKind]), required=False, allow_empty=False
    )


class RedactResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField()
    replaced = serializers.IntegerField()
