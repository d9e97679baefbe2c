from django.urls import path

from curation import api, views, views_history, views_labeling, views_splits

urlpatterns = [
    path("", views.home, name="home"),
    path("language/", views.language_choose, name="language_choose"),
    path("p/<slug:slug>/", views.project_detail, name="project_detail"),
    path("p/<slug:slug>/examples/", views.example_list, name="example_list"),
    path("p/<slug:slug>/examples/bulk/", views.example_bulk, name="example_bulk"),
    path("p/<slug:slug>/examples/<int:example_id>/", views.example_detail, name="example_detail"),
    path("p/<slug:slug>/examples/<int:example_id>/edit/", views.example_edit, name="example_edit"),
    path("p/<slug:slug>/examples/<int:example_id>/history/", views_history.example_history, name="example_history"),
    path(
        "p/<slug:slug>/examples/<int:example_id>/revisions/<int:revision_id>/restore/",
        views_history.revision_restore,
        name="revision_restore",
    ),
    path("p/<slug:slug>/splits/", views_splits.splits, name="splits"),
    path("p/<slug:slug>/import/", views.import_upload, name="import_upload"),
    path("p/<slug:slug>/imports/<int:job_id>/", views.import_job, name="import_job"),
    path("p/<slug:slug>/export/", views.export, name="export"),
    path("p/<slug:slug>/label/", views_labeling.label_queue, name="label_queue"),
    path("p/<slug:slug>/label/undo/", views_labeling.label_undo, name="label_undo"),
    path("p/<slug:slug>/label/<int:example_id>/draft/", views_labeling.label_draft, name="label_draft"),
    path("p/<slug:slug>/label/<int:example_id>/submit/", views_labeling.label_submit, name="label_submit"),
    path("p/<slug:slug>/label/<int:example_id>/skip/", views_labeling.label_skip, name="label_skip"),
    path("p/<slug:slug>/disagreements/", views_labeling.disagreement_list, name="disagreement_list"),
    path(
        "p/<slug:slug>/disagreements/<int:example_id>/",
        views_labeling.disagreement_detail,
        name="disagreement_detail",
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
        "projects/<slug:slug>/examples/<int:example_id>/annotation/",
        api.AnnotationSubmit.as_view(),
        name="api_annotation_submit",
    ),
    path(
        "projects/<slug:slug>/examples/<int:example_id>/annotation/draft/",
        api.AnnotationDraft.as_view(),
        name="api_annotation_draft",
    ),
    path(
        "projects/<slug:slug>/examples/<int:example_id>/annotation/skip/",
        api.AnnotationSkip.as_view(),
        name="api_annotation_skip",
    ),
    path(
        "projects/<slug:slug>/examples/<int:example_id>/annotations/",
        api.ExampleAnnotations.as_view(),
        name="api_example_annotations",
    ),
    path(
        "projects/<slug:slug>/examples/<int:example_id>/revisions/",
        api.ExampleRevisions.as_view(),
        name="api_example_revisions",
    ),
    path("projects/<slug:slug>/imports/", api.ImportList.as_view(), name="api_imports"),
    path("projects/<slug:slug>/imports/<int:job_id>/", api.ImportDetail.as_view(), name="api_import"),
    path("projects/<slug:slug>/export/", api.Export.as_view(), name="api_export"),
    path("projects/<slug:slug>/queue/", api.Queue.as_view(), name="api_queue"),
    path("projects/<slug:slug>/queue/undo/", api.QueueUndo.as_view(), name="api_queue_undo"),
    path("projects/<slug:slug>/disagreements/", api.DisagreementList.as_view(), name="api_disagreements"),
    path(
        "projects/<slug:slug>/disagreements/<int:example_id>/resolve/",
        api.DisagreementResolve.as_view(),
        name="api_disagreement_resolve",
    ),
    path("projects/<slug:slug>/agreement/", api.Agreement.as_view(), name="api_agreement"),
    path("projects/<slug:slug>/splits/preview/", api.SplitsPreview.as_view(), name="api_splits_preview"),
    path("projects/<slug:slug>/splits/assign/", api.SplitsAssign.as_view(), name="api_splits_assign"),
    path("projects/<slug:slug>/balance/", api.Balance.as_view(), name="api_balance"),
]
