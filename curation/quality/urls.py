from django.urls import path

from curation.quality import api, dismiss_views, views

urlpatterns = [
    path("p/<slug:slug>/quality/", views.quality, name="quality"),
    path("p/<slug:slug>/quality/scan/", views.quality_scan, name="quality_scan"),
    path("p/<slug:slug>/quality/settings/", views.quality_settings, name="quality_settings"),
    path("p/<slug:slug>/quality/duplicates/", views.duplicates, name="quality_duplicates"),
    path(
        "p/<slug:slug>/quality/duplicates/<int:cluster_id>/resolve/",
        views.duplicate_resolve,
        name="quality_duplicate_resolve",
    ),
    path("p/<slug:slug>/quality/leakage/", views.leakage, name="quality_leakage"),
    path("p/<slug:slug>/quality/leakage/fix/", views.leakage_fix, name="quality_leakage_fix"),
    path("p/<slug:slug>/quality/pii/", views.pii_list, name="quality_pii"),
    path("p/<slug:slug>/quality/pii/redact/", views.pii_redact_all, name="quality_pii_redact_all"),
    path("p/<slug:slug>/quality/pii/<int:example_id>/redact/", views.pii_redact, name="quality_pii_redact"),
    path("p/<slug:slug>/quality/pii/<int:example_id>/dismiss/", dismiss_views.pii_dismiss, name="quality_pii_dismiss"),
    path(
        "p/<slug:slug>/quality/duplicates/<int:cluster_id>/dismiss/",
        dismiss_views.cluster_dismiss,
        name="quality_duplicate_dismiss",
    ),
    path(
        "p/<slug:slug>/quality/duplicates/<int:cluster_id>/restore/",
        dismiss_views.cluster_restore,
        name="quality_duplicate_restore",
    ),
    path(
        "p/<slug:slug>/quality/leakage/<int:example_id>/dismiss/",
        dismiss_views.leak_dismiss,
        name="quality_leak_dismiss",
    ),
    path("p/<slug:slug>/quality/dismissals/", dismiss_views.dismissal_list, name="quality_dismissals"),
    path(
        "p/<slug:slug>/quality/dismissals/restore/", dismiss_views.dismissal_restore, name="quality_dismissal_restore"
    ),
]

api_urlpatterns = [
    path("projects/<slug:slug>/quality/", api.Readiness.as_view(), name="api_quality"),
    path("projects/<slug:slug>/quality/scans/", api.ScanList.as_view(), name="api_quality_scans"),
    path("projects/<slug:slug>/quality/scans/<int:number>/", api.ScanDetail.as_view(), name="api_quality_scan"),
    path("projects/<slug:slug>/quality/duplicates/", api.ClusterList.as_view(), name="api_duplicates"),
    path(
        "projects/<slug:slug>/quality/duplicates/<int:cluster_id>/resolve/",
        api.ClusterResolve.as_view(),
        name="api_duplicate_resolve",
    ),
    path("projects/<slug:slug>/quality/leakage/", api.LeakList.as_view(), name="api_leakage"),
    path("projects/<slug:slug>/quality/pii/", api.PiiList.as_view(), name="api_pii"),
    path("projects/<slug:slug>/quality/pii/redact/", api.PiiRedact.as_view(), name="api_pii_redact"),
    path("projects/<slug:slug>/quality/dismissals/", api.DismissalList.as_view(), name="api_dismissals"),
    path(
        "projects/<slug:slug>/quality/dismissals/restore/",
        api.DismissalRestore.as_view(),
        name="api_dismissal_restore",
    ),
]
