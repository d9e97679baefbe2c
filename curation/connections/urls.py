from django.urls import path

from curation.connections import api, views

urlpatterns = [
    path("p/<slug:slug>/connections/", views.connection_list, name="connection_list"),
    path("p/<slug:slug>/connections/new/", views.connection_new, name="connection_new"),
    path("p/<slug:slug>/connections/<int:connection_id>/", views.connection_edit, name="connection_edit"),
    path(
        "p/<slug:slug>/connections/<int:connection_id>/delete/",
        views.connection_remove,
        name="connection_delete",
    ),
]

api_urlpatterns = [
    path("projects/<slug:slug>/connections/", api.ConnectionList.as_view(), name="api_connections"),
    path(
        "projects/<slug:slug>/connections/secrets/",
        api.ConnectionSecrets.as_view(),
        name="api_connection_secrets",
    ),
    path(
        "projects/<slug:slug>/connections/<int:connection_id>/",
        api.ConnectionDetail.as_view(),
        name="api_connection",
    ),
]
