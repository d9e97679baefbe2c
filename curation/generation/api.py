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
from django.db.models import prefetch_related_objects
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core.api import ProjectAPIView
from curation.core.permissions import Action
from curation.generation import ConfigError, jobs, tasks, templates
from curation.generation import serializers as s
from curation.generation import stats as draft_stats
from curation.models import Draft, GenerationJob, PromptTemplate

DECISION_FILTERS = [*Draft.Decision.values, "all"]


class GenerationAPIView(ProjectAPIView):
    project_action = Action.REVIEW

    def get_job(self, job_id: int) -> GenerationJob:
        return get_object_or_404(
            GenerationJob.objects.select_related("template", "created_by"), pk=job_id, project=self.project
        )

    def job_data(self, job: GenerationJob) -> dict[str, Any]:
        """The job with its errors and stats, read again after a service changed it."""
        job = self.get_job(job.pk)
        return s.JobDetailSerializer(job, context={"stats": draft_stats.job_stats(self.project)}).data


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
        stats = next(
            (st for t, st in draft_stats.template_stats(self.project) if t.pk == template.pk), draft_stats.Stats()
        )
        context = {"versions": versions, "stats": stats.as_dict()}
        return Response(s.TemplateDetailSerializer(template, context=context).data)


class JobList(GenerationAPIView, generics.GenericAPIView):
    serializer_class = s.JobSerializer

    @extend_schema(responses=s.JobSerializer(many=True), description="Synthetic and augmentation jobs, newest first.")
    def get(self, request: Request, slug: str) -> Response:
        found = self.project.generation_jobs.select_related("template", "created_by").order_by("-id")
        page = self.paginate_queryset(found)
        context = {"stats": draft_stats.job_stats(self.project)}
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
                    raise ConfigError(
                        "template", _("There is no template %(id)s in this project.") % {"id": template_id}
                    )
            job = tasks.synthetic_start(
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
            raise ConfigError("status", _("The job has already finished."), status=409)
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
        job = tasks.generation_job_resume(job=job)  # a job that is not stopped: 409
        return Response(self.job_data(job), status=status.HTTP_202_ACCEPTED)


class Stats(GenerationAPIView):
    @extend_schema(
        responses=s.GenerationStatsSerializer,
        description="Acceptance rate, mean edit distance and rejection reasons per job and per template version.",
    )
    def get(self, request: Request, slug: str) -> Response:
        by_job = draft_stats.job_stats(self.project)
        rows = [
            {
                "id": job.pk,
                "kind": job.kind,
                "template": job.template,
                "stats": (by_job.get(job.pk) or draft_stats.Stats()).as_dict(),
            }
            for job in self.project.generation_jobs.select_related("template").order_by("-id")
        ]
        per_template = [
            {"id": t.pk, "name": t.name, "version": t.version, "stats": st.as_dict()}
            for t, st in draft_stats.template_stats(self.project)
        ]
        return Response(s.GenerationStatsSerializer({"jobs": rows, "templates": per_template}).data)
