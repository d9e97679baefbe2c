"""The REST API. Every project endpoint is a ProjectAPIView: its ``project_action`` names
what the role must allow (curation/core/permissions.py), per HTTP method where they differ."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.views import APIView

from curation.core import selectors as core_selectors
from curation.core import serializers
from curation.core.permissions import Action, project_for_user
from curation.models import Project

FILTER_PARAMS = [
    OpenApiParameter(name, str, description=f"Only examples with this {name}.") for name in core_selectors.FILTERS
]


class SignedInAPIMixin:
    """DRF authenticates (session or token) inside the view, so Django's
    LoginRequiredMiddleware must let API requests through to it."""

    @classmethod
    def as_view(cls, **initkwargs: Any):  # type: ignore[override]
        return login_not_required(super().as_view(**initkwargs))  # type: ignore[misc]


class ProjectAPIView(SignedInAPIMixin, APIView):
    """A project's endpoint: ``initial`` sets ``project`` and ``role`` (or answers 404/403).
    A ServiceError a service raises becomes the answer in curation/core/errors.py."""

    project_action: Action | dict[str, Action] = Action.VIEW
    project: Project
    role: str

    @classmethod
    def action_for(cls, method: str) -> Action:
        if isinstance(cls.project_action, dict):
            if method in ("HEAD", "OPTIONS"):
                method = "GET"
            return cls.project_action.get(method, Action.MANAGE_PROJECT)
        return cls.project_action

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not hasattr(self, request.method.lower()):
            return  # dispatch answers 405, the same for everyone
        self.project, self.role = project_for_user(request.user, kwargs["slug"], self.action_for(request.method))

    def current_data(self, current: Any) -> dict[str, Any]:
        """A conflict's object as it is now (a 409's "current"): here an example."""
        return serializers.ExampleSerializer(current).data
