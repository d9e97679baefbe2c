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

from django.db import transaction
from django.db.models import QuerySet, prefetch_related_objects
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from curation import serializers_generation as s
from curation.api import ProjectAPIView
from curation.generation import ConfigError, jobs, review, synthetic, templates
from curation.models import Draft, GenerationJob, PreferencePair, Project, PromptTemplate
from curation.permissions import Action

DECISION_FILTERS = [*Draft.Decision.values, "all"]


def _bad(field: str, message: str) -> Response:
    return Response({field: [message]}, status=status.HTTP_400_BAD_REQUEST)


def _conflict(message: str) -> Response:
    return Response({"detail": message}, status=status.HTTP_409_CONFLICT)


class GenerationAPIView(ProjectAPIView):
    project_action = Action.REVIEW

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ConfigError):
            # The backend's fields are the request's own "connection" and "run".
            return _bad(exc.field.removeprefix("backend_"), exc.message)
        if isinstance(exc, review.ReviewConflict):
            return _conflict(exc.message)
        return super().handle_exception(exc)

    def get_job(self, job_id: int) -> GenerationJob:
        return get_object_or_404(
            GenerationJob.objects.select_related("template", "created_by"), pk=job_id, project=self.project
        )

    def job_data(self, job: GenerationJob) -> dict[str, Any]:
        """The job with its errors and stats, read again after a service changed it."""
        job = self.get_job(job.pk)
        return s.JobDetailSerializer(job, context={"stats": review.job_stats(self.project)}).data


# --- templates ---------------------------------------------------------------------------


