"""What the evaluation API sends and accepts."""

from __future__ import annotations

from django.utils.translation import gettext_lazy
from rest_framework import serializers

from curation.core.progress import ProgressFields
from curation.generation.serializers import refuse_backend_keys
from training.evaluation.judging import CRITERIA, SCORES
from training.models import EvalSample, Evaluation, JudgeJob


class EvaluationSerializer(ProgressFields, serializers.ModelSerializer):
    run = serializers.IntegerField(source="run_id", read_only=True)
    run_number = serializers.IntegerField(source="run.number", read_only=True)

    class Meta:
        model = Evaluation
        fields = [
            "id", "run", "run_number", "status", "total", "processed", *ProgressFields.PROGRESS_FIELDS,
            "error", "config", "created_at", "started_at", "finished_at",
        ]  # fmt: skip


class EvaluationDetailSerializer(EvaluationSerializer):
    judging = serializers.SerializerMethodField()
    scoring = serializers.SerializerMethodField(
        help_text=gettext_lazy(
            "How the texts were scored, the same for every system and sample: BLEU's tokenizer "
            "(tokenize: char or 13a; bleu_unit: characters or words), the normalization (NFKC), "
            "whether tool calls were scored. Empty for an evaluation scored before it was recorded."
        )
    )

    class Meta(EvaluationSerializer.Meta):
        fields = [*EvaluationSerializer.Meta.fields, "overall", "by_label", "by_source", "scoring", "judging"]

    def get_scoring(self, evaluation: Evaluation) -> dict:
        return dict((evaluation.config or {}).get("scoring") or {})

    def get_judging(self, evaluation: Evaluation) -> dict | None:
        from training.evaluation.judging import judging_results
        from training.evaluation.services import _plain

        if evaluation.status != Evaluation.Status.DONE:
            return None
        results = judging_results(evaluation)
        for opponent in results["opponents"]:
            opponent["name"] = str(opponent["name"])
            groups = dict(opponent.pop("groups"))
            opponent["by_label"], opponent["by_source"] = list(groups.values())
        return _plain(results)


class EvalSampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = EvalSample
        fields = ["id", "example", "prompt", "context", "reference", "label", "source", "outputs", "metrics"]


class EvaluationStartSerializer(serializers.Serializer):
    max_new_tokens = serializers.IntegerField(default=128, min_value=1, max_value=2048)
    few_shot = serializers.IntegerField(default=3, min_value=0, max_value=10)


class PairSerializer(serializers.Serializer):
    """A pair to judge, as the judge sees it: no model names, no sample id."""

    key = serializers.CharField()
    prompt = serializers.CharField()
    context = serializers.ListField(child=serializers.DictField(), help_text="The messages before the prompt.")
    reference = serializers.CharField(allow_blank=True)
    a = serializers.CharField(allow_blank=True)
    b = serializers.CharField(allow_blank=True)
    criteria = serializers.DictField(child=serializers.CharField())
    mine = serializers.DictField(allow_null=True, help_text="Your earlier judgment of this pair (as A/B), if any.")


class SideScoresSerializer(serializers.Serializer):
    a = serializers.ChoiceField(choices=list(SCORES), required=False, allow_null=True)
    b = serializers.ChoiceField(choices=list(SCORES), required=False, allow_null=True)


class JudgmentInSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=["a", "b", "tie"])
    scores = serializers.DictField(child=SideScoresSerializer(), required=False, default=dict)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)

    def validate_scores(self, value: dict) -> dict:
        unknown = sorted(set(value) - set(CRITERIA))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown criteria {', '.join(unknown)}; the criteria are {', '.join(CRITERIA)}."
            )
        return value


class JudgeJobSerializer(ProgressFields, serializers.ModelSerializer):
    class Meta:
        model = JudgeJob
        fields = [
            "id", "status", "total", "processed", *ProgressFields.PROGRESS_FIELDS, "failures", "error",
            "judge_model", "created_at", "finished_at",
        ]  # fmt: skip


class JudgeJobStartSerializer(serializers.Serializer):
    """Only a connection's id or name: the server's address and its key are an admin's to set."""

    connection = serializers.CharField(
        help_text=gettext_lazy("The id or name of one of the project's OpenAI-compatible connections.")
    )

    def to_internal_value(self, data: object) -> object:
        refuse_backend_keys(data)
        return super().to_internal_value(data)
