from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from curation.splits.splitting import BALANCE_STRATEGIES, METHODS, Ratios


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
