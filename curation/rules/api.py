"""The weak-supervision API: labeling rules, their runs, and the weak labels they give.

Only project admins work with rules (Action.MANAGE_RULES), reading included. Everything
is written by curation/rules/services.py; a RuleError it raises becomes a 400 naming the
field, in the same shape as the rest of the API ({field: [message]}).
"""

from __future__ import annotations

from typing import Any

from django.db.models import JSONField, OuterRef, QuerySet, Subquery
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core.api import ProjectAPIView
from curation.core.permissions import Action
from curation.models import LabelingRule, Project, RuleRevision, RuleRun
from curation.rules import serializers as s
from curation.rules import services, tasks


def rules_of(project: Project) -> QuerySet[LabelingRule]:
    """The project's rules with the stats of their current version, in one query."""
    current = RuleRevision.objects.filter(rule=OuterRef("pk"), version=OuterRef("version")).values("stats")[:1]
    return (
        project.rules.select_related("label", "created_by", "updated_by")
        .annotate(current_stats=Subquery(current, output_field=JSONField()))
        .order_by("id")
    )


def _sample_item(item: dict[str, Any]) -> dict[str, Any]:
    """The service's highlighted parts as the text and [start, end) offsets of the matches."""
    pieces: list[str] = []
    matches: list[list[int]] = []
    cursor = 0
    for piece, matched in item["parts"]:
        if matched:
            matches.append([cursor, cursor + len(piece)])
        pieces.append(piece)
        cursor += len(piece)
    return {"id": item["id"], "gold": item["gold"], "text": "".join(pieces), "matches": matches}


class RulesAPIView(ProjectAPIView):
    project_action = Action.MANAGE_RULES

    def get_rule(self, rule_id: int) -> LabelingRule:
        """A rule of this project, or 404: an id from another project is never found."""
        return get_object_or_404(rules_of(self.project), pk=rule_id)

    def get_run(self, run_id: int) -> RuleRun:
        return get_object_or_404(
            RuleRun.objects.select_related("project", "created_by"), pk=run_id, project=self.project
        )

    def rule_data(self, rule: LabelingRule) -> dict[str, Any]:
        """The rule as the API shows it, read again with its current stats."""
        return s.RuleSerializer(rules_of(self.project).get(pk=rule.pk)).data

    def current_data(self, current: LabelingRule) -> dict[str, Any]:
        """A stale rule's current version, for the 409."""
        return self.rule_data(current)


