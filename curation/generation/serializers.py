"""Input and output shapes of the generation API: templates, jobs, drafts and preference pairs.

Kinds, statuses and decisions are plain strings here (their values are in the help text):
several models have a "kind" and a "status" with different choices, and an enum per field
would make the schema's enum names collide.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from curation.core.progress import ProgressFields
from curation.core.serializers import MessageSerializer
from curation.generation.checks import flag_message
from curation.generation.stats import REJECT_REASONS, Stats
from curation.models import Draft, GenerationJob, PromptTemplate


def _values(choices: Any) -> str:
    return ", ".join(str(value) for value in choices)


class StatsSerializer(serializers.Serializer):
    drafts = serializers.IntegerField()
    pending = serializers.IntegerField()
    approved = serializers.IntegerField()
    edited = serializers.IntegerField()
    rejected = serializers.IntegerField()
    ranked_lower = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(
        allow_null=True,
        help_text=gettext_lazy(
            "Approved and edited among approved, edited and rejected drafts (ranked-lower ones are not "
            "rejections); null before any decision."
        ),
    )
    mean_edit_distance = serializers.FloatField(
        allow_null=True,
        help_text=gettext_lazy("Mean share of the answer reviewers changed (0 unchanged, 1 rewritten)."),
    )
    rejection_reasons = serializers.DictField(
        child=serializers.IntegerField(), help_text=gettext_lazy("Rejection reason code → number of drafts.")
    )


class TemplateRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = PromptTemplate
        fields = ["id", "name", "version"]


class TemplateSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = PromptTemplate
        fields = ["id", "name", "version", "text", "few_shot", "created_by", "created_at"]


class TemplateVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = PromptTemplate
        fields = ["id", "version", "text", "few_shot", "created_by", "created_at"]


class TemplateDetailSerializer(TemplateSerializer):
    versions = serializers.SerializerMethodField(help_text=gettext_lazy("Every version of this name, newest first."))
    stats = serializers.SerializerMethodField(help_text=gettext_lazy("How this version's drafts were reviewed."))

    class Meta(TemplateSerializer.Meta):
        fields = [*TemplateSerializer.Meta.fields, "versions", "stats"]

    @extend_schema_field(TemplateVersionSerializer(many=True))
    def get_versions(self, template: PromptTemplate) -> list[dict[str, Any]]:
        return TemplateVersionSerializer(self.context["versions"], many=True).data

    @extend_schema_field(StatsSerializer)
    def get_stats(self, template: PromptTemplate) -> dict[str, Any]:
        return self.context["stats"]


class TemplateInputSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)
    text = serializers.CharField(allow_blank=True, trim_whitespace=False)
    few_shot = serializers.IntegerField(
        default=3, help_text=gettext_lazy("How many approved examples fill {examples} (0 to 10).")
    )


class JobSerializer(ProgressFields, serializers.ModelSerializer):
    kind = serializers.CharField(help_text=_values(GenerationJob.Kind.values))
    status = serializers.CharField(help_text=_values(GenerationJob.Status.values))
    template = TemplateRefSerializer(allow_null=True, help_text=gettext_lazy("Null for augmentation jobs."))
    backend = serializers.CharField(help_text=gettext_lazy("The backend's name, such as local:… or openai:…"))
    config = serializers.JSONField(
        help_text=gettext_lazy(
            'The job\'s settings as started; backend is {"connection": id} or {"kind": "tuned", "run": id}.'
        )
    )
    progress = serializers.FloatField(read_only=True)
    error_count = serializers.SerializerMethodField(help_text=gettext_lazy("How many drafts could not be made."))
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    stats = serializers.SerializerMethodField()

    class Meta:
        model = GenerationJob
        fields = [
            "id",
            "kind",
            "status",
            "template",
            "backend",
            "config",
            "total",
            "processed",
            "progress",
            *ProgressFields.PROGRESS_FIELDS,
            "created_count",
            "error",
            "error_count",
            "cancel_requested",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "stats",
        ]

    def get_error_count(self, job: GenerationJob) -> int:
        return len(job.errors or [])

    @extend_schema_field(StatsSerializer)
    def get_stats(self, job: GenerationJob) -> dict[str, Any]:
        return (self.context["stats"].get(job.pk) or Stats()).as_dict()


class JobErrorSerializer(serializers.Serializer):
    key = serializers.CharField(help_text=gettext_lazy("Which prompt or candidate of the job (p3, p3:1, …)."))
    error = serializers.CharField()


class JobDetailSerializer(JobSerializer):
    errors = JobErrorSerializer(many=True, help_text=gettext_lazy("What went wrong, draft by draft."))

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "errors"]


def refuse_api_key(data: object) -> None:
    """A request that carries an API key itself is refused (and nothing of it is kept), so the
    person sending it learns at once that keys are the operator's secrets, chosen by a connection."""
    if isinstance(data, dict) and "api_key" in data:
        raise serializers.ValidationError(
            {
                "api_key": [
                    gettext_lazy(
                        "Do not send the API key. Keys are secrets the operator sets on the server; an admin "
                        'chooses which one a connection sends. Send "connection": the name or id of one.'
                    )
                ]
            }
        )


