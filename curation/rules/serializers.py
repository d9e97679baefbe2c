"""Input and output serializers of the weak-supervision API (curation/rules/api.py).

Inputs only check shapes; what a rule's parameters mean is checked by the services
(curation/rules/spec.py), which name the field that is wrong.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from curation.core.progress import ProgressFields
from curation.models import LabelingRule, RuleRevision, RuleRun, WeakLabel

KIND_CHOICES = [
    *LabelingRule.Kind.choices,
]

# --- rules ----------------------------------------------------------------------------


class RuleStatsSerializer(serializers.Serializer):
    scanned = serializers.IntegerField(required=False)
    hits = serializers.IntegerField()
    coverage = serializers.FloatField()
    gold_hits = serializers.IntegerField()
    correct = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)


class RevisionStatsSerializer(serializers.Serializer):
    saved = RuleStatsSerializer(
        required=False, help_text=_("Measured on every example when this version was saved (not for model rules).")
    )
    run = serializers.DictField(
        required=False, help_text=_("The figures of the latest run that applied this version, with its number.")
    )


class RuleSerializer(serializers.ModelSerializer):
    label = serializers.CharField(source="label.name")
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    updated_by = serializers.CharField(source="updated_by.username", allow_null=True, default=None)
    stats = serializers.SerializerMethodField(help_text=_("The figures of the rule's current version."))

    class Meta:
        model = LabelingRule
        fields = [
            "id",
            "name",
            "kind",
            "params",
            "label",
            "target",
            "active",
            "version",
            "stats",
            "created_by",
            "updated_by",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(RevisionStatsSerializer)
    def get_stats(self, rule: LabelingRule) -> dict[str, Any]:
        # Annotated by the API's queryset (api_rules.rules_of), so a list costs one query.
        return getattr(rule, "current_stats", None) or {}


class RuleInputSerializer(serializers.Serializer):
    """A rule as typed. The parameters depend on the kind (see curation/rules/spec.py)."""

    name = serializers.CharField(max_length=100, required=True, allow_blank=True, trim_whitespace=False)
    kind = serializers.ChoiceField(KIND_CHOICES)
    params = serializers.DictField(
        default=dict,
        help_text=_(
            "keywords: keywords, mode (any|all), whole_word, case_sensitive, fold_width (NFKC, default true); "
            "regex: pattern (Python re syntax and meaning; no lookaround or back-references), case_sensitive, "
            "fold_width; length: unit (chars|words), min, max; metadata: key, op (equals, not_equals, contains, "
            "exists, missing, gt, lt, in, keywords, regex), value, or with op keywords the keyword parameters, "
            "with op regex the regex parameters; similarity: threshold; llm: instruction, backend (the model: "
            '{"connection": id} of one of the project\'s connections, or {"kind": "tuned", "run": id}; none: the '
            "embedded model); combine: op (and|or|not), rules (ids of the project's rules; not takes one)."
        ),
    )
    label = serializers.CharField(help_text=_("The name of the label the rule votes for."))
    target = serializers.ChoiceField(
        LabelingRule.Target.choices, default=LabelingRule.Target.USER, help_text=_("Which messages the rule reads.")
    )
    active = serializers.BooleanField(default=True)


class RulePreviewInputSerializer(RuleInputSerializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class RuleUpdateSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, help_text=_("The version you read; a stale version is refused with 409.")
    )
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, trim_whitespace=False)
    kind = serializers.ChoiceField(KIND_CHOICES, required=False)
    params = serializers.DictField(required=False)
    label = serializers.CharField(required=False)
    target = serializers.ChoiceField(LabelingRule.Target.choices, required=False)
    active = serializers.BooleanField(required=False)


class RuleConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    current = RuleSerializer()


class PreviewSampleSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text=_("The example's id."))
    gold = serializers.CharField(allow_null=True, help_text=_("The label a person gave it, if any."))
    text = serializers.CharField(trim_whitespace=False, help_text=_("The text the rule read."))
    matches = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2),
        help_text=_("[start, end) character offsets of what matched in `text`."),
    )


class PreviewModelSerializer(serializers.Serializer):
    model = serializers.CharField(help_text=_("The backend that answered."))
    asked = serializers.IntegerField(help_text=_("Examples the model was asked about."))
    seconds = serializers.FloatField(help_text=_("Seconds spent waiting for its answers."))
    seconds_per_example = serializers.FloatField(allow_null=True)
    estimate_seconds = serializers.FloatField(
        allow_null=True,
        help_text=_("About how long it would take on every example of the project (seconds per example × total)."),
    )


class RulePreviewSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text=_("Examples in the project."))
    scanned = serializers.IntegerField(help_text=_("Examples the preview read (model rules read the first few)."))
    limited = serializers.BooleanField(help_text=_("True when not every example was read."))
    hits = serializers.IntegerField()
    coverage = serializers.FloatField(help_text=_("hits / scanned"))
    gold_hits = serializers.IntegerField(help_text=_("Hits on examples a person labeled."))
    correct = serializers.IntegerField(help_text=_("Of those, how many the rule got right."))
    accuracy = serializers.FloatField(allow_null=True, help_text=_("correct / gold_hits; null without gold hits."))
    sample = PreviewSampleSerializer(many=True)
    model = PreviewModelSerializer(
        allow_null=True,
        help_text=_("For an LLM rule, what asking its model cost; null for other kinds or when nothing was asked."),
    )


class RuleRevisionSerializer(serializers.ModelSerializer):
    edited_by = serializers.CharField(source="edited_by.username", allow_null=True, default=None)
    stats = RevisionStatsSerializer()

    class Meta:
        model = RuleRevision
        fields = ["version", "spec", "stats", "edited_by", "created_at"]


# --- runs -----------------------------------------------------------------------------


class RuleRunSerializer(ProgressFields, serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True, help_text=_("processed / total, from 0 to 1."))
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = RuleRun
        fields = [
            "id",
            "number",
            "status",
            "progress",
            "processed",
            "total",
            *ProgressFields.PROGRESS_FIELDS,
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]


class RuleAnalysisSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text=_("The rule's id."))
    name = serializers.CharField()
    version = serializers.IntegerField()
    kind = serializers.CharField()
    label = serializers.CharField()
    polarity = serializers.ListField(child=serializers.CharField(), help_text=_("The labels it voted for."))
    coverage = serializers.FloatField()
    overlaps = serializers.FloatField()
    conflicts = serializers.FloatField()
    hits = serializers.IntegerField()
    gold_hits = serializers.IntegerField()
    correct = serializers.IntegerField()
    incorrect = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)


class RuleRunDetailSerializer(RuleRunSerializer):
    analysis = RuleAnalysisSerializer(many=True, help_text=_("One row per rule, in the run's order."))
    metrics = serializers.DictField(
        help_text=_(
            "model (label_model or majority), label_model and majority scores on human labels, class_balance, coverage."
        )
    )

    class Meta(RuleRunSerializer.Meta):
        fields = [*RuleRunSerializer.Meta.fields, "rules", "label_names", "analysis", "metrics"]


class WeakLabelSerializer(serializers.ModelSerializer):
    label = serializers.CharField(source="label.name", allow_null=True, default=None)
    votes = serializers.DictField(child=serializers.CharField(), help_text=_("rule id → the label it voted for."))
    probabilities = serializers.DictField(child=serializers.FloatField(), help_text=_("label → probability."))

    class Meta:
        model = WeakLabel
        fields = ["id", "example", "label", "confidence", "conflict", "votes", "probabilities"]


class WeakLabelFiltersSerializer(serializers.Serializer):
    min_confidence = serializers.FloatField(required=False, min_value=0, max_value=1)
    max_confidence = serializers.FloatField(required=False, min_value=0, max_value=1)
    conflict = serializers.BooleanField(required=False, allow_null=True, default=None)
    sort = serializers.ChoiceField(["confidence", "-confidence", "example"], required=False, default="confidence")


class ThresholdSerializer(serializers.Serializer):
    threshold = serializers.FloatField(
        min_value=0, max_value=1, help_text=_("Accept weak labels with at least this confidence.")
    )


class AcceptedSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text=_("Examples whose label was set from the rules."))


class AcceptableSerializer(serializers.Serializer):
    acceptable = serializers.IntegerField(help_text=_("Examples whose label accepting would set or change."))
