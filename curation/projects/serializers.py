from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from curation.models import Label, Membership, Project, Role
from curation.projects.services import settings_version


class ProjectLabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "description", "colour", "shortcut", "retired"]


class ProjectSettingsSerializer(serializers.ModelSerializer):
    """A project with its settings and labels, as its admins change them."""

    settings_version = serializers.SerializerMethodField(
        help_text=_("Send it back with a PATCH: if someone changed the settings since, the answer is 409.")
    )
    labels = ProjectLabelSerializer(many=True, read_only=True)

    class Meta:
        model = Project
        fields = [
            "slug",
            "name",
            "kind",
            "description",
            "guidelines",
            "system_prompt",
            "json_schema",
            "structured_format",
            "annotations_per_example",
            "queue_order",
            "label_suggestions",
            "labels",
            "settings_version",
            "created_at",
        ]

    @extend_schema_field(serializers.CharField())
    def get_settings_version(self, project: Project) -> str:
        return settings_version(project)


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.CharField(
        required=False, allow_blank=True, help_text=_("Letters, digits, hyphens; made from the name when left out.")
    )
    kind = serializers.ChoiceField(
        choices=Project.Kind.choices,
        required=False,
        help_text=_("Left out: the copied project's kind, or chat."),
    )
    description = serializers.CharField(required=False, allow_blank=True)
    copy_from = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text=_(
            "The slug of a project you are an admin of: its labels, guidelines, system prompt, schema, "
            "annotation and queue settings and prompt templates are copied (never its examples)."
        ),
    )


class ProjectUpdateSerializer(serializers.Serializer):
    """The settings to change; those left out stay as they are."""

    name = serializers.CharField(required=False, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    kind = serializers.ChoiceField(choices=Project.Kind.choices, required=False)
    guidelines = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    system_prompt = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    annotations_per_example = serializers.IntegerField(required=False, min_value=1, max_value=10)
    queue_order = serializers.ChoiceField(choices=Project.QueueOrder.choices, required=False)
    label_suggestions = serializers.ChoiceField(choices=Project.LabelSuggestions.choices, required=False)
    structured_format = serializers.ChoiceField(choices=Project.StructuredFormat.choices, required=False)
    json_schema = serializers.JSONField(required=False, allow_null=True, help_text=_("A JSON Schema, or null."))
    settings_version = serializers.CharField(
        required=False, allow_blank=True, help_text=_("The settings_version you read; omit to overwrite.")
    )


class MemberSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(source="user.pk", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.CharField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["user_id", "username", "email", "role"]


class MemberAddSerializer(serializers.Serializer):
    user = serializers.CharField(help_text=_("The username or email address of an existing account."))
    role = serializers.ChoiceField(choices=Role.choices)


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
