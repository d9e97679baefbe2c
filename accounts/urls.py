from django.urls import path

from accounts import api, views

urlpatterns = [
    path("account/tokens/", views.token_list, name="account_tokens"),
    path("account/tokens/<str:token_id>/revoke/", views.token_revoke, name="account_token_revoke"),
]

api_urlpatterns = [
    path("auth/token/", api.TokenObtain.as_view(), name="api_token"),
    path("auth/tokens/", api.TokenList.as_view(), name="api_tokens"),
    path("auth/tokens/<str:token_id>/", api.TokenDetail.as_view(), name="api_token_detail"),
]
