from django.urls import path

from curation.generation import api, views

urlpatterns = [
    path("p/<slug:slug>/generate/", views.generate_home, name="generate_home"),
    path("p/<slug:slug>/generate/new/", views.job_new, name="generate_job_new"),
    path("p/<slug:slug>/generate/templates/new/", views.template_edit, name="generate_template_new"),
    path(
        "p/<slug:slug>/generate/templates/<int:template_id>/",
        views.template_edit,
        name="generate_template_edit",
    ),
    path("p/<slug:slug>/generate/<int:job_id>/", views.job_detail, name="generate_job"),
    path("p/<slug:slug>/generate/<int:job_id>/action/", views.job_action, name="generate_job_action"),
    path("p/<slug:slug>/augment/", views.augment_new, name="quality_augment"),
    path("p/<slug:slug>/augment/<int:job_id>/", views.augment_job, name="quality_augment_job"),
    path("p/<slug:slug>/augment/<int:job_id>/action/", views.augment_job_action, name="quality_augment_action"),
]

api_urlpatterns = [
    path("projects/<slug:slug>/templates/", api.TemplateList.as_view(), name="api_templates"),
    path(
        "projects/<slug:slug>/templates/<int:template_id>/",
        api.TemplateDetail.as_view(),
        name="api_template",
    ),
    path("projects/<slug:slug>/generation-jobs/", api.JobList.as_view(), name="api_generation_jobs"),
    path(
        "projects/<slug:slug>/generation-jobs/<int:job_id>/",
        api.JobDetail.as_view(),
        name="api_generation_job",
    ),
    path(
        "projects/<slug:slug>/generation-jobs/<int:job_id>/cancel/",
        api.JobCancel.as_view(),
        name="api_generation_job_cancel",
    ),
    path(
        "projects/<slug:slug>/generation-jobs/<int:job_id>/resume/",
        api.JobResume.as_view(),
        name="api_generation_job_resume",
    ),
    path("projects/<slug:slug>/generation-stats/", api.Stats.as_view(), name="api_generation_stats"),
]