class RuleList(RulesAPIView):
    @extend_schema(responses=s.RuleSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        return Response(s.RuleSerializer(rules_of(self.project), many=True).data)

    @extend_schema(
        request=s.RuleInputSerializer,
        responses={201: s.RuleSerializer},
        description="Create a rule. A wrong parameter is a 400 naming it (for example `pattern`).",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = s.RuleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = services.rule_create(project=self.project, user=request.user, **data.validated_data)
        return Response(self.rule_data(rule), status=status.HTTP_201_CREATED)


class RulePreview(RulesAPIView):
    @extend_schema(
        request=s.RulePreviewInputSerializer,
        responses=s.RulePreviewSerializer,
        description="How a rule as typed does on the project, with a sample of its hits; nothing is saved. "
        "Rules that run a model read only the first examples (`limited`).",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = s.RulePreviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = services.rule_clean(project=self.project, require_name=False, **data.validated_data)
        preview = services.rule_preview(project=self.project, rule=rule)
        body = {
            **preview.stats(),
            "total": preview.total,
            "limited": preview.limited,
            "sample": [_sample_item(item) for item in preview.sample],
        }
        return Response(s.RulePreviewSerializer(body).data)


class RuleDetail(RulesAPIView):
    @extend_schema(responses=s.RuleSerializer)
    def get(self, request: Request, slug: str, rule_id: int) -> Response:
        return Response(s.RuleSerializer(self.get_rule(rule_id)).data)

    @extend_schema(
        request=s.RuleUpdateSerializer,
        responses={200: s.RuleSerializer, 409: s.RuleConflictSerializer},
        description="Send the version you read and the fields to change; each change is a new version. "
        "If someone saved since, the answer is 409 with the current rule under `current`.",
    )
    def patch(self, request: Request, slug: str, rule_id: int) -> Response:
        rule = self.get_rule(rule_id)
        data = s.RuleUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        version = changes.pop("version")
        rule = services.rule_update(rule=rule, user=request.user, version=version, **changes)
        return Response(self.rule_data(rule))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, slug: str, rule_id: int) -> Response:
        services.rule_delete(rule=self.get_rule(rule_id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuleHistory(RulesAPIView):
    @extend_schema(responses=s.RuleRevisionSerializer(many=True), description="Newest version first.")
    def get(self, request: Request, slug: str, rule_id: int) -> Response:
        rule = self.get_rule(rule_id)
        revisions = rule.revisions.select_related("edited_by").order_by("-version")
        return Response(s.RuleRevisionSerializer(revisions, many=True).data)


class RuleRunList(RulesAPIView, generics.GenericAPIView):
    serializer_class = s.RuleRunSerializer

    @extend_schema(responses=s.RuleRunSerializer(many=True), description="Newest first.")
    def get(self, request: Request, slug: str) -> Response:
        runs = self.project.rule_runs.select_related("created_by").order_by("-number")
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses={202: s.RuleRunSerializer},
        description="Apply the active rules to every example as the next rule set version, in the "
        "background. Poll the run until its status is done, failed or interrupted.",
    )
    def post(self, request: Request, slug: str) -> Response:
        run = tasks.rule_run_start(project=self.project, user=request.user)
        run.refresh_from_db()  # the task may already have run (immediate mode)
        return Response(s.RuleRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RuleRunDetail(RulesAPIView):
    @extend_schema(responses=s.RuleRunDetailSerializer)
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        return Response(s.RuleRunDetailSerializer(self.get_run(run_id)).data)


WEAK_LABEL_PARAMS = [
    OpenApiParameter("min_confidence", float, description="Only weak labels with at least this confidence."),
    OpenApiParameter("max_confidence", float, description="Only weak labels with at most this confidence."),
    OpenApiParameter("conflict", bool, description="Only those whose rules disagree (true) or agree (false)."),
    OpenApiParameter(
        "sort", str, enum=["confidence", "-confidence", "example"], description="Least confident first by default."
    ),
]
SORTS = {"confidence": ("confidence", "id"), "-confidence": ("-confidence", "id"), "example": ("example_id",)}


class WeakLabelList(RulesAPIView, generics.GenericAPIView):
    serializer_class = s.WeakLabelSerializer

    @extend_schema(parameters=WEAK_LABEL_PARAMS, responses=s.WeakLabelSerializer(many=True))
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        run = self.get_run(run_id)
        # A plain dict: DRF reads a missing boolean in a QueryDict as false, not as absent.
        filters = s.WeakLabelFiltersSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        found = run.weak_labels.select_related("label").order_by(*SORTS[f["sort"]])
        if "min_confidence" in f:
            found = found.filter(confidence__gte=f["min_confidence"])
        if "max_confidence" in f:
            found = found.filter(confidence__lte=f["max_confidence"])
        if f["conflict"] is not None:
            found = found.filter(conflict=f["conflict"])
        page = self.paginate_queryset(found)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class WeakLabelAccept(RulesAPIView):
    @extend_schema(
        parameters=[OpenApiParameter("threshold", float, required=True)],
        responses=s.AcceptableSerializer,
        description="How many examples accepting at this threshold would label or relabel; nothing is written.",
    )
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        run = self.get_run(run_id)
        data = s.ThresholdSerializer(data=request.query_params.dict())
        data.is_valid(raise_exception=True)
        count = services.weak_labels_acceptable(run=run, threshold=data.validated_data["threshold"])
        return Response({"acceptable": count})

    @extend_schema(
        request=s.ThresholdSerializer,
        responses=s.AcceptedSerializer,
        description="Label the examples nobody labeled with the run's weak labels of at least this "
        "confidence. A person's label is never replaced; each change is an example revision.",
    )
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        run = self.get_run(run_id)
        data = s.ThresholdSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        accepted = services.weak_labels_accept(run=run, user=request.user, threshold=data.validated_data["threshold"])
        return Response({"accepted": accepted})
