"""Who may do what: the one place where project roles are checked.

Views (through ``project_view``), the API (through ``ProjectAPIView`` in ``api.py``),
management commands and tasks all ask ``project_for_user`` or ``can``.

| action          | annotator | reviewer | admin | what it covers                                 |
|-----------------|-----------|----------|-------|------------------------------------------------|
| view            | yes       | yes      | yes   | see the project, its examples and their history |
| label           | yes       | yes      | yes   | annotate: label, rate, note                     |
| edit            | yes       | yes      | yes   | change an example's messages or fields          |
| review          |           | yes      | yes   | resolve disagreements, approve/reject drafts    |
| export          |           | yes      | yes   | download data                                   |
| import          |           |          | yes   | upload data                                     |
| manage_rules    |           |          | yes   | weak-supervision rules and the label model      |
| launch_training |           |          | yes   | start, cancel and resume training runs          |
| manage_project  |           |          | yes   | settings, labels, members, delete examples      |

Django superusers may do everything in every project. A signed-in user who is not a
member of a project gets 404 for it (its existence is not revealed); a member whose role
lacks the action gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django_htmx.middleware import HtmxDetails

from curation.models import Membership, Project, Role


class Action(StrEnum):
    VIEW = "view"
    LABEL = "label"
    EDIT = "edit"
    REVIEW = "review"
    EXPORT = "export"
    IMPORT = "import"
    MANAGE_RULES = "manage_rules"
    LAUNCH_TRAINING = "launch_training"
    MANAGE_PROJECT = "manage_project"


_ANNOTATOR = {Action.VIEW, Action.LABEL, Action.EDIT}
_REVIEWER = _ANNOTATOR | {Action.REVIEW, Action.EXPORT}
MATRIX: dict[str, frozenset[Action]] = {
    Role.ANNOTATOR: frozenset(_ANNOTATOR),
    Role.REVIEWER: frozenset(_REVIEWER),
    Role.ADMIN: frozenset(Action),
}

User = AbstractBaseUser | AnonymousUser


def role_allows(role: str | None, action: Action) -> bool:
    return role is not None and action in MATRIX.get(role, frozenset())


def role_for(user: Any, project: Project) -> str | None:
    """The user's role in the project; superusers count as admins everywhere."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    return Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def allowed_actions(role: str | None) -> dict[str, bool]:
    """{action: allowed} for a role, for pages that offer only what the server will accept."""
    return {action.value: role_allows(role, action) for action in Action}


def can(user: Any, project: Project, action: Action) -> bool:
    return role_allows(role_for(user, project), action)


def project_for_user(user: Any, slug: str, action: Action) -> tuple[Project, str]:
    """The project and the user's role, or Http404 (not a member) / PermissionDenied."""
    if not user.is_authenticated:
        raise PermissionDenied(_("Sign in first."))
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise Http404(_("No such project."))
    role = role_for(user, project)
    if role is None:
        raise Http404(_("No such project."))
    if not role_allows(role, action):
        raise PermissionDenied(
            _("Your role (%(role)s) may not %(action)s in this project.")
            % {"role": role, "action": action.replace("_", " ")}
        )
    return project, role


def projects_for_user(user: Any):
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)


class ProjectRequest(HttpRequest):
    """The request a ``project_view`` passes on: the project, the user's role in it, and what
    htmx sent (django-htmx's middleware). Only an annotation: the object is Django's request."""

    project: Project
    role: str
    htmx: HtmxDetails


def project_view(action: Action) -> Callable:
    """Decorate a view taking ``slug``: sets ``request.project`` and ``request.role``."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
            project_request = cast(ProjectRequest, request)
            project_request.project, project_request.role = project_for_user(request.user, slug, action)
            return view(project_request, *args, **kwargs)

        wrapper.required_access = action  # type: ignore[attr-defined]
        return wrapper

    return decorator


def signed_in(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Mark a view that any signed-in user may open (LoginRequiredMiddleware enforces it)."""
    view.required_access = "authenticated"  # type: ignore[attr-defined]
    return view
