"""The generation API: prompt templates, synthetic generation jobs, the draft review loop and
the preference pairs it yields. Everything needs the review permission (reviewers and
admins), except reading and exporting preference pairs, which needs the export permission.

The services in curation/generation/ do the work. A ConfigError they raise becomes a 400
naming the field ({field: [message]}); the model is named by "connection" or "run", never
by an address, path or key name. A ReviewConflict (someone
decided first, or the example changed) becomes a 409 with the reason in "detail".
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core.permissions import Action
from curation.generation import ConfigError
from curation.generation import serializers as s
from curation.generation.api import DECISION_FILTERS, GenerationAPIView
from curation.io.exports import SKIPPED_HEADER, skipped_header
from curation.models import Draft, PreferencePair, Project
from curation.review import services as review
from curation.review.serializers import PreferencePairSerializer, RankResultSerializer, RankSerializer


def drafts_of(project: Project) -> QuerySet[Draft]:
    return Draft.objects.filter(project=project).select_related(
        "example", "example__label", "job", "template", "reviewed_by", "document"
    )


def _groups(drafts: list[Draft]) -> dict[tuple[int, str], list[int]]:
    """(job, group) → the example ids of every draft for that prompt, in one query."""
    keys = {(d.job_id, d.group) for d in drafts}
    if not keys:
        return {}
    found: dict[tuple[int, str], list[int]] = {}
    rows = (
        Draft.objects.filter(job_id__in={job for job, _g in keys}, group__in={group for _j, group in keys})
        .order_by("candidate", "id")
        .values_list("job_id", "group", "example_id")
    )
    for job_id, group, example_id in rows:
        if (job_id, group) in keys:
            found.setdefault((job_id, group), []).append(example_id)
    return found


def draft_data(drafts: list[Draft]) -> list[dict[str, Any]]:
    return s.DraftSerializer(drafts, many=True, context={"groups": _groups(drafts)}).data


class DraftAPIView(GenerationAPIView):
    def get_draft(self, example_id: int) -> Draft:
        return get_object_or_404(drafts_of(self.project), example_id=example_id)


class DraftList(DraftAPIView, generics.GenericAPIView):
    serializer_class = s.DraftSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "decision", str, enum=DECISION_FILTERS, description="Drafts with this decision; pending when left out."
            ),
            OpenApiParameter("job", int, description="Only drafts of this generation job."),
        ],
        responses=s.DraftSerializer(many=True),
        description="Drafts in review order, with what the checks found.",
    )
    def get(self, request: Request, slug: str) -> Response:
        found = drafts_of(self.project).order_by("job_id", "id")
        decision = request.query_params.get("decision") or Draft.Decision.PENDING
        if decision not in DECISION_FILTERS:
            raise ConfigError("decision", _("Choose one of %(values)s.") % {"values": ", ".join(DECISION_FILTERS)})
        if decision != "all":
            found = found.filter(decision=decision)
        job = request.query_params.get("job")
        if job:
            if not job.isdigit():
                raise ConfigError("job", _("Give a job id (a number)."))
            found = found.filter(job_id=int(job))
        page = self.paginate_queryset(found)
        return self.get_paginated_response(draft_data(page))


class DraftDetail(DraftAPIView):
    @extend_schema(responses=s.DraftSerializer)
    def get(self, request: Request, slug: str, example_id: int) -> Response:
        return Response(draft_data([self.get_draft(example_id)])[0])


class DraftDecide(DraftAPIView):
    @extend_schema(
        request=s.DecideSerializer,
        responses={200: s.DraftSerializer, 409: s.ConflictDetailSerializer},
        description="Approve the draft (with `messages` to approve your edit: the model's answer and yours "
        "become a preference pair), or reject it with at least one reason. 409 when someone decided it first "
        "or the example changed since `version`; nothing is changed then.",
    )
    def post(self, request: Request, slug: str, example_id: int) -> Response:
        draft = self.get_draft(example_id)
        data = s.DecideSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        if d["action"] == "approve":
            review.draft_approve(
                draft=draft,
                user=request.user,
                version=d["version"],
                messages=d["messages"],
                label=d["label"],
                note=d["note"],
            )
        else:
            review.draft_reject(
                draft=draft, user=request.user, version=d["version"], reasons=d["reasons"], note=d["note"]
            )
        return Response(draft_data([self.get_draft(example_id)])[0])


class DraftRank(DraftAPIView):
    @extend_schema(
        request=RankSerializer,
        responses={200: RankResultSerializer, 409: s.ConflictDetailSerializer},
        description="Rank every open candidate of one prompt, best first. The best becomes an approved "
        "example, the others are set aside, and every pair of places becomes a preference pair. With "
        "`none_good_enough`, the pairs are recorded but no candidate is approved: all are rejected with the "
        "reason none_good_enough.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = RankSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        best = review.drafts_rank(
            project=self.project,
            user=request.user,
            order=d["order"],
            versions=d["versions"],
            note=d["note"],
            none_good_enough=d["none_good_enough"],
        )
        pairs = PreferencePair.objects.filter(
            project=self.project, origin=PreferencePair.Origin.RANKING, job_id=best.job_id, example_id__in=d["order"]
        ).count()
        return Response(
            {
                "best": draft_data([self.get_draft(best.example_id)])[0],
                "approved": best.decision == Draft.Decision.APPROVED,
                "pairs": pairs,
            }
        )


class PreferenceList(GenerationAPIView, generics.GenericAPIView):
    project_action = Action.EXPORT
    serializer_class = PreferencePairSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("origin", str, enum=PreferencePair.Origin.values, description="Only these pairs.")
        ],
        responses=PreferencePairSerializer(many=True),
        description="Preference pairs made by edits and rankings, oldest first.",
    )
    def get(self, request: Request, slug: str) -> Response:
        found = PreferencePair.objects.filter(project=self.project).select_related("created_by").order_by("id")
        origin = request.query_params.get("origin")
        if origin:
            if origin not in PreferencePair.Origin.values:
                raise ConfigError(
                    "origin", _("Choose one of %(values)s.") % {"values": ", ".join(PreferencePair.Origin.values)}
                )
            found = found.filter(origin=origin)
        page = self.paginate_queryset(found)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class PreferenceExport(GenerationAPIView):
    project_action = Action.EXPORT

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=list(review.PAIR_FORMATS),
                description="conversational (the default): prompt as messages, chosen and rejected as one "
                "assistant message each (tool calls and reasoning kept), tools when the pair has some; standard: "
                "plain strings.",
            )
        ],
        responses={(200, "application/jsonl"): OpenApiTypes.STR},
        description="Every preference pair as JSON Lines that TRL's DPOTrainer reads. Pairs the format cannot "
        f"hold (tool calls in plain strings) are left out, and the `{SKIPPED_HEADER}` header says how many and "
        "why.",
    )
    def get(self, request: Request, slug: str) -> Response | StreamingHttpResponse:
        chosen = request.query_params.get("format") or "conversational"
        if chosen not in review.PAIR_FORMATS:
            raise ConfigError("format", _("Choose one of %(formats)s.") % {"formats": ", ".join(review.PAIR_FORMATS)})
        skipped = review.preferences_skipped(self.project, format=chosen)
        response = StreamingHttpResponse(
            review.preferences_jsonl(self.project, format=chosen), content_type="application/jsonl; charset=utf-8"
        )
        response["Content-Disposition"] = content_disposition_header(True, f"{self.project.slug}-preferences.jsonl")
        if skipped:
            response[SKIPPED_HEADER] = skipped_header(skipped)
        return response
