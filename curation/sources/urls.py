from django.urls import path

from curation.sources import api, views

urlpatterns = [
    path("p/<slug:slug>/sources/", views.source_list, name="source_list"),
    path("p/<slug:slug>/sources/new/", views.source_new, name="source_new"),
    path("p/<slug:slug>/sources/<int:source_id>/", views.source_detail, name="source_detail"),
    path("p/<slug:slug>/sources/<int:source_id>/edit/", views.source_edit, name="source_edit"),
    path("p/<slug:slug>/sources/<int:source_id>/delete/", views.source_remove, name="source_delete"),
    path("p/<slug:slug>/sources/<int:source_id>/import/", views.source_import, name="source_import"),
    path("p/<slug:slug>/sources/<int:source_id>/preview/", views.source_preview, name="source_preview"),
]

api_urlpatterns = [
    path("projects/<slug:slug>/sources/", api.SourceList.as_view(), name="api_sources"),
    path("projects/<slug:slug>/sources/<int:source_id>/", api.SourceDetail.as_view(), name="api_source"),
    path(
        "projects/<slug:slug>/sources/<int:source_id>/imports/",
        api.SourceImports.as_view(),
        name="api_source_imports",
    ),
    path(
        "projects/<slug:slug>/sources/<int:source_id>/preview/",
        api.SourcePreview.as_view(),
        name="api_source_preview",
    ),
]
