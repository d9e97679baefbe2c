"""The REST API. Every project endpoint is a ProjectAPIView: its ``project_action`` names
what the role must allow (curation/core/permissions.py), per HTTP method where they differ."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core import limits, serializers, services
from curation.core import selectors as core_selectors
from curation.core.api import FILTER_PARAMS, ProjectAPIView, SignedInAPIMixin
from curation.core.permissions import Action, projects_for_user
from curation.models import Example
from curation.projects import serializers as project_serializers
from curation.projects.selectors import projects_to_copy
from curation.projects.serializers import ProjectSettingsSerializer
from curation.projects.services import may_create_projects, project_create, project_update
from curation.workspace import selectors
from curation.workspace.pagination import KeysetPagination


class ProjectList(SignedInAPIMixin, generics.ListCreateAPIView):
    """Projects you are a member of; POST makes one (staff and users with curation.add_project),
    blank or copying the setup of a project you are an admin of. Its maker becomes its admin."""

    serializer_class = serializers.ProjectSerializer
    required_access = "authenticated"
    # Who may use each method (read by the permission matrix): listing is for anyone signed in.
    project_action = {"GET": "authenticated", "POST": "create_project"}

    @classmethod
    def action_for(cls, method: str) -> str:
        return cls.project_action.get(method, "authenticated")

    def get_queryset(self):
        return projects_for_user(self.request.user).order_by("name")

    @extend_schema(request=project_serializers.ProjectCreateSerializer, responses={201: ProjectSettingsSerializer})
    def post(self, request: Request) -> Response:
        if not may_create_projects(request.user):
            raise PermissionDenied(_("Only staff and users allowed to add projects may create one."))
        data = project_serializers.ProjectCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        source = None
        if fields.pop("copy_from", ""):
            source = projects_to_copy(request.user).filter(slug=data.validated_data["copy_from"]).first()
            if source is None:
                raise ValidationError({"copy_from": [_("Not a project you are an admin of.")]})
        project = project_create(user=request.user, copy_from=source, **fields)
        return Response(ProjectSettingsSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetail(ProjectAPIView):
    """A project and its settings; admins PATCH the settings (each change is recorded)."""

    project_action = {"GET": Action.VIEW, "PATCH": Action.MANAGE_PROJECT}

    def current_data(self, current):
        return ProjectSettingsSerializer(current).data

    @extend_schema(responses=ProjectSettingsSerializer)
    def get(self, request: Request, slug: str) -> Response:
        return Response(ProjectSettingsSerializer(self.project).data)

    @extend_schema(
        request=project_serializers.ProjectUpdateSerializer,
        responses={200: ProjectSettingsSerializer, 409: ProjectSettingsSerializer},
        description="Send the settings_version you read: if someone changed the settings since, the answer "
        "is 409 with the project as it is now under `current`, and nothing is changed.",
    )
    def patch(self, request: Request, slug: str) -> Response:
        data = project_serializers.ProjectUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        version = changes.pop("settings_version", "") or None
        project = project_update(project=self.project, user=request.user, changes=changes, version=version)
        return Response(ProjectSettingsSerializer(project).data)


class LabelList(ProjectAPIView):
    project_action = Action.VIEW

    @extend_schema(responses=serializers.LabelSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        return Response(serializers.LabelSerializer(self.project.labels.all(), many=True).data)


BROWSE_PARAMS = [
    *FILTER_PARAMS,
    OpenApiParameter("q", str, description="Only examples whose text contains every word."),
    OpenApiParameter("annotator", str, description="Only examples this username submitted an answer for."),
    OpenApiParameter("disagreement", bool, description="Only examples whose annotators disagree, unresolved."),
    OpenApiParameter("meta_key", str, description="With meta_value: only examples whose metadata has this value."),
    OpenApiParameter("meta_value", str, description="The value meta_key must have."),
    OpenApiParameter(
        "label_source",
        str,
        enum=["person", "rules", "none"],
        description="Only examples whose label a person gave, that came from rules (accepted weak labels), or none.",
    ),
    OpenApiParameter("sort", str, enum=list(core_selectors.SORTS), description="The order; by id when left out."),
]


class ExampleList(ProjectAPIView, generics.GenericAPIView):
    # Pages by key (curation/workspace/pagination.py): a late page costs what the first does.
    project_action = {"GET": Action.VIEW, "POST": Action.EDIT}
    serializer_class = serializers.ExampleSerializer
    pagination_class = KeysetPagination

    def get_queryset(self):
        filters = {name: self.request.query_params.get(name) for name in core_selectors.BROWSE_FILTERS}
        return selectors.example_list(project=self.project, filters=filters)

    @extend_schema(
        parameters=BROWSE_PARAMS,
        responses=serializers.ExampleSerializer(many=True),
        description="The project's examples, filtered like the browser, a page at a time: follow `next` and "
        "`previous`, which carry a `cursor` (where the page starts). Rows added or removed while you walk "
        "the pages neither repeat nor skip others, and the last page is as fast as the first. `count` is "
        "the number of examples that match. `?page=N` (numbered pages) still answers as before, but is "
        "deprecated: late pages are slower.",
    )
    def get(self, request: Request, slug: str) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=serializers.ExampleCreateSerializer, responses={201: serializers.ExampleSerializer})
    def post(self, request: Request, slug: str) -> Response:
        data = serializers.ExampleCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        example = services.example_create(project=self.project, user=request.user, **data.validated_data)
        return Response(serializers.ExampleSerializer(example).data, status=status.HTTP_201_CREATED)


class ExampleDetail(ProjectAPIView):
    project_action = {"GET": Action.VIEW, "PATCH": Action.EDIT, "DELETE": Action.MANAGE_PROJECT}

    def get_example(self, example_id: int) -> Example:
        return core_selectors.example_get(project=self.project, example_id=example_id)

    @extend_schema(responses=serializers.ExampleSerializer)
    def get(self, request: Request, slug: str, example_id: int) -> Response:
        return Response(serializers.ExampleSerializer(self.get_example(example_id)).data)

    @extend_schema(
        request=serializers.ExampleUpdateSerializer,
        responses={200: serializers.ExampleSerializer, 409: serializers.ExampleSerializer},
        description="Send the version you read. If someone saved since, the answer is 409 "
        "with the current example under `current`, and nothing is changed.",
    )
    def patch(self, request: Request, slug: str, example_id: int) -> Response:
        example = self.get_example(example_id)
        data = serializers.ExampleUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        version = changes.pop("version")
        example = services.example_update(example=example, user=request.user, version=version, **changes)
        return Response(serializers.ExampleSerializer(example).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, slug: str, example_id: int) -> Response:
        services.example_delete(example=self.get_example(example_id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExampleRevisions(ProjectAPIView):
    project_action = Action.VIEW

    @extend_schema(responses=serializers.RevisionSerializer(many=True))
    def get(self, request: Request, slug: str, example_id: int) -> Response:
        example = core_selectors.example_get(project=self.project, example_id=example_id)
        revisions = example.revisions.select_related("user")
        return Response(serializers.RevisionSerializer(revisions, many=True).data)


class ExampleBulk(ProjectAPIView):
    project_action = Action.EDIT

    @extend_schema(
        request=serializers.BulkUpdateSerializer,
        responses=serializers.BulkResultSerializer,
        description="Set label, split or status on the examples named by `ids` (at most "
        "SHIKOMI_MAX_BULK_IDS), or on every example matching `filters`. Approving and rejecting need the "
        "review permission, moving examples between splits the admin role (403 otherwise).",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = serializers.BulkUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        if "ids" in d:
            limits.bulk_ids_check(d["ids"])  # the service keeps to this project's examples
        examples = None if "ids" in d else selectors.example_list(project=self.project, filters=d["filters"])
        changed = services.example_bulk_update(
            project=self.project,
            user=request.user,
            examples=examples,
            ids=d.get("ids"),
            changes={d["field"]: d["value"] or None},
        )
        return Response({"changed": changed})
