from django.urls import path

from curation.projects import api, views

urlpatterns = [
    path("projects/new/", views.project_new, name="project_new"),
    path("p/<slug:slug>/settings/", views.project_settings, name="project_settings"),
    path("p/<slug:slug>/settings/preview/", views.guidelines_preview, name="project_guidelines_preview"),
    path("p/<slug:slug>/settings/labels/", views.label_add, name="project_label_add"),
    path("p/<slug:slug>/settings/labels/<int:label_id>/", views.label_edit, name="project_label_edit"),
    path("p/<slug:slug>/settings/labels/<int:label_id>/retire/", views.label_retire, name="project_label_retire"),
    path("p/<slug:slug>/settings/labels/<int:label_id>/merge/", views.label_merge, name="project_label_merge"),
    path("p/<slug:slug>/settings/labels/<int:label_id>/delete/", views.label_delete, name="project_label_delete"),
    path("p/<slug:slug>/members/", views.project_members, name="project_members"),
    path("p/<slug:slug>/members/<int:user_id>/", views.member_role, name="project_member_role"),
    path("p/<slug:slug>/members/<int:user_id>/remove/", views.member_remove, name="project_member_remove"),
]

api_urlpatterns = [
    path("projects/<slug:slug>/members/", api.MemberList.as_view(), name="api_members"),
    path("projects/<slug:slug>/members/<int:user_id>/", api.MemberDetail.as_view(), name="api_member"),
]
