"""The training API: launch, watch, cancel and resume training runs, read their loss curve
points, download the trained adapter, and the options a launch accepts. Watching needs
membership; launching, cancelling and resuming need the admin role; the download needs the
export permission, as in the browser.

A setting that cannot work is refused with 400 naming it ({field: [message]}), as is an
empty training split (field "split"); a launch the quality gates block answers 409 with each
blocker, and only the leakage gate can be overridden (override_leakage with a reason).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core.api import ProjectAPIView
from curation.core.permissions import Action
from training.engine.config import (
    BOUNDS,
    CHOICES,
    METHODS,
    PRESETS,
    SCHEDULERS,
    ConfigInvalid,
    TrainConfig,
    cuda_available,
)
from training.models import TrainingRun
from training.runs import serializers as s
from training.runs.forms import FIELD_LABELS, LLAMA_MODULES, balance_choices, field_help
from training.runs.services import TrainingRefused, training_run_cancel
from training.runs.tasks import training_run_create, training_run_resume
from training.runs.views import artifact_response, no_artifact_message


class TrainingAPIView(ProjectAPIView):
    def handle_exception(self, exc: Exception) -> Response:
        # The engine's own check (plain Python, not a ServiceError): every bad setting at once.
        if isinstance(exc, ConfigInvalid):
            return Response({k: [v] for k, v in exc.errors.items()}, status=status.HTTP_400_BAD_REQUEST)
        return super().handle_exception(exc)

    def get_run(self, run_id: int) -> TrainingRun:
        return get_object_or_404(TrainingRun.objects.select_related("created_by"), pk=run_id, project=self.project)

    def run_data(self, run_id: int) -> dict[str, Any]:
        """The run read again, after a service changed it."""
        return s.TrainingRunDetailSerializer(self.get_run(run_id)).data


class RunList(TrainingAPIView, generics.GenericAPIView):
    project_action = {"GET": Action.VIEW, "POST": Action.LAUNCH_TRAINING}
    serializer_class = s.TrainingRunSerializer

    @extend_schema(responses=s.TrainingRunSerializer(many=True), description="Training runs, newest first.")
    def get(self, request: Request, slug: str) -> Response:
        runs = TrainingRun.objects.filter(project=self.project).select_related("created_by").order_by("-number")
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(s.TrainingRunSerializer(page, many=True).data)

    @extend_schema(
        request=s.TrainingRunCreateSerializer,
        responses={202: s.TrainingRunDetailSerializer, 409: s.LaunchBlockedSerializer},
        description="Freeze the training and validation splits and queue a run; poll the run. A setting that "
        "cannot work is refused with 400 naming it (every bad setting at once); an empty training split with "
        "400 on `split` (on `approved_only` when it has examples but none approved: approved_only is on by "
        "default); QLoRA on a server without CUDA with 400 on `method`. When a quality gate blocks the "
        "launch the answer is 409 with the blockers; resend with override_leakage and a reason to launch "
        "despite leaks between splits.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = s.TrainingRunCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        run = training_run_create(
            project=self.project,
            user=request.user,
            config=d["config"],
            preset=d["preset"] or None,
            override_leakage=d["override_leakage"],
            override_reason=d["override_reason"],
            approved_only=d["approved_only"],
        )
        return Response(self.run_data(run.pk), status=status.HTTP_202_ACCEPTED)


class RunDetail(TrainingAPIView):
    project_action = Action.VIEW

    @extend_schema(
        responses=s.TrainingRunDetailSerializer,
        description="Everything the run page shows: configuration, snapshot sizes, progress, result, log tail.",
    )
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        return Response(self.run_data(run_id))


class RunPoints(TrainingAPIView):
    project_action = Action.VIEW

    @extend_schema(
        parameters=[OpenApiParameter("after", int, description="Only the points after this step (0: all).")],
        responses=s.TrainingPointsSerializer,
        description="The loss curve: one point per optimiser step, with the validation loss on evaluation "
        "steps. Poll with the last step you have until `finished`.",
    )
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        run = self.get_run(run_id)
        try:
            after = s.parse_after(request.query_params.get("after"))
        except ValueError as error:
            return Response({"after": [str(error)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(s.points_payload(run, after))


class RunCancel(TrainingAPIView):
    project_action = Action.LAUNCH_TRAINING

    @extend_schema(
        request=None,
        responses={202: s.TrainingRunDetailSerializer, 409: s.TrainingConflictSerializer},
        description="Stop the run after its current step (a queued run never starts); its last checkpoint "
        "is kept for resume. 409 when the run has already ended.",
    )
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        run = self.get_run(run_id)
        if run.finished:
            raise TrainingRefused("status", _("This run has already ended."), status=409)
        training_run_cancel(run=run)
        return Response(self.run_data(run.pk), status=status.HTTP_202_ACCEPTED)


class RunResume(TrainingAPIView):
    project_action = Action.LAUNCH_TRAINING

    @extend_schema(
        request=None,
        responses={202: s.TrainingRunDetailSerializer, 409: s.TrainingConflictSerializer},
        description="Continue a cancelled, failed or interrupted run from its last checkpoint, with the same "
        "settings and frozen data. 409 when the run cannot be resumed (running, done, or no checkpoint).",
    )
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        run = self.get_run(run_id)
        training_run_resume(run=run)  # a run that cannot be resumed: 409
        return Response(self.run_data(run.pk), status=status.HTTP_202_ACCEPTED)


class RunArtifact(TrainingAPIView):
    project_action = Action.EXPORT

    @extend_schema(
        responses={(200, "application/zip"): OpenApiTypes.BINARY, 404: s.TrainingConflictSerializer},
        description="The trained adapter (or full weights), its tokenizer and shikomi_run.json as a zip. "
        "404 while the run has no output (only a finished run has one).",
    )
    def get(self, request: Request, slug: str, run_id: int) -> Response | HttpResponse:
        run = self.get_run(run_id)
        response = artifact_response(run, self.project)
        if response is None:
            return Response({"detail": no_artifact_message()}, status=status.HTTP_404_NOT_FOUND)
        return response


class TrainingOptions(TrainingAPIView):
    project_action = Action.VIEW

    @extend_schema(
        responses=s.TrainingOptionsSerializer,
        description="What a launch accepts: methods, presets, every setting with its default, bounds and help, "
        "and whether this server has CUDA (QLoRA is refused without it).",
    )
    def get(self, request: Request, slug: str) -> Response:
        defaults = TrainConfig()
        settings = []
        for f in fields(TrainConfig):
            bound = BOUNDS.get(f.name)
            settings.append(
                {
                    "name": f.name,
                    "label": FIELD_LABELS[f.name],
                    "default": getattr(defaults, f.name),
                    "low": bound.low if bound else None,
                    "high": bound.high if bound else None,
                    "help": field_help(f.name),
                    "choices": [{"key": k, "label": v} for k, v in CHOICES[f.name].items()]
                    if isinstance(CHOICES.get(f.name), dict)
                    else [],
                }
            )
        data = {
            "methods": [{"key": key, "label": label} for key, label in METHODS.items()],
            "presets": [{"key": key, "label": label, "values": values} for key, (label, values) in PRESETS.items()],
            "fields": settings,
            "schedulers": list(SCHEDULERS),
            "balance": [{"key": key, "label": label} for key, label in balance_choices()],
            "target_modules": list(LLAMA_MODULES),
            "cuda": cuda_available(),
        }
        return Response(s.TrainingOptionsSerializer(data).data)
