from django.urls import path

from curation.io import api, views

urlpatterns = [
    path("p/<slug:slug>/import/", views.import_upload, name="import_upload"),
    path("p/<slug:slug>/imports/<int:job_id>/", views.import_job, name="import_job"),
    path("p/<slug:slug>/export/", views.export, name="export"),
    path("p/<slug:slug>/export/preview/", views.export_preview, name="export_preview"),
    path("p/<slug:slug>/export/hub/", views.export_hub, name="export_hub"),
]

api_urlpatterns = [
    path("projects/<slug:slug>/imports/", api.ImportList.as_view(), name="api_imports"),
    path("projects/<slug:slug>/imports/<int:job_id>/", api.ImportDetail.as_view(), name="api_import"),
    path("projects/<slug:slug>/export/", api.Export.as_view(), name="api_export"),
    path("projects/<slug:slug>/export/preview/", api.ExportPreview.as_view(), name="api_export_preview"),
    path("projects/<slug:slug>/export/hub/", api.ExportHub.as_view(), name="api_export_hub"),
]
