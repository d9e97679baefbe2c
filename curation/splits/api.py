"""The REST API. Every project endpoint is a ProjectAPIView: its ``project_action`` names
what the role must allow (curation/core/permissions.py), per HTTP method where they differ."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core.api import ProjectAPIView
from curation.core.permissions import Action
from curation.splits import serializers
from curation.splits import services as splits
from curation.splits.splitting import BALANCE_STRATEGIES


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
