"""The project pages: a new project (blank or copied), the settings page with its labels and
recent changes, and the members page. Admins only (Action.MANAGE_PROJECT), except making a
project, which staff and holders of curation.add_project may do."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from curation.core.errors import add_service_error, flash_service_error
from curation.core.permissions import Action, ProjectRequest, project_view
from curation.models import Label, Role
from curation.projects import labels as label_services
from curation.projects import members as member_services
from curation.projects import selectors
from curation.projects.changes import FIELDS, described
from curation.projects.forms import LabelForm, MemberAddForm, ProjectCreateForm, SettingsForm
from curation.projects.services import (
    TEXT_LIMITS,
    ProjectError,
    may_create_projects,
    project_create,
    project_update,
    settings_version,
)

MEMBERS_PER_PAGE = 100


def creates_projects(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For staff and users with curation.add_project; 403 for other signed-in users."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not may_create_projects(request.user):
            raise PermissionDenied(_("Only staff and users allowed to add projects may create one."))
        return view(request, *args, **kwargs)

    wrapper.required_access = "create_project"  # type: ignore[attr-defined]
    return wrapper


@require_http_methods(["GET", "POST"])
@creates_projects
def project_new(request: HttpRequest) -> HttpResponse:
    copyable = list(selectors.projects_to_copy(request.user))
    form = ProjectCreateForm(request.POST or None, copyable=copyable, initial={"copy_from": request.GET.get("copy")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        source = next((p for p in copyable if p.slug == data["copy_from"]), None)
        try:
            project = project_create(
                user=request.user,
                name=data["name"],
                slug=data["slug"],
                kind=data["kind"],
                description=data["description"],
                copy_from=source,
            )
        except ProjectError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Project %(name)s created; you are its admin.") % {"name": project.name})
            return redirect("project_settings", project.slug)
    status = 400 if request.method == "POST" else 200
    return render(request, "curation/projects/new.html", {"form": form}, status=status)


def _settings_page(request: ProjectRequest, form: SettingsForm, *, status: int = 200) -> HttpResponse:
    project = request.project
    labels = selectors.label_rows(project)
    ctx = {
        "project": project,
        "form": form,
        "labels": labels,
        "offered": [label for label in labels if not label.retired],
        "label_form": LabelForm(auto_id="new-label-%s"),
        "changes": described(selectors.recent_changes(project)),
        "member_count": selectors.members(project).count(),
        "may_create": may_create_projects(request.user),
    }
    return render(request, "curation/projects/settings.html", ctx, status=status)


@require_http_methods(["GET", "POST"])
@project_view(Action.MANAGE_PROJECT)
def project_settings(request: ProjectRequest) -> HttpResponse:
    project = request.project
    if request.method == "GET":
        form = SettingsForm(initial=SettingsForm.initial_for(project, settings_version(project)))
        return _settings_page(request, form)
    form = SettingsForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, form, status=400)
    changes = dict(form.cleaned_data)
    version = changes.pop("settings_version") or None
    try:
        project_update(project=project, user=request.user, changes=changes, version=version)
    except ProjectError as error:
        if error.status == 409:
            # Their typing stays on the page; the version is the current one, so saving again overwrites.
            data = request.POST.copy()
            data["settings_version"] = settings_version(error.current)
            form = SettingsForm(data)
            form.is_valid()
            form.add_error(None, error.message)
            return _settings_page(request, form, status=409)
        add_service_error(form, error)
        return _settings_page(request, form, status=400)
    messages.success(request, _("Settings saved."))
    return redirect("project_settings", project.slug)


@require_POST
@project_view(Action.MANAGE_PROJECT)
def guidelines_preview(request: ProjectRequest) -> HttpResponse:
    """The guidelines as annotators will see them, rendered as they are typed (htmx)."""
    text = request.POST.get("guidelines", "")[: TEXT_LIMITS["guidelines"]]
    return render(request, "curation/projects/_guidelines_preview.html", {"text": text})


# --- labels ------------------------------------------------------------------------------------

LABEL_NAMES = {**FIELDS, "into": gettext_lazy("Merge into"), "label": gettext_lazy("Label")}


def _labels_done(request: ProjectRequest) -> HttpResponse:
    return redirect(reverse("project_settings", args=[request.project.slug]) + "#labels")


def _label(request: ProjectRequest, label_id: int) -> Label:
    return get_object_or_404(Label, pk=label_id, project=request.project)


def _refused(request: ProjectRequest, error: ProjectError) -> HttpResponse:
    flash_service_error(request, error, {k: str(v) for k, v in LABEL_NAMES.items()})
    return _labels_done(request)


@require_POST
@project_view(Action.MANAGE_PROJECT)
def label_add(request: ProjectRequest) -> HttpResponse:
    post = request.POST
    try:
        label = label_services.label_add(
            project=request.project,
            user=request.user,
            name=post.get("name", ""),
            colour=post.get("colour") or "#64748b",
            shortcut=post.get("shortcut", ""),
        )
    except ProjectError as error:
        return _refused(request, error)
    messages.success(request, _("Label %(name)s added.") % {"name": label.name})
    return _labels_done(request)


@require_POST
@project_view(Action.MANAGE_PROJECT)
def label_edit(request: ProjectRequest, label_id: int) -> HttpResponse:
    label = _label(request, label_id)
    changes = {field: request.POST[field] for field in ("name", "colour", "shortcut") if field in request.POST}
    if not changes:
        return _refused(request, ProjectError("name", _("Nothing to change was sent.")))
    try:
        label = label_services.label_update(label=label, user=request.user, changes=changes)
    except ProjectError as error:
        return _refused(request, error)
    messages.success(request, _("Label %(name)s saved.") % {"name": label.name})
    return _labels_done(request)


@require_POST
@project_view(Action.MANAGE_PROJECT)
def label_retire(request: ProjectRequest, label_id: int) -> HttpResponse:
    """Retire (retired=1) or bring back (retired=0)."""
    label = _label(request, label_id)
    retired = request.POST.get("retired", "1") != "0"
    label = label_services.label_update(label=label, user=request.user, changes={"retired": retired})
    if retired:
        messages.success(
            request,
            _("Label %(name)s retired: it stays on its examples but is no longer offered.") % {"name": label.name},
        )
    else:
        messages.success(request, _("Label %(name)s is offered again.") % {"name": label.name})
    return _labels_done(request)


@require_POST
@project_view(Action.MANAGE_PROJECT)
def label_merge(request: ProjectRequest, label_id: int) -> HttpResponse:
    label = _label(request, label_id)
    into = Label.objects.filter(project=request.project, pk=_int(request.POST.get("into"))).first()
    if into is None:
        return _refused(request, ProjectError("into", _("Choose the label to merge into.")))
    try:
        moved = label_services.label_merge(label=label, into=into, user=request.user)
    except ProjectError as error:
        return _refused(request, error)
    messages.success(
        request,
        _("%(name)s merged into %(into)s: %(examples)d examples and %(annotations)d annotations moved.")
        % {"name": label.name, "into": into.name, **moved},
    )
    return _labels_done(request)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@require_POST
@project_view(Action.MANAGE_PROJECT)
def label_delete(request: ProjectRequest, label_id: int) -> HttpResponse:
    label = _label(request, label_id)
    name = label.name
    try:
        label_services.label_delete(label=label, user=request.user)
    except ProjectError as error:
        return _refused(request, error)
    messages.success(request, _("Label %(name)s deleted.") % {"name": name})
    return _labels_done(request)


# --- members -----------------------------------------------------------------------------------


def _members_page(request: ProjectRequest, form: MemberAddForm, *, status: int = 200) -> HttpResponse:
    project = request.project
    page = Paginator(selectors.members(project), MEMBERS_PER_PAGE).get_page(request.GET.get("page"))
    ctx = {
        "project": project,
        "form": form,
        "page": page,
        "roles": Role.choices,
        "admins": selectors.admin_count(project),
    }
    return render(request, "curation/projects/members.html", ctx, status=status)


@require_http_methods(["GET", "POST"])
@project_view(Action.MANAGE_PROJECT)
def project_members(request: ProjectRequest) -> HttpResponse:
    """The members and their roles; POST adds one."""
    if request.method == "GET":
        return _members_page(request, MemberAddForm())
    form = MemberAddForm(request.POST)
    if not form.is_valid():
        return _members_page(request, form, status=400)
    try:
        membership = member_services.member_add(
            project=request.project, user=request.user, who=form.cleaned_data["who"], role=form.cleaned_data["role"]
        )
    except ProjectError as error:
        add_service_error(form, error)
        return _members_page(request, form, status=400)
    messages.success(
        request,
        _("%(name)s added as %(role)s.")
        % {"name": membership.user.get_username(), "role": membership.get_role_display().lower()},
    )
    return redirect("project_members", request.project.slug)


MEMBER_NAMES = {"role": gettext_lazy("Role"), "user": gettext_lazy("Member")}


@require_POST
@project_view(Action.MANAGE_PROJECT)
def member_role(request: ProjectRequest, user_id: int) -> HttpResponse:
    try:
        membership = member_services.member_role_set(
            project=request.project, user=request.user, user_id=user_id, role=request.POST.get("role", "")
        )
    except ProjectError as error:
        flash_service_error(request, error, {k: str(v) for k, v in MEMBER_NAMES.items()})
    else:
        messages.success(
            request,
            _("%(name)s is now %(role)s.")
            % {"name": membership.user.get_username(), "role": membership.get_role_display().lower()},
        )
    return redirect("project_members", request.project.slug)


@require_POST
@project_view(Action.MANAGE_PROJECT)
def member_remove(request: ProjectRequest, user_id: int) -> HttpResponse:
    try:
        membership = member_services.membership_get(project=request.project, user_id=user_id)
        member_services.member_remove(project=request.project, user=request.user, user_id=user_id)
    except ProjectError as error:
        flash_service_error(request, error, {k: str(v) for k, v in MEMBER_NAMES.items()})
    else:
        messages.success(request, _("%(name)s removed from the project.") % {"name": membership.user.get_username()})
    return redirect("project_members", request.project.slug)
