"""The REST API. Every project endpoint is a ProjectAPIView: its ``project_action`` names
what the role must allow (curation/core/permissions.py), per HTTP method where they differ."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core import selectors
from curation.core.api import FILTER_PARAMS, ProjectAPIView
from curation.core.permissions import Action
from curation.io import hub, serializers, tasks
from curation.io.exports import FORMULAS, SKIPPED_HEADER, example_export, export_preview, skipped_header
from curation.io.forms import EXPORT_FORMATS
from curation.models import ImportJob


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
        "a file with any bad row imports nothing unless skip_bad_rows is set. Takes every option "
        "manage.py import_examples takes; an unknown option, or one the format does not take "
        "(a delimiter for JSON, an encoding for a dataset, a mapping field outside the format), is a 400.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = serializers.ImportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        job = tasks.import_start(
            project=self.project,
            user=request.user,
            fileobj=d["file"],
            filename=d["file"].name,
            format=d["format"],
            options=data.import_options(),
        )
        return Response(serializers.ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ImportDetail(ProjectAPIView):
    project_action = Action.IMPORT

    @extend_schema(responses=serializers.ImportJobSerializer)
    def get(self, request: Request, slug: str, job_id: int) -> Response:
        job = get_object_or_404(ImportJob, pk=job_id, project=self.project)
        return Response(serializers.ImportJobSerializer(job).data)


STATUS_PARAM = OpenApiParameter(
    "status",
    str,
    many=True,
    description="Only examples with these statuses: repeat the parameter or separate them with commas "
    "(draft, needs_review, approved, rejected), or `any` for every status. **Approved only when left out**: "
    "drafts, examples that need review and rejected ones are exported only when named.",
)
SELECTION_PARAMS = [
    OpenApiParameter("format", str, required=True, enum=[value for value, _ in EXPORT_FORMATS]),
    *[p for p in FILTER_PARAMS if p.name != "status"],
    STATUS_PARAM,
]


def _selection(q: Any) -> dict[str, Any]:
    """The export's selection from query parameters; the statuses as a list (repeated or
    separated by commas), none named: the default (approved)."""
    statuses = [part for value in q.getlist("status") for part in value.split(",") if part.strip()]
    return {
        "format": q.get("format", ""),
        "formulas": q.get("formulas") or None,
        "shikomi_fields": serializers.boolean(q, "shikomi_fields"),
        **{name: q.get(name) or None for name in selectors.FILTERS if name != "status"},
        "status": statuses or None,
    }


class Export(ProjectAPIView):
    project_action = Action.EXPORT

    @extend_schema(
        parameters=SELECTION_PARAMS
        + [
            OpenApiParameter(
                "formulas",
                str,
                enum=list(FORMULAS),
                description="CSV and TSV: `escaped` (default) puts a ' before cells that start with = + - @ "
                "(a tab, a CR or a ' too), so a spreadsheet shows them as text; the CSV/TSV import removes it "
                "again. `raw` writes the cells as stored, for programs.",
            ),
            OpenApiParameter(
                "shikomi_fields",
                bool,
                description="Add each example's id, label, split, status and metadata to its record, so that "
                "importing the file gives back the same examples, and where each label came from (`label_source`: "
                "a person, or the rule set version, model and probability of an accepted rule label); an import "
                "ignores it.",
            ),
            OpenApiParameter(
                "per_split",
                bool,
                description="One file per split (those that have examples) in a ZIP archive.",
            ),
            OpenApiParameter(
                "card",
                bool,
                description="Add a data card (README.md in the Hugging Face dataset card format, "
                "docs/datasets.md): the answer is then a ZIP archive of the data file(s) and README.md.",
            ),
            OpenApiParameter(
                SKIPPED_HEADER,
                str,
                location=OpenApiParameter.HEADER,
                response=[200],
                description="The examples the format cannot hold and left out, per reason; absent when none was.",
            ),
        ],
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                bytes,
                description="The file, streamed. Alpaca, prompt/completion and CSV/TSV hold plain turns only "
                "(docs/data-model.md): examples they cannot hold (tool calls, reasoning, turn weights, several "
                f"turns...) are left out, and the `{SKIPPED_HEADER}` header says how many and why, for example "
                "`tool calls (3); several turns (1)` (ASCII; other characters percent-encoded as UTF-8).",
            )
        },
    )
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        q = request.query_params
        export = example_export(
            project=self.project,
            per_split=serializers.boolean(q, "per_split"),
            card=serializers.boolean(q, "card"),
            **_selection(q),
        )
        response = StreamingHttpResponse(export.chunks, content_type=export.content_type)
        response["Content-Disposition"] = content_disposition_header(True, export.filename)
        if export.skipped:
            response[SKIPPED_HEADER] = skipped_header(export.skipped)
        return response


class ExportPreview(ProjectAPIView):
    project_action = Action.EXPORT

    @extend_schema(
        parameters=SELECTION_PARAMS,
        responses={200: None},
        description="What the export with these options would write, before it is written: `counts` (split → "
        "status → examples, the statuses not taken included), `total` (examples the filters take), `written` "
        "(of them, those the format holds), `skipped` (reason → examples the format cannot hold, counted on "
        "the first `skipped_scanned`), `blocked` (why the export would be refused, else empty) and `records` "
        "(the first 5 records as they will be written; null for Parquet).",
    )
    def get(self, request: Request, slug: str) -> Response:
        selection = _selection(request.query_params)
        preview = export_preview(project=self.project, **selection)
        return Response(
            {
                "statuses": preview.statuses,
                "counts": preview.counts,
                "total": preview.total,
                "written": preview.written,
                "skipped": preview.skipped,
                "skipped_scanned": preview.skipped_scanned,
                "blocked": preview.blocked,
                "records": preview.records,
            }
        )


class ExportHub(ProjectAPIView):
    """Admins only: the push sends the project's data off the server."""

    project_action = Action.MANAGE_PROJECT

    @extend_schema(
        request=serializers.HubPushSerializer,
        responses={200: serializers.HubPushResultSerializer},
        description="Export with a data card (README.md) and commit the files to a dataset repository on the "
        "Hugging Face Hub at the operator's address (SHIKOMI_HUB_ENDPOINT), creating the repository when it does "
        "not exist. The token is one of the operator's secrets, named in `secret`. Runs while the request waits; "
        "an export over SHIKOMI_HUB_MAX_BYTES is a 400, a refusal by the Hub a 502 with its status and message.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = serializers.HubPushSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pushed = hub.hub_push(project=self.project, user=request.user, **data.validated_data)
        return Response(serializers.HubPushResultSerializer(pushed).data)
