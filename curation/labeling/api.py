"""The REST API. Every project endpoint is a ProjectAPIView: its ``project_action`` names
what the role must allow (curation/core/permissions.py), per HTTP method where they differ."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core import selectors, services
from curation.core import serializers as core_serializers
from curation.core.api import ProjectAPIView
from curation.core.permissions import Action
from curation.labeling import serializers
from curation.labeling import services as annotations
from curation.labeling.selectors import agreement_summary
from curation.models import Annotation


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
        except (services.StaleVersion, services.InvalidExample):
            annotations.annotation_save_draft(example=example, user=request.user, **answer)  # their answer is kept
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
    serializer_class = core_serializers.ExampleSerializer

    @extend_schema(responses=core_serializers.ExampleSerializer(many=True))
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
        responses={200: core_serializers.ExampleSerializer, 409: serializers.ConflictSerializer},
        description="Your decision becomes the example's label (and text) and approves it.",
    )
    def post(self, request: Request, slug: str, example_id: int) -> Response:
        example = selectors.example_get(project=self.project, example_id=example_id)
        data = serializers.ResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        example = annotations.disagreement_resolve(example=example, user=request.user, **data.validated_data)
        return Response(core_serializers.ExampleSerializer(example).data)


class Agreement(ProjectAPIView):
    project_action = Action.VIEW

    @extend_schema(responses=serializers.AgreementSerializer)
    def get(self, request: Request, slug: str) -> Response:
        return Response(serializers.AgreementSerializer(agreement_summary(project=self.project)).data)
