from django.urls import path

from training.evaluation import api, views

urlpatterns = [
    path(
        "p/<slug:slug>/evaluations/<int:evaluation_id>/samples/",
        views.evaluation_samples,
        name="evaluation_samples",
    ),
    path("p/<slug:slug>/evaluations/compare/", views.evaluation_compare, name="evaluation_compare"),
    path("p/<slug:slug>/runs/<int:run_id>/evaluate/", views.run_evaluate, name="run_evaluate"),
    path("p/<slug:slug>/runs/<int:run_id>/evaluations/", views.run_evaluations, name="run_evaluations"),
    path("p/<slug:slug>/evaluations/<int:evaluation_id>/", views.evaluation_detail, name="evaluation_detail"),
    path(
        "p/<slug:slug>/evaluations/<int:evaluation_id>/llm-judge/",
        views.evaluation_llm_judge,
        name="evaluation_llm_judge",
    ),
    path("p/<slug:slug>/judge/", views.judge_home, name="judge_home"),
    path("p/<slug:slug>/judge/next/", views.judge_next, name="judge_next"),
    path("p/<slug:slug>/judge/<str:key>/", views.judge_pair, name="judge_pair"),
]

api_urlpatterns = [
    path(
        "projects/<slug:slug>/runs/<int:run_id>/evaluations/",
        api.RunEvaluations.as_view(),
        name="api_run_evaluations",
    ),
    path(
        "projects/<slug:slug>/evaluations/<int:evaluation_id>/",
        api.EvaluationDetail.as_view(),
        name="api_evaluation",
    ),
    path(
        "projects/<slug:slug>/evaluations/<int:evaluation_id>/samples/",
        api.EvaluationSamples.as_view(),
        name="api_evaluation_samples",
    ),
    path(
        "projects/<slug:slug>/evaluations/<int:evaluation_id>/llm-judge/",
        api.EvaluationLLMJudge.as_view(),
        name="api_evaluation_llm_judge",
    ),
    path("projects/<slug:slug>/judging/next/", api.JudgeNext.as_view(), name="api_judge_next"),
    path("projects/<slug:slug>/judging/<str:key>/", api.JudgePair.as_view(), name="api_judge_pair"),
]
