"""The site's URLs plus the history views, until curation/urls.py routes them."""

from django.urls import path

from config.urls import urlpatterns as site_urlpatterns
from curation import views_history

urlpatterns = [
    path(
        "p/<slug:slug>/examples/<int:example_id>/history/",
        views_history.example_history,
        name="example_history",
    ),
    path(
        "p/<slug:slug>/examples/<int:example_id>/revisions/<int:revision_id>/restore/",
        views_history.revision_restore,
        name="revision_restore",
    ),
    *site_urlpatterns,
]
