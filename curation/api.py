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

from curation import annotations, limits, selectors, serializers, services, splits, tasks
from curation.dashboard import agreement_summary
from curation.exports import FORMULAS, example_export
from curation.forms import EXPORT_FORMATS
from curation.imports import import_job_create
from curation.models import Annotation, Example, ImportJob
from curation.permissions import Action, project_for_user, projects_for_user
from curation.splitting import BALANCE_STRATEGIES


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
BROWSE_PARAMS = [
    *FILTER_PARAMS,
    OpenApiParameter("q", str, description="Only examples whose text contains every word."),
    OpenApiParameter("annotator", str, description="Only examples this username submitted an answer for."),
    OpenApiParameter("disagreement", bool, description="Only examples whose annotators disagree, unresolved."),
    OpenApiParameter("meta_key", str, description="With meta_value: only examples whose metadata has this value."),
    OpenApiParameter("meta_value", str, description="The value meta_key must have."),
    OpenApiParameter("sort", str, enum=list(selectors.SORTS), description="The order; by id when left out."),
]


def _conflict(stale: services.StaleVersion) -> Response:
    return Response(
        {"detail": str(stale), "current": serializers.ExampleSerializer(stale.current).data},
        status=status.HTTP_409_CONFLICT,
    )


class ExampleList(ProjectAPIView, generics.GenericAPIView):
    project_action = {"GET": Action.VIEW, "POST": Action.EDIT}
    serializer_class = serializers.ExampleSerializer

    def get_queryset(self):
        filters = {name: self.request.query_params.get(name) for name in selectors.BROWSE_FILTERS}
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
        return selectors.example_get(project=self.project, example_id=example_id)

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
            return _conflict(stale)
        return Response(serializers.ExampleSerializer(example).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, slug: str, example_id: int) -> Response:
        services.example_delete(example=self.get_example(example_id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExampleRevisions(ProjectAPIView):
    project_action = Action.VIEW

    @extend_schema(responses=serializers.RevisionSerializer(many=True))
    def get(self, request: Request, slug: str, example_id: int) -> Response:
        example = selectors.example_get(project=self.project, example_id=example_id)
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
        + FILTER_PARAMS
        + [
            OpenApiParameter(
                "formulas",
                str,
                enum=list(FORMULAS),
                description="CSV and TSV: `escaped` (default) puts a ' before cells that start with = + - @ "
                "(a tab, a CR or a ' too), so a spreadsheet shows them as text; the CSV/TSV import removes it "
                "again. `raw` writes the cells as stored, for programs.",
            )
        ],
        responses={(200, "application/octet-stream"): bytes},
    )
    def get(self, request: Request, slug: str) -> StreamingHttpResponse:
        q = request.query_params
        content_type, filename, chunks = example_export(
            project=self.project,
            format=q.get("format", ""),
            formulas=q.get("formulas") or None,
            **{name: q.get(name) or None for name in selectors.FILTERS},
        )
        response = StreamingHttpResponse(chunks, content_type=content_type)
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response


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


class Queue(ProjectAPIView):
    project_action = Action.LABEL

    @extend_schema(
        responses=serializers.QueueSerializer,
        description="The next example waiting for your answer, never one you have answered or "
        "skipped. It is leased to you for ten minutes, so others are handed different examples.",
    )
    def get(self, request: Request, slug: str) -> Response:
        example = annotations.queue_next(project=self.project, user=request.user)
        remaining = annotations.queue_remaining(project=self.project, user=request.user)
        return Response(serializers.QueueSerializer({"example": example, "remaining": remaining}).data)


class QueueUndo(ProjectAPIView):
    project_action = Action.LABEL

    @extend_schema(
        request=None,
        responses=serializers.QueueSerializer,
        description="Reopen your last submitted or skipped answer as a draft and return its example; "
        "`example` is null when there is nothing to undo.",
    )
    def post(self, request: Request, slug: str) -> Response:
        example = annotations.annotation_undo(project=self.project, user=request.user)
        remaining = annotations.queue_remaining(project=self.project, user=request.user)
        return Response(serializers.QueueSerializer({"example": example, "remaining": remaining}).data)


class AnnotationSubmit(ProjectAPIView):
    project_action = Action.LABEL

    @extend_schema(
        request=serializers.AnnotationInputSerializer,
        responses={201: serializers.AnnotationSerializer, 409: serializers.ConflictSerializer},
        description="Submit your answer. If the example changed since `based_on_version`, the answer "
        "is 409 with the current example under `current`; your answer is kept as a draft.",
    )
    def post(self, request: Request, slug: str, example_id: int) -> Response:
        example = selectors.example_get(project=self.project, example_id=example_id)
        data = serializers.AnnotationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answer = dict(data.validated_data)
        try:
            with transaction.atomic():
                annotation = annotations.annotation_submit(example=example, user=request.user, **answer)
        except services.StaleVersion as stale:
            annotations.annotation_save_draft(example=example, user=request.user, **answer)
            return _conflict(stale)
        except services.InvalidExample:
            annotations.annotation_save_draft(example=example, user=request.user, **answer)
            raise
        return Response(serializers.AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)


class AnnotationDraft(ProjectAPIView):
    project_action = Action.LABEL

    @extend_schema(
        request=serializers.AnnotationInputSerializer,
        responses=serializers.AnnotationSerializer,
        description="Autosave what you have so far; nothing is checked beyond its shape, and a "
        "submitted answer is left as it is.",
    )
    def post(self, request: Request, slug: str, example_id: int) -> Response:
        example = selectors.example_get(project=self.project, example_id=example_id)
        data = serializers.AnnotationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        annotation = annotations.annotation_save_draft(example=example, user=request.user, **data.validated_data)
        return Response(serializers.AnnotationSerializer(annotation).data)


class AnnotationSkip(ProjectAPIView):
    project_action = Action.LABEL

    @extend_schema(request=None, responses=serializers.AnnotationSerializer)
    def post(self, request: Request, slug: str, example_id: int) -> Response:
        example = selectors.example_get(project=self.project, example_id=example_id)
        annotation = annotations.annotation_skip(example=example, user=request.user)
        return Response(serializers.AnnotationSerializer(annotation).data)


class ExampleAnnotations(ProjectAPIView):
    project_action = Action.REVIEW

    @extend_schema(responses=serializers.AnnotationSerializer(many=True))
    def get(self, request: Request, slug: str, example_id: int) -> Response:
        example = selectors.example_get(project=self.project, example_id=example_id)
        found = Annotation.objects.filter(example=example).select_related("annotator", "label").order_by("id")
        return Response(serializers.AnnotationSerializer(found, many=True).data)


class DisagreementList(ProjectAPIView, generics.GenericAPIView):
    project_action = Action.REVIEW
    serializer_class = serializers.ExampleSerializer

    @extend_schema(responses=serializers.ExampleSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        found = (
            annotations.disagreement_list(project=self.project)
            .select_related("weak_label__run")
            .defer(*selectors.PROVENANCE_DEFER)
        )
        page = self.paginate_queryset(found)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class DisagreementResolve(ProjectAPIView):
    project_action = Action.REVIEW

    @extend_schema(
        request=serializers.ResolveSerializer,
        responses={200: serializers.ExampleSerializer, 409: serializers.ConflictSerializer},
        description="Your decision becomes the example's label (and text) and approves it.",
    )
    def post(self, request: Request, slug: str, example_id: int) -> Response:
        example = selectors.example_get(project=self.project, example_id=example_id)
        data = serializers.ResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            example = annotations.disagreement_resolve(example=example, user=request.user, **data.validated_data)
        except services.StaleVersion as stale:
            return _conflict(stale)
        return Response(serializers.ExampleSerializer(example).data)


class Agreement(ProjectAPIView):
    project_action = Action.VIEW

    @extend_schema(responses=serializers.AgreementSerializer)
    def get(self, request: Request, slug: str) -> Response:
        return Response(serializers.AgreementSerializer(agreement_summary(project=self.project)).data)


def _split_request(request: Request) -> splits.SplitRequest:
    data = serializers.SplitRequestSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    return splits.SplitRequest(**data.validated_data)


class SplitsPreview(ProjectAPIView):
    project_action = Action.MANAGE_PROJECT

    @extend_schema(
        request=serializers.SplitRequestSerializer,
        responses=serializers.SplitPreviewSerializer,
        description="What assigning would do; nothing is written.",
    )
    def post(self, request: Request, slug: str) -> Response:
        preview = splits.splits_preview(project=self.project, request=_split_request(request))
        return Response(serializers.SplitPreviewSerializer(preview).data)


class SplitsAssign(ProjectAPIView):
    project_action = Action.MANAGE_PROJECT

    @extend_schema(
        request=serializers.SplitRequestSerializer,
        responses=serializers.SplitAssignResultSerializer,
        description="Assign the splits. The settings are saved on the project; the same seed and "
        "settings give the same splits again.",
    )
    def post(self, request: Request, slug: str) -> Response:
        moved = splits.splits_assign(project=self.project, user=request.user, request=_split_request(request))
        return Response({"moved": moved})


class Balance(ProjectAPIView):
    project_action = {"GET": Action.VIEW, "POST": Action.MANAGE_PROJECT}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "strategy", str, enum=list(BALANCE_STRATEGIES), description="The project's strategy when left out."
            )
        ],
        responses=serializers.BalanceSerializer,
        description="What the trainer would see of the train split with this strategy.",
    )
    def get(self, request: Request, slug: str) -> Response:
        strategy = request.query_params.get("strategy") or self.project.balance_strategy
        plan = splits.balance_preview(project=self.project, strategy=strategy)
        labels = sorted(set(plan.before) | set(plan.after), key=lambda k: (k is None, k or ""))
        rows = [
            {
                "label": label,
                "before": plan.before.get(label, 0),
                "after": plan.after.get(label, 0),
                "weight": plan.weights.get(label, 1.0),
            }
            for label in labels
        ]
        return Response(serializers.BalanceSerializer({"strategy": plan.strategy, "labels": rows}).data)

    @extend_schema(request=serializers.BalanceChooseSerializer, responses=serializers.BalanceChooseSerializer)
    def post(self, request: Request, slug: str) -> Response:
        data = serializers.BalanceChooseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        splits.balance_choose(project=self.project, strategy=data.validated_data["strategy"])
        return Response({"strategy": data.validated_data["strategy"]})
