"""The evaluation API: start an evaluation of a finished run, read its metrics, samples and
judging results, judge pairs blind, and ask an LLM judge.

A pair to judge is addressed by its random key and sent as A and B: nothing in the request or
the answer names the models (the server decides the sides, as on the judging page).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core.permissions import Action
from training.evaluation import serializers as s
from training.evaluation.judging import (
    CRITERIA,
    finished_evaluation,
    judgeable,
    judgment_save,
    my_judgment,
    next_comparison,
    sides,
)
from training.evaluation.tasks import evaluation_start, judge_job_start
from training.models import Comparison, EvalSample, Evaluation
from training.runs.api import TrainingAPIView


class EvaluationAPIView(TrainingAPIView):
    def get_evaluation(self, evaluation_id: int) -> Evaluation:
        return get_object_or_404(Evaluation.objects.select_related("run"), pk=evaluation_id, run__project=self.project)


class RunEvaluations(EvaluationAPIView, generics.GenericAPIView):
    project_action = {"GET": Action.VIEW, "POST": Action.LAUNCH_TRAINING}
    serializer_class = s.EvaluationSerializer

    @extend_schema(responses=s.EvaluationSerializer(many=True), description="The run's evaluations, newest first.")
    def get(self, request: Request, slug: str, run_id: int) -> Response:
        run = self.get_run(run_id)
        page = self.paginate_queryset(run.evaluations.select_related("run").order_by("-pk"))
        return self.get_paginated_response(s.EvaluationSerializer(page, many=True).data)

    @extend_schema(
        request=s.EvaluationStartSerializer,
        responses={202: s.EvaluationSerializer},
        description="Evaluate the finished run on the test split (base, few-shot base and tuned answers). "
        "Refused with 400 on `run` (not finished), `split` (empty test split) or `leak` (test examples the run "
        "trained on, named by id).",
    )
    def post(self, request: Request, slug: str, run_id: int) -> Response:
        data = s.EvaluationStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        evaluation = evaluation_start(run=self.get_run(run_id), user=request.user, **data.validated_data)
        return Response(s.EvaluationSerializer(evaluation).data, status=status.HTTP_202_ACCEPTED)


class EvaluationDetail(EvaluationAPIView):
    project_action = Action.VIEW

    @extend_schema(
        responses=s.EvaluationDetailSerializer,
        description="Metrics per system (base, few_shot, tuned) overall, by label and by source, and the "
        "results of the blind judgments (win rates with 95% intervals, verdicts, position bias, rubric, "
        "agreement; the LLM judge's apart).",
    )
    def get(self, request: Request, slug: str, evaluation_id: int) -> Response:
        return Response(s.EvaluationDetailSerializer(self.get_evaluation(evaluation_id)).data)


class EvaluationSamples(EvaluationAPIView, generics.GenericAPIView):
    project_action = Action.VIEW
    serializer_class = s.EvalSampleSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("label", str, description="Only samples with this label."),
            OpenApiParameter("source", str, description="Only samples from this source."),
        ],
        responses=s.EvalSampleSerializer(many=True),
        description="Every test example with the three answers and their per-sample metrics.",
    )
    def get(self, request: Request, slug: str, evaluation_id: int) -> Response:
        samples = EvalSample.objects.filter(evaluation=self.get_evaluation(evaluation_id)).order_by("pk")
        for name in ("label", "source"):
            if name in request.query_params:
                samples = samples.filter(**{name: request.query_params[name]})
        page = self.paginate_queryset(samples)
        return self.get_paginated_response(s.EvalSampleSerializer(page, many=True).data)


def _pair_data(comparison: Comparison, user) -> dict:
    a, b, _left = sides(comparison, str(user.pk))
    return {
        "key": comparison.key,
        "prompt": comparison.sample.prompt,
        "context": comparison.sample.context,
        "reference": comparison.sample.reference,
        "a": a,
        "b": b,
        "criteria": {key: str(name) for key, name in CRITERIA.items()},
        "mine": my_judgment(comparison, user),
    }


class JudgeNext(EvaluationAPIView):
    project_action = Action.REVIEW

    @extend_schema(
        parameters=[OpenApiParameter("evaluation", int, description="Keep to one evaluation.")],
        responses={200: s.PairSerializer, 204: None},
        description="The next pair you have not judged (204 when there is none).",
    )
    def get(self, request: Request, slug: str) -> Response:
        raw = request.query_params.get("evaluation", "")
        evaluation = finished_evaluation(self.project, raw) if raw else None  # JudgingError: 400
        comparison = next_comparison(self.project, request.user, evaluation)
        if comparison is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_pair_data(comparison, request.user))


class JudgePair(EvaluationAPIView):
    project_action = Action.REVIEW

    def get_comparison(self, key: str) -> Comparison:
        return get_object_or_404(judgeable(self.project).select_related("sample", "evaluation"), key=key)

    @extend_schema(responses=s.PairSerializer, description="A pair as you see it: A and B.")
    def get(self, request: Request, slug: str, key: str) -> Response:
        return Response(_pair_data(self.get_comparison(key), request.user))

    @extend_schema(
        request=s.JudgmentInSerializer,
        responses={200: s.PairSerializer},
        description="Judge the pair: choice a, b or tie; optional rubric scores 1-5 per criterion and side "
        "({criterion: {a, b}}); a note. Saving again replaces your earlier judgment.",
    )
    def post(self, request: Request, slug: str, key: str) -> Response:
        comparison = self.get_comparison(key)
        data = s.JudgmentInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        judgment_save(comparison=comparison, user=request.user, **data.validated_data)
        return Response(_pair_data(comparison, request.user))


class EvaluationLLMJudge(EvaluationAPIView):
    project_action = {"GET": Action.VIEW, "POST": Action.REVIEW}

    @extend_schema(responses=s.JudgeJobSerializer(many=True), description="LLM judge jobs of this evaluation.")
    def get(self, request: Request, slug: str, evaluation_id: int) -> Response:
        jobs = self.get_evaluation(evaluation_id).judge_jobs.all()
        return Response(s.JudgeJobSerializer(jobs, many=True).data)

    @extend_schema(
        request=s.JudgeJobStartSerializer,
        responses={202: s.JudgeJobSerializer},
        description="Ask a model behind an OpenAI-compatible server to judge the pairs (stored apart from the "
        "people's judgments). Name one of the project's OpenAI-compatible connections by id or name; an address, "
        "model or key name is refused with 400 (an admin defines connections).",
    )
    def post(self, request: Request, slug: str, evaluation_id: int) -> Response:
        data = s.JudgeJobStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = judge_job_start(
            evaluation=self.get_evaluation(evaluation_id),
            user=request.user,
            backend={"connection": data.validated_data["connection"]},
        )
        return Response(s.JudgeJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
