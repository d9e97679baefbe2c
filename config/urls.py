from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.urls import api_urlpatterns as accounts_api_urlpatterns
from curation.urls import api_urlpatterns
from training.urls import api_urlpatterns as training_api_urlpatterns


class SchemaView(SpectacularAPIView):
    required_access = "authenticated"


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI; its start-up script is served from ?script, not inline (Content-Security-Policy)."""

    required_access = "authenticated"


urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("api/schema/", login_not_required(SchemaView.as_view()), name="api_schema"),
    path("api/docs/", DocsView.as_view(url_name="api_schema"), name="api_docs"),
    path("api/", include(accounts_api_urlpatterns)),
    path("api/", include(api_urlpatterns)),
    path("api/", include(training_api_urlpatterns)),
    path("", include("accounts.urls")),
    path("", include("curation.urls")),
    path("", include("training.urls")),
]
