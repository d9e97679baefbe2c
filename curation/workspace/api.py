"""The REST API. Every project endpoint is a ProjectAPIView: its ``project_action`` names
what the role must allow (curation/core/permissions.py), per HTTP method where they differ."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core import limits, serializers, services
from curation.core import selectors as core_selectors
from curation.core.api import FILTER_PARAMS, ProjectAPIView, SignedInAPIMixin
from curation.core.permissions import Action, projects_for_user
from curation.models import Example
from curation.workspace import selectors


class ProjectList(SignedInAPIMixin, generics.ListAPIView):
    """Projects you are a member of."""

    serializer_class = serializers.ProjectSerializer
    required_access = "authenticated"

    def get_queryset(self):
        return projects_for_user(self.request.user).order_by("name")


class ProjectDetail(ProjectAPIView):
    project_action = Action.VIEW

    @extend_schema(responses=serializers.ProjectSerializer)
    def get(self, request: Request, slug: str) -> Response:
        return Response(serializers.ProjectSerializer(self.project).data)


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
    project_action = {"GET": Action.VIEW, "POST": Action.EDIT}
    serializer_class = serializers.ExampleSerializer

    def get_queryset(self):
        filters = {name: self.request.query_params.get(name) for name in core_selectors.BROWSE_FILTERS}
        return selectors.example_list(project=self.project, filters=filters)

    @extend_schema(parameters=BROWSE_PARAMS, responses=serializers.ExampleSerializer(many=True))
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
