"""The REST API. Every project endpoint is a ProjectAPIView: its ``project_action`` names
what the role must allow (curation/permissions.py), per HTTP method where they differ."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from curation import selectors, serializers, services, tasks
from curation.exports import example_export
from curation.forms import EXPORT_FORMATS
from curation.imports import import_job_create
from curation.models import Example, ImportJob
from curation.permissions import Action, project_for_user, projects_for_user


class SignedInAPIMixin:
    """DRF authenticates (session or token) inside the view, so Django's
    LoginRequiredMiddleware must let API requests through to it."""

    @classmethod
    def as_view(cls, **initkwargs: Any):  # type: ignore[override]
        return login_not_required(super().as_view(**initkwargs))  # type: ignore[misc]


class ProjectAPIView(SignedInAPIMixin, APIView):
    project_action: Action | dict[str, Action] = Action.VIEW

    @classmethod
    def action_for(cls, method: str) -> Action:
        if isinstance(cls.project_action, dict):
            if method in ("HEAD", "OPTIONS"):
                method = "GET"
            return cls.project_action.get(method, Action.MANAGE_PROJECT)
        return cls.project_action

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not hasattr(self, request.method.lower()):
            return  # dispatch answers 405, the same for everyone
        self.project, self.role = project_for_user(request.user, kwargs["slug"], self.action_for(request.method))


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


FILTER_PARAMS = [
    OpenApiParameter(name, str, description=f"Only examples with this {name}.") for name in selectors.FILTERS
]


class ExampleList(ProjectAPIView, generics.GenericAPIView):
    project_action = {"GET": Action.VIEW, "POST": Action.EDIT}
    serializer_class = serializers.ExampleSerializer

    def get_queryset(self):
        filters = {name: self.request.query_params.get(name) for name in selectors.FILTERS}
        return selectors.example_list(project=self.project, filters=filters)

    @extend_schema(parameters=FILTER_PARAMS, responses=serializers.ExampleSerializer(many=True))
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
        return get_object_or_404(
            Example.objects.select_related("label", "project"), pk=example_id, project=self.project
        )

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
        try:
            example = services.example_update(example=example, user=request.user, version=version, **changes)
        except services.StaleVersion as stale:
            return Response(
                {"detail": str(stale), "current": serializers.ExampleSerializer(stale.current).data},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(serializers.ExampleSerializer(example).data)

    def delete(self, request: Request, slug: str, example_id: int) -> Response:
        services.example_delete(example=self.get_example(example_id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExampleRevisions(ProjectAPIView):
    project_action = Action.VIEW

    @extend_schema(responses=serializers.RevisionSerializer(many=True))
    def get(self, request: Request, slug: str, example_id: int) -> Response:
        example = get_object_or_404(Example, pk=example_id, project=self.project)
        revisions = example.revisions.select_related("user")
        return Response(serializers.RevisionSerializer(revisions, many=True).data)


class ImportList(ProjectAPIView, generics.GenericAPIView):
    project_action = Action.IMPORT
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    serializer_class = serializers.ImportJobSerializer

    @extend_schema(responses=serializers.ImportJobSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        page = self.paginate_queryset(self.project.import_jobs.all())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": serializers.ImportCreateSerializer},
        responses={202: serializers.ImportJobSerializer},
        description="Upload a file; the import runs in the background. Poll the job: "
        "a file with any bad row imports nothing unless skip_bad_rows is set.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = serializers.ImportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        with transaction.atomic():
            job = import_job_create(
                project=self.project,
                user=request.user,
                fileobj=d["file"],
                filename=d["file"].name,
                format=d["format"],
                options={"encoding": d["encoding"], "mapping": d["mapping"], "skip_bad_rows": d["skip_bad_rows"]},
            )
            transaction.on_commit(lambda: tasks.import_run(job.pk))
        return Response(serializers.ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ImportDetail(ProjectAPIView):
    project_action = Action.IMPORT

    @extend_schema(responses=serializers.ImportJobSerializer)
    def get(self, request: Request, slug: str, job_id: int) -> Response:
        job = get_object_or_404(ImportJob, pk=job_id, project=self.project)
        return Response(serializers.ImportJobSerializer(job).data)


class Export(ProjectAPIView):
    project_action = Action.EXPORT

    @extend_schema(
        parameters=[OpenApiParameter("format", str, required=True, enum=[value for value, _ in EXPORT_FORMATS])]
        + FILTER_PARAMS,
        responses={(200, "application/octet-stream"): bytes},
    )
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        q = request.query_params
        content_type, filename, chunks = example_export(
            project=self.project,
            format=q.get("format", ""),
            **{name: q.get(name) or None for name in selectors.FILTERS},
        )
        response = StreamingHttpResponse(chunks, content_type=content_type)
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response
