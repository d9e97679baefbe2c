from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from curation.models import Annotation, Example, ExampleRevision, ImportJob, Label, Project
from curation.services import BULK_FIELDS
from curation.splitting import BALANCE_STRATEGIES, METHODS, Ratios


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


class SplitRequestSerializer(serializers.Serializer):
    method = serializers.ChoiceField(METHODS)
    train = serializers.FloatField(min_value=0, max_value=1)
    validation = serializers.FloatField(min_value=0, max_value=1)
    test = serializers.FloatField(min_value=0, max_value=1)
    seed = serializers.IntegerField(default=42, help_text=_("The same seed gives the same splits."))
    group_key = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    only_unassigned = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict) -> dict:
        try:
            attrs["ratios"] = Ratios(attrs.pop("train"), attrs.pop("validation"), attrs.pop("test"))
        except ValueError as exc:
            raise serializers.ValidationError({"ratios": [str(exc)]}) from None
        attrs["group_key"] = attrs["group_key"].strip()
        return attrs


class SplitPreviewSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    moved = serializers.IntegerField()
    table = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text=_('{split: {label: count}}; examples without a label count under "—".'),
    )


class SplitAssignResultSerializer(serializers.Serializer):
    moved = serializers.IntegerField()


class BalanceRowSerializer(serializers.Serializer):
    label = serializers.CharField(allow_null=True)
    before = serializers.IntegerField()
    after = serializers.IntegerField()
    weight = serializers.FloatField()


class BalanceSerializer(serializers.Serializer):
    strategy = serializers.CharField()
    labels = BalanceRowSerializer(many=True, help_text=_("One row per label of the train split; null is no label."))


class BalanceChooseSerializer(serializers.Serializer):
    strategy = serializers.ChoiceField(BALANCE_STRATEGIES)
