from django.urls import path

from curation.splits import api, views

urlpatterns = [
    path("p/<slug:slug>/splits/", views.splits, name="splits"),
]

api_urlpatterns = [
    path("projects/<slug:slug>/splits/preview/", api.SplitsPreview.as_view(), name="api_splits_preview"),
    path("projects/<slug:slug>/splits/assign/", api.SplitsAssign.as_view(), name="api_splits_assign"),
    path("projects/<slug:slug>/balance/", api.Balance.as_view(), name="api_balance"),
]
