from django.urls import path

from training.runs import api, views

urlpatterns = [
    path("p/<slug:slug>/runs/", views.run_list, name="run_list"),
    path("p/<slug:slug>/runs/new/", views.run_new, name="run_new"),
    path("p/<slug:slug>/runs/compare/", views.run_compare, name="run_compare"),
    path("p/<slug:slug>/runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("p/<slug:slug>/runs/<int:run_id>/points/", views.run_points, name="run_points"),
    path("p/<slug:slug>/runs/<int:run_id>/action/", views.run_action, name="run_action"),
    path("p/<slug:slug>/runs/<int:run_id>/artifact/", views.run_artifact, name="run_artifact"),
]

api_urlpatterns = [
    path("projects/<slug:slug>/runs/", api.RunList.as_view(), name="api_runs"),
    path("projects/<slug:slug>/runs/<int:run_id>/", api.RunDetail.as_view(), name="api_run"),
    path("projects/<slug:slug>/runs/<int:run_id>/points/", api.RunPoints.as_view(), name="api_run_points"),
    path("projects/<slug:slug>/runs/<int:run_id>/cancel/", api.RunCancel.as_view(), name="api_run_cancel"),
    path("projects/<slug:slug>/runs/<int:run_id>/resume/", api.RunResume.as_view(), name="api_run_resume"),
    path("projects/<slug:slug>/runs/<int:run_id>/artifact/", api.RunArtifact.as_view(), name="api_run_artifact"),
    path("projects/<slug:slug>/training-options/", api.TrainingOptions.as_view(), name="api_training_options"),
]