def refuse_backend_keys(data: object) -> None:
    """A request that still names an address, a model path, a key or a key's name (as jobs did
    before connections) is refused with a 400 saying what to send instead; nothing of it is kept."""
    if not isinstance(data, dict):
        return
    refuse_api_key(data)
    nested = data.get("backend")
    typed = [key for key in ("base_url", "api_key_env", "model", "timeout") if key in data]
    if isinstance(nested, dict):
        typed += [
            f"backend.{key}" for key in ("base_url", "api_key_env", "api_key", "model", "timeout") if key in nested
        ]
    if typed or "backend" in data:
        raise serializers.ValidationError(
            {
                "connection": [
                    gettext(
                        "Addresses, model paths and key names are no longer sent with a request (you sent %(keys)s). "
                        'Send "connection": the id or name of one of the project\'s connections; ask an admin to '
                        "add one."
                    )
                    % {"keys": ", ".join(typed) or "backend"}
                ]
            }
        )


class JobInputSerializer(serializers.Serializer):
    def to_internal_value(self, data: object) -> object:
        refuse_backend_keys(data)
        return super().to_internal_value(data)

    template = serializers.IntegerField(
        required=False,
        help_text=gettext_lazy(
            "A template version of this project; the project's first template when left out "
            "(made from the default text if there is none)."
        ),
    )
    count = serializers.IntegerField(help_text=gettext_lazy("How many prompts (1 to 1000)."))
    candidates = serializers.IntegerField(default=1, help_text=gettext_lazy("Answers per prompt (1 to 5)."))
    topics = serializers.ListField(child=serializers.CharField(allow_blank=True), default=list)
    task_types = serializers.ListField(child=serializers.CharField(allow_blank=True), default=list)
    temperature = serializers.FloatField(default=0.7, help_text=gettext_lazy("0 to 2; above 0 for several candidates."))
    max_new_tokens = serializers.IntegerField(default=256, help_text=gettext_lazy("16 to 4096."))
    critique = serializers.BooleanField(
        default=False, help_text=gettext_lazy("Ask the model to critique and rewrite each answer.")
    )
    seed = serializers.IntegerField(default=0)
    sources = serializers.ListField(
        child=serializers.IntegerField(),
        default=list,
        max_length=100,
        help_text=gettext_lazy(
            "For a template with {document}: the ids of the sources whose documents it draws passages from; "
            "every document of the project when left out."
        ),
    )
    passage_context = serializers.BooleanField(
        default=True,
        help_text=gettext_lazy(
            "For a template with {document}: write the answer with the passage in its system message and keep it "
            "there in the example (false: only the request sees the passage)."
        ),
    )
    connection = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text=gettext_lazy(
            "The id or name of one of the project's connections (GET /api/projects/<slug>/connections/); the "
            "embedded model when left out."
        ),
    )
    run = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text=gettext_lazy("Instead of a connection: a finished training run of this project, whose model writes."),
    )


class JobStatsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    template = TemplateRefSerializer(allow_null=True)
    stats = StatsSerializer()


class TemplateStatsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    stats = StatsSerializer()


class GenerationStatsSerializer(serializers.Serializer):
    jobs = JobStatsSerializer(many=True)
    templates = TemplateStatsSerializer(many=True, help_text=gettext_lazy("Template versions that made drafts."))


class FlagSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="empty, truncated, over_long, format, exact_duplicate, near_duplicate, same_prompt, "
        "critique_unparsed, tool_unknown, tool_arguments_invalid, tool_arguments_schema"
    )
    message = serializers.CharField(help_text=gettext_lazy("The finding in words, for the reviewer."))


class DocumentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    location = serializers.CharField(help_text=gettext_lazy("The page's URL or the uploaded file's name."))


