from django.urls import path

from curation.review import api, example_api, example_views, views

urlpatterns = [
    path("p/<slug:slug>/drafts/", views.review_queue, name="review_queue"),
    path("p/<slug:slug>/drafts/rank/", views.drafts_rank, name="review_rank"),
    path("p/<slug:slug>/drafts/<int:example_id>/decide/", views.draft_decide, name="review_decide"),
    path("p/<slug:slug>/review/examples/", example_views.example_review_queue, name="example_review_queue"),
    path(
        "p/<slug:slug>/review/examples/<int:example_id>/decide/",
        example_views.example_review_decide,
        name="example_review_decide",
    ),
    path("p/<slug:slug>/preferences/", views.preference_list, name="preference_list"),
    path("p/<slug:slug>/preferences/export/", views.preference_export, name="preference_export"),
]

api_urlpatterns = [
    path("projects/<slug:slug>/drafts/", api.DraftList.as_view(), name="api_drafts"),
    path("projects/<slug:slug>/drafts/rank/", api.DraftRank.as_view(), name="api_drafts_rank"),
    path("projects/<slug:slug>/drafts/<int:example_id>/", api.DraftDetail.as_view(), name="api_draft"),
    path(
        "projects/<slug:slug>/drafts/<int:example_id>/decide/",
        api.DraftDecide.as_view(),
        name="api_draft_decide",
    ),
    path(
        "projects/<slug:slug>/review/examples/",
        example_api.ExampleReviewQueue.as_view(),
        name="api_example_review",
    ),
    path(
        "projects/<slug:slug>/preference-pairs/",
        api.PreferenceList.as_view(),
        name="api_preference_pairs",
    ),
    path(
        "projects/<slug:slug>/preference-pairs/export/",
        api.PreferenceExport.as_view(),
        name="api_preference_export",
    ),
]
