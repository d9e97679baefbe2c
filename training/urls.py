from django.urls import path

from training import api, api_evaluation, views, views_judging, views_samples

urlpatterns = [
    path("p/<slug:slug>/runs/", views.run_list, name="run_list"),
    path("p/<slug:slug>/runs/new/", views.run_new, name="run_new"),
    path("p/<slug:slug>/runs/compare/", views.run_compare, name="run_compare"),
    path("p/<slug:slug>/runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("p/<slug:slug>/runs/<int:run_id>/points/", views.run_points, name="run_points"),
    path("p/<slug:slug>/runs/<int:run_id>/action/", views.run_action, name="run_action"),
    path("p/<slug:slug>/runs/<int:run_id>/artifact/", views.run_artifact, name="run_artifact"),
    path(
        "p/<slug:slug>/evaluations/<int:evaluation_id>/samples/",
        views_samples.evaluation_samples,
        name="evaluation_samples",
    ),
    path("p/<slug:slug>/evaluations/compare/", views_samples.evaluation_compare, name="evaluation_compare"),
    path("p/<slug:slug>/runs/<int:run_id>/evaluate/", views_judging.run_evaluate, name="run_evaluate"),
    path("p/<slug:slug>/evaluations/<int:evaluation_id>/", views_judging.evaluation_detail, name="evaluation_detail"),
    path(
        "p/<slug:slug>/evaluations/<int:evaluation_id>/llm-judge/",
        views_judging.evaluation_llm_judge,
        name="evaluation_llm_judge",
    ),
    path("p/<slug:slug>/judge/", views_judging.judge_home, name="judge_home"),
    path("p/<slug:slug>/judge/next/", views_judging.judge_next, name="judge_next"),
    path("p/<slug:slug>/judge/<str:key>/", views_judging.judge_pair, name="judge_pair"),
]

api_urlpatterns = [
    path("projects/<slug:slug>/runs/", api.RunList.as_view(), name="api_runs"),
    path("projects/<slug:slug>/runs/<int:run_id>/", api.RunDetail.as_view(), name="api_run"),
    path("projects/<slug:slug>/runs/<int:run_id>/points/", api.RunPoints.as_view(), name="api_run_points"),
    path("projects/<slug:slug>/runs/<int:run_id>/cancel/", api.RunCancel.as_view(), name="api_run_cancel"),
    path("projects/<slug:slug>/runs/<int:run_id>/resume/", api.RunResume.as_view(), name="api_run_resume"),
    path("projects/<slug:slug>/runs/<int:run_id>/artifact/", api.RunArtifact.as_view(), name="api_run_artifact"),
    path("projects/<slug:slug>/training-options/", api.TrainingOptions.as_view(), name="api_training_options"),
    path(
        "projects/<slug:slug>/runs/<int:run_id>/evaluations/",
        api_evaluation.RunEvaluations.as_view(),
        name="api_run_evaluations",
    ),
    path(
        "projects/<slug:slug>/evaluations/<int:evaluation_id>/",
        api_evaluation.EvaluationDetail.as_view(),
        name="api_evaluation",
    ),
    path(
        "projects/<slug:slug>/evaluations/<int:evaluation_id>/samples/",
        api_evaluation.EvaluationSamples.as_view(),
        name="api_evaluation_samples",
    ),
    path(
        "projects/<slug:slug>/evaluations/<int:evaluation_id>/llm-judge/",
        api_evaluation.EvaluationLLMJudge.as_view(),
        name="api_evaluation_llm_judge",
    ),
    path("projects/<slug:slug>/judging/next/", api_evaluation.JudgeNext.as_view(), name="api_judge_next"),
    path("projects/<slug:slug>/judging/<str:key>/", api_evaluation.JudgePair.as_view(), name="api_judge_pair"),
]
