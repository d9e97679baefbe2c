from django.urls import path

from curation.rules import api, views

urlpatterns = [
    path("p/<slug:slug>/rules/", views.rule_list, name="rule_list"),
    path("p/<slug:slug>/rules/new/", views.rule_new, name="rule_new"),
    path("p/<slug:slug>/rules/preview/", views.rule_preview, name="rule_preview"),
    path("p/<slug:slug>/rules/apply/", views.rule_run_create, name="rule_run_create"),
    path("p/<slug:slug>/rules/queue-order/", views.queue_order, name="rule_queue_order"),
    path("p/<slug:slug>/rules/<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path("p/<slug:slug>/rules/<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
    path("p/<slug:slug>/rules/runs/<int:run_id>/", views.rule_run_detail, name="rule_run_detail"),
    path("p/<slug:slug>/rules/runs/<int:run_id>/accept/", views.weak_accept, name="weak_accept"),
    path("p/<slug:slug>/rules/runs/<int:run_id>/accept/rows/", views.weak_accept_rows, name="weak_accept_rows"),
    path("p/<slug:slug>/rules/runs/<int:run_id>/withdraw/", views.weak_withdraw, name="weak_withdraw"),
]

api_urlpatterns = [
    path("projects/<slug:slug>/rules/", api.RuleList.as_view(), name="api_rules"),
    path("projects/<slug:slug>/rules/preview/", api.RulePreview.as_view(), name="api_rule_preview"),
    path("projects/<slug:slug>/rules/<int:rule_id>/", api.RuleDetail.as_view(), name="api_rule"),
    path("projects/<slug:slug>/rules/<int:rule_id>/history/", api.RuleHistory.as_view(), name="api_rule_history"),
    path("projects/<slug:slug>/rule-runs/", api.RuleRunList.as_view(), name="api_rule_runs"),
    path("projects/<slug:slug>/rule-runs/<int:run_id>/", api.RuleRunDetail.as_view(), name="api_rule_run"),
    path(
        "projects/<slug:slug>/rule-runs/<int:run_id>/weak-labels/",
        api.WeakLabelList.as_view(),
        name="api_weak_labels",
    ),
    path(
        "projects/<slug:slug>/rule-runs/<int:run_id>/accept/",
        api.WeakLabelAccept.as_view(),
        name="api_weak_accept",
    ),
    path(
        "projects/<slug:slug>/rule-runs/<int:run_id>/withdraw/",
        api.WeakLabelWithdraw.as_view(),
        name="api_weak_withdraw",
    ),
]
