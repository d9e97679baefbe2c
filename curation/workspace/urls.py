from django.urls import path

from curation.workspace import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("language/", views.language_choose, name="language_choose"),
    path("p/<slug:slug>/", views.project_detail, name="project_detail"),
    path("p/<slug:slug>/examples/", views.example_list, name="example_list"),
    path("p/<slug:slug>/examples/bulk/", views.example_bulk, name="example_bulk"),
    path("p/<slug:slug>/examples/<int:example_id>/", views.example_detail, name="example_detail"),
    path("p/<slug:slug>/examples/<int:example_id>/edit/", views.example_edit, name="example_edit"),
    path("p/<slug:slug>/examples/<int:example_id>/history/", views.example_history, name="example_history"),
    path(
        "p/<slug:slug>/examples/<int:example_id>/tool-arguments/",
        views.tool_arguments_check,
        name="tool_arguments_check",
    ),
    path(
        "p/<slug:slug>/examples/<int:example_id>/revisions/<int:revision_id>/restore/",
        views.revision_restore,
        name="revision_restore",
    ),
]

api_urlpatterns = [
    path("projects/", api.ProjectList.as_view(), name="api_projects"),
    path("projects/<slug:slug>/", api.ProjectDetail.as_view(), name="api_project"),
    path("projects/<slug:slug>/labels/", api.LabelList.as_view(), name="api_labels"),
    path("projects/<slug:slug>/examples/", api.ExampleList.as_view(), name="api_examples"),
    path("projects/<slug:slug>/examples/bulk/", api.ExampleBulk.as_view(), name="api_examples_bulk"),
    path("projects/<slug:slug>/examples/<int:example_id>/", api.ExampleDetail.as_view(), name="api_example"),
    path(
        "projects/<slug:slug>/examples/<int:example_id>/revisions/",
        api.ExampleRevisions.as_view(),
        name="api_example_revisions",
    ),
]
