from django.urls import path

from curation.labeling import api, views

urlpatterns = [
    path("p/<slug:slug>/label/", views.label_queue, name="label_queue"),
    path("p/<slug:slug>/label/undo/", views.label_undo, name="label_undo"),
    path("p/<slug:slug>/label/<int:example_id>/draft/", views.label_draft, name="label_draft"),
    path("p/<slug:slug>/label/<int:example_id>/submit/", views.label_submit, name="label_submit"),
    path("p/<slug:slug>/label/<int:example_id>/skip/", views.label_skip, name="label_skip"),
    path("p/<slug:slug>/disagreements/", views.disagreement_list, name="disagreement_list"),
    path(
        "p/<slug:slug>/disagreements/<int:example_id>/",
        views.disagreement_detail,
        name="disagreement_detail",
    ),
]

api_urlpatterns = [
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
    path("projects/<slug:slug>/queue/", api.Queue.as_view(), name="api_queue"),
    path("projects/<slug:slug>/queue/undo/", api.QueueUndo.as_view(), name="api_queue_undo"),
    path("projects/<slug:slug>/disagreements/", api.DisagreementList.as_view(), name="api_disagreements"),
    path(
        "projects/<slug:slug>/disagreements/<int:example_id>/resolve/",
        api.DisagreementResolve.as_view(),
        name="api_disagreement_resolve",
    ),
    path("projects/<slug:slug>/agreement/", api.Agreement.as_view(), name="api_agreement"),
]