class TemplateList(GenerationAPIView):
    @extend_schema(responses=s.TemplateSerializer(many=True), description="The newest version of each template.")
    def get(self, request: Request, slug: str) -> Response:
        current = templates.templates_current(self.project)
        prefetch_related_objects(current, "created_by")
        return Response(s.TemplateSerializer(current, many=True).data)

    @extend_schema(
        request=s.TemplateInputSerializer,
        responses={201: s.TemplateSerializer, 200: s.TemplateSerializer},
        description="Save a template. A changed text or few-shot count makes a new version (201); saving what "
        "the newest version already holds changes nothing and returns it (200). Jobs keep the version they used.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = s.TemplateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        before = (
            PromptTemplate.objects.filter(project=self.project, name=d["name"].strip()).order_by("-version").first()
        )
        saved = templates.template_save(
            project=self.project, user=request.user, name=d["name"], text=d["text"], few_shot=d["few_shot"]
        )
        created = before is None or saved.pk != before.pk
        return Response(
            s.TemplateSerializer(saved).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class TemplateDetail(GenerationAPIView):
    @extend_schema(
        responses=s.TemplateDetailSerializer,
        description="One template version, every version of its name, and how this version's drafts were reviewed.",
    )
    def get(self, request: Request, slug: str, template_id: int) -> Response:
        template = get_object_or_404(
            PromptTemplate.objects.select_related("created_by"), pk=template_id, project=self.project
        )
        versions = (
            PromptTemplate.objects.filter(project=self.project, name=template.name)
            .select_related("created_by")
            .order_by("-version")
        )
        stats = next((st for t, st in review.template_stats(self.project) if t.pk == template.pk), review.Stats())
        context = {"versions": versions, "stats": stats.as_dict()}
        return Response(s.TemplateDetailSerializer(template, context=context).data)


# --- jobs --------------------------------------------------------------------------------


class JobList(GenerationAPIView, generics.GenericAPIView):
    serializer_class = s.JobSerializer

    @extend_schema(responses=s.JobSerializer(many=True), description="Synthetic and augmentation jobs, newest first.")
    def get(self, request: Request, slug: str) -> Response:
        found = self.project.generation_jobs.select_related("template", "created_by").order_by("-id")
        page = self.paginate_queryset(found)
        context = {"stats": review.job_stats(self.project)}
        return self.get_paginated_response(s.JobSerializer(page, many=True, context=context).data)

    @extend_schema(
        request=s.JobInputSerializer,
        responses={202: s.JobDetailSerializer},
        description="Start a synthetic job in the background; poll the job. A setting that cannot work is "
        "refused with 400 naming it. The model is `connection` (the id or name of one of the project's "
        "connections, the embedded model when left out) or `run` (a finished training run of this project); "
        "an address, model path or key name is refused with 400: an admin defines connections.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = s.JobInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        settings = dict(data.validated_data)
        template_id = settings.pop("template", None)
        connection, run = settings.pop("connection", ""), settings.pop("run", None)
        backend = {"kind": "tuned", "run": run} if run is not None else {"connection": connection}
        with transaction.atomic():
            if template_id is None:
                template = templates.template_default(self.project, request.user)
            else:
                template = PromptTemplate.objects.filter(project=self.project, pk=template_id).first()
                if template is None:
                    return _bad("template", _("There is no template %(id)s in this project.") % {"id": template_id})
            job = synthetic.synthetic_start(
                project=self.project, user=request.user, template=template, backend=backend, **settings
            )
        return Response(self.job_data(job), status=status.HTTP_202_ACCEPTED)


class JobDetail(GenerationAPIView):
    @extend_schema(responses=s.JobDetailSerializer)
    def get(self, request: Request, slug: str, job_id: int) -> Response:
        return Response(self.job_data(self.get_job(job_id)))


class JobCancel(GenerationAPIView):
    @extend_schema(
        request=None,
        responses={202: s.JobDetailSerializer, 409: s.ConflictDetailSerializer},
        description="Stop the job before its next batch; the drafts it made stay. 409 when it has finished.",
    )
    def post(self, request: Request, slug: str, job_id: int) -> Response:
        job = self.get_job(job_id)
        if job.finished:
            return _conflict(_("The job has already finished."))
        jobs.generation_job_cancel(job=job)
        return Response(self.job_data(job), status=status.HTTP_202_ACCEPTED)


class JobResume(GenerationAPIView):
    @extend_schema(
        request=None,
        responses={202: s.JobDetailSerializer, 409: s.ConflictDetailSerializer},
        description="Run an interrupted, failed or cancelled job again: it makes only the drafts it lacks. "
        "409 for a job that is queued, running or done.",
    )
    def post(self, request: Request, slug: str, job_id: int) -> Response:
        job = self.get_job(job_id)
        try:
            job = jobs.generation_job_resume(job=job)
        except ConfigError as error:
            return _conflict(error.message)
        return Response(self.job_data(job), status=status.HTTP_202_ACCEPTED)


class Stats(GenerationAPIView):
    @extend_schema(
        responses=s.GenerationStatsSerializer,
        description="Acceptance rate, mean edit distance and rejection reasons per job and per template version.",
    )
    def get(self, request: Request, slug: str) -> Response:
        by_job = review.job_stats(self.project)
        rows = [
            {
                "id": job.pk,
                "kind": job.kind,
                "template": job.template,
                "stats": (by_job.get(job.pk) or review.Stats()).as_dict(),
            }
            for job in self.project.generation_jobs.select_related("template").order_by("-id")
        ]
        per_template = [
            {"id": t.pk, "name": t.name, "version": t.version, "stats": st.as_dict()}
            for t, st in review.template_stats(self.project)
        ]
        return Response(s.GenerationStatsSerializer({"jobs": rows, "templates": per_template}).data)


# --- drafts ------------------------------------------------------------------------------


def drafts_of(project: Project) -> QuerySet[Draft]:
    return Draft.objects.filter(project=project).select_related(
        "example", "example__label", "job", "template", "reviewed_by"
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
            return _bad("decision", _("Choose one of %(values)s.") % {"values": ", ".join(DECISION_FILTERS)})
        if decision != "all":
            found = found.filter(decision=decision)
        job = request.query_params.get("job")
        if job:
            if not job.isdigit():
                return _bad("job", _("Give a job id (a number)."))
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
        request=s.RankSerializer,
        responses={200: s.RankResultSerializer, 409: s.ConflictDetailSerializer},
        description="Rank every open candidate of one prompt, best first. The best becomes an approved "
        "example, the others are set aside, and every pair of places becomes a preference pair.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = s.RankSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        best = review.drafts_rank(
            project=self.project, user=request.user, order=d["order"], versions=d["versions"], note=d["note"]
        )
        pairs = PreferencePair.objects.filter(
            project=self.project, origin=PreferencePair.Origin.RANKING, job_id=best.job_id, example_id__in=d["order"]
        ).count()
        return Response({"best": draft_data([self.get_draft(best.example_id)])[0], "pairs": pairs})


# --- preference pairs --------------------------------------------------------------------


class PreferenceList(GenerationAPIView, generics.GenericAPIView):
    project_action = Action.EXPORT
    serializer_class = s.PreferencePairSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("origin", str, enum=PreferencePair.Origin.values, description="Only these pairs.")
        ],
        responses=s.PreferencePairSerializer(many=True),
        description="Preference pairs made by edits and rankings, oldest first.",
    )
    def get(self, request: Request, slug: str) -> Response:
        found = PreferencePair.objects.filter(project=self.project).select_related("created_by").order_by("id")
        origin = request.query_params.get("origin")
        if origin:
            if origin not in PreferencePair.Origin.values:
                return _bad(
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
                "assistant message each; standard: plain strings.",
            )
        ],
        responses={(200, "application/jsonl"): OpenApiTypes.STR},
        description="Every preference pair as JSON Lines that TRL's DPOTrainer reads.",
    )
    def get(self, request: Request, slug: str) -> Response | StreamingHttpResponse:
        chosen = request.query_params.get("format") or "conversational"
        if chosen not in review.PAIR_FORMATS:
            return _bad("format", _("Choose one of %(formats)s.") % {"formats": ", ".join(review.PAIR_FORMATS)})
        response = StreamingHttpResponse(
            review.preferences_jsonl(self.project, format=chosen), content_type="application/jsonl; charset=utf-8"
        )
        response["Content-Disposition"] = content_disposition_header(True, f"{self.project.slug}-preferences.jsonl")
        return response