class DraftSerializer(serializers.Serializer):
    """A draft as the reviewer sees it. Its id is its example's id."""

    id = serializers.IntegerField(source="example_id")
    version = serializers.IntegerField(
        source="example.version", help_text=gettext_lazy("The example version; send it with a decision.")
    )
    status = serializers.CharField(source="example.status")
    messages = MessageSerializer(many=True, source="example.messages")
    label = serializers.CharField(source="example.label.name", allow_null=True, default=None)
    source = serializers.CharField(source="example.source")
    job = serializers.IntegerField(source="job_id")
    template = TemplateRefSerializer(allow_null=True)
    backend = serializers.CharField(source="job.backend")
    group = serializers.CharField(help_text=gettext_lazy("The prompt this draft answers, within its job."))
    candidate = serializers.IntegerField()
    target = serializers.IntegerField(help_text=gettext_lazy("Index of the message the model wrote."))
    request = serializers.CharField(help_text=gettext_lazy("What the model was asked (the filled-in template)."))
    original = serializers.CharField(help_text=gettext_lazy("The model's text as it wrote it."))
    first_answer = serializers.CharField()
    critique = serializers.CharField()
    passage = serializers.CharField(
        help_text=gettext_lazy("The passage of a document the draft was grounded in ({document}); empty if none.")
    )
    document = DocumentRefSerializer(
        allow_null=True, help_text=gettext_lazy("The document the passage came from; null if none (or deleted).")
    )
    flags = serializers.SerializerMethodField(help_text=gettext_lazy("What the checks found; shown, never hidden."))
    decision = serializers.CharField(help_text=_values(Draft.Decision.values))
    reasons = serializers.ListField(child=serializers.CharField())
    note = serializers.CharField()
    rank = serializers.IntegerField(allow_null=True)
    edit_distance = serializers.FloatField(allow_null=True)
    reviewed_by = serializers.CharField(source="reviewed_by.username", allow_null=True, default=None)
    reviewed_at = serializers.DateTimeField(allow_null=True)
    candidates = serializers.SerializerMethodField(
        help_text=gettext_lazy("Example ids of the other drafts for the same prompt.")
    )

    @extend_schema_field(FlagSerializer(many=True))
    def get_flags(self, draft: Draft) -> list[dict[str, Any]]:
        return [{**flag, "message": flag_message(flag)} for flag in draft.flags or [] if isinstance(flag, dict)]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_candidates(self, draft: Draft) -> list[int]:
        group = self.context["groups"].get((draft.job_id, draft.group), [])
        return [pk for pk in group if pk != draft.example_id]


class DecideSerializer(serializers.Serializer):
    # A plain string, not a choice: an "action" enum would collide with the revision actions' in the schema.
    action = serializers.CharField(help_text="approve, reject")
    version = serializers.IntegerField(
        min_value=1, help_text=gettext_lazy("The example version you read; a stale version is refused with 409.")
    )
    messages = serializers.JSONField(
        required=False,
        allow_null=True,
        default=None,
        help_text=gettext_lazy("approve: the conversation as you edited it; the edit makes a preference pair."),
    )
    label = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, default=None, help_text=gettext_lazy("approve: a label.")
    )
    reasons = serializers.ListField(child=serializers.CharField(), default=list, help_text=_values(REJECT_REASONS))
    note = serializers.CharField(allow_blank=True, default="", trim_whitespace=False)

    def validate_action(self, value: str) -> str:
        if value not in ("approve", "reject"):
            raise serializers.ValidationError(gettext_lazy("Choose approve or reject."))
        return value


class RankSerializer(serializers.Serializer):
    order = serializers.ListField(
        child=serializers.IntegerField(),
        help_text=gettext_lazy("Example ids of every open candidate of one prompt, best first."),
    )
    versions = serializers.DictField(
        child=serializers.IntegerField(min_value=1),
        help_text=gettext_lazy("Example id → the version you read."),
    )
    note = serializers.CharField(allow_blank=True, default="", trim_whitespace=False)

    def validate_versions(self, value: dict[str, int]) -> dict[int, int]:
        try:
            return {int(key): version for key, version in value.items()}
        except ValueError:
            raise serializers.ValidationError(gettext_lazy("The keys must be example ids.")) from None


class RankResultSerializer(serializers.Serializer):
    best = DraftSerializer(help_text=gettext_lazy("The best candidate, now an approved example."))
    pairs = serializers.IntegerField(help_text=gettext_lazy("Preference pairs the ranking made."))


class ConflictDetailSerializer(serializers.Serializer):
    detail = serializers.CharField()
