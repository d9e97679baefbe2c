"""The sources API: admins define sources (manage_project) and import from them (import); an
import answers with the import job, polled at /api/projects/<slug>/imports/<id>/ as a file's."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core.api import ProjectAPIView
from curation.core.permissions import Action
from curation.io.serializers import ImportJobSerializer
from curation.models import Source
from curation.sources import selectors, tasks
from curation.sources.serializers import (
    SourceImportSerializer,
    SourceInputSerializer,
    SourcePreviewSerializer,
    SourceSerializer,
)
from curation.sources.services import source_create, source_delete, source_update


class SourceList(ProjectAPIView):
    project_action = {"GET": Action.IMPORT, "POST": Action.MANAGE_PROJECT}

    @extend_schema(responses=SourceSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        return Response(SourceSerializer(selectors.sources_for(self.project), many=True).data)

    @extend_schema(request=SourceInputSerializer, responses={201: SourceSerializer})
    def post(self, request: Request, slug: str) -> Response:
        data = SourceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source = source_create(project=self.project, user=request.user, **data.fields_for())
        return Response(SourceSerializer(source).data, status=status.HTTP_201_CREATED)


class SourceDetail(ProjectAPIView):
    project_action = {"GET": Action.IMPORT, "PATCH": Action.MANAGE_PROJECT, "DELETE": Action.MANAGE_PROJECT}

    def source(self, source_id: int) -> Source:
        return get_object_or_404(Source, pk=source_id, project=self.project)

    @extend_schema(responses=SourceSerializer)
    def get(self, request: Request, slug: str, source_id: int) -> Response:
        return Response(SourceSerializer(self.source(source_id)).data)

    @extend_schema(request=SourceInputSerializer, responses=SourceSerializer)
    def patch(self, request: Request, slug: str, source_id: int) -> Response:
        source = self.source(source_id)
        data = SourceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source = source_update(source=source, **data.fields_for(source))
        return Response(SourceSerializer(source).data)

    @extend_schema(
        request=None,
        responses={204: None},
        description="Delete a source. Its documents go with it; the examples it imported stay.",
    )
    def delete(self, request: Request, slug: str, source_id: int) -> Response:
        source_delete(source=self.source(source_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SourceImports(ProjectAPIView):
    project_action = Action.IMPORT
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(responses=ImportJobSerializer(many=True))
    def get(self, request: Request, slug: str, source_id: int) -> Response:
        source = get_object_or_404(Source, pk=source_id, project=self.project)
        return Response(ImportJobSerializer(selectors.source_jobs(source), many=True).data)

    @extend_schema(
        request={"multipart/form-data": SourceImportSerializer, "application/json": SourceImportSerializer},
        responses={202: ImportJobSerializer},
        description="Import from the source now (again): rows already present are skipped, changed rows are "
        "reported, or updated with update_changed. Poll the job at /api/projects/<slug>/imports/<id>/.",
    )
    def post(self, request: Request, slug: str, source_id: int) -> Response:
        source = get_object_or_404(Source, pk=source_id, project=self.project)
        data = SourceImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = tasks.source_import_start(source=source, user=request.user, **data.validated_data)
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class SourcePreview(ProjectAPIView):
    project_action = Action.IMPORT

    @extend_schema(responses=SourcePreviewSerializer)
    def get(self, request: Request, slug: str, source_id: int) -> Response:
        """A SQL source's first rows as they would be imported, with their errors."""
        source = get_object_or_404(Source, pk=source_id, project=self.project, kind=Source.Kind.SQL)
        preview = selectors.sql_preview(source)
        rows = [
            {
                "line": row.line,
                "messages": row.messages,
                "label": row.label,
                "errors": [e.as_dict() for e in row.errors],
            }
            for row in preview.rows
        ]
        return Response({"columns": preview.columns, "rows": rows, "error": preview.error})
