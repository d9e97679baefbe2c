"""Connections in the browser: reviewers see which models the project may use (names and
kinds, never a secret's value); admins add, change and delete the project's own connections.
The operator's connections (no project) are listed but changed only by the operator.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from curation.connections.services import (
    CONNECTION_FIELDS,
    ConnectionInvalid,
    connection_create,
    connection_delete,
    connection_update,
    connections_for,
    models_dir,
    secret_names,
)
from curation.core.errors import add_service_error
from curation.core.permissions import Action, ProjectRequest, allowed_actions, project_view
from curation.models import Connection


class ConnectionForm(forms.Form):
    """Collects the fields; `connection_clean` decides whether they can work. The secret and
    the kind are chosen from lists: nothing here is a free-typed secret name."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Connection.Kind.choices, widget=forms.RadioSelect)
    folder = forms.CharField(
        label=gettext_lazy("Model folder"),
        required=False,
        max_length=500,
        help_text=gettext_lazy("For a model folder: its path inside the operator's models directory."),
    )
    base_url = forms.CharField(
        label=gettext_lazy("Server address"),
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "http://localhost:8000/v1", "inputmode": "url"}),
        help_text=gettext_lazy("For an OpenAI-compatible server: the address up to /v1."),
    )
    model = forms.CharField(
        label=gettext_lazy("Model name"),
        required=False,
        max_length=300,
        help_text=gettext_lazy("For an OpenAI-compatible server: the model name it serves."),
    )
    timeout = forms.FloatField(
        label=gettext_lazy("Timeout (seconds)"), required=False, min_value=1, max_value=600, initial=60
    )
    secret = forms.ChoiceField(
        label=gettext_lazy("Secret sent as the API key"),
        required=False,
        help_text=gettext_lazy(
            "Only the operator's secrets are listed (by name); their values are never shown. "
            "Ask the operator to add one."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["secret"].choices = [("", _("None"))] + [(name, name) for name in secret_names()]

    @staticmethod
    def initial_for(connection: Connection) -> dict[str, Any]:
        return {key: getattr(connection, key) for key in CONNECTION_FIELDS}


def _own(project: Any, connection_id: int) -> Connection:
    """One of this project's connections; the operator's are not changed from a project."""
    return get_object_or_404(Connection, pk=connection_id, project=project)


def _editor(request: ProjectRequest, form: ConnectionForm, connection: Connection | None, status: int) -> HttpResponse:
    project = request.project
    ctx = {
        "project": project,
        "form": form,
        "connection": connection,
        "models_dir": models_dir(),
        "title": _("Connection") if connection else _("New connection"),
    }
    return render(request, "curation/connections/edit.html", ctx, status=status)


@require_GET
@project_view(Action.REVIEW)
def connection_list(request: ProjectRequest) -> HttpResponse:
    project = request.project
    ctx = {
        "project": project,
        "connections": connections_for(project),
        "allowed": allowed_actions(request.role),
        "title": _("Connections"),
    }
    return render(request, "curation/connections/list.html", ctx)


@require_http_methods(["GET", "POST"])
@project_view(Action.MANAGE_PROJECT)
def connection_new(request: ProjectRequest) -> HttpResponse:
    project = request.project
    form = ConnectionForm(request.POST or None, initial={"kind": Connection.Kind.OPENAI, "timeout": 60})
    if request.method == "GET" or not form.is_valid():
        return _editor(request, form, None, 200 if request.method == "GET" else 400)
    try:
        saved = connection_create(project=project, user=request.user, **form.cleaned_data)
    except ConnectionInvalid as error:
        add_service_error(form, error)
        return _editor(request, form, None, 400)
    messages.success(request, _("Connection %(name)s saved.") % {"name": saved.name})
    return redirect("connection_list", project.slug)


@require_http_methods(["GET", "POST"])
@project_view(Action.MANAGE_PROJECT)
def connection_edit(request: ProjectRequest, connection_id: int) -> HttpResponse:
    project = request.project
    connection = _own(project, connection_id)
    form = ConnectionForm(request.POST or None, initial=ConnectionForm.initial_for(connection))
    if request.method == "GET" or not form.is_valid():
        return _editor(request, form, connection, 200 if request.method == "GET" else 400)
    try:
        saved = connection_update(connection=connection, **form.cleaned_data)
    except ConnectionInvalid as error:
        add_service_error(form, error)
        return _editor(request, form, connection, 400)
    messages.success(request, _("Connection %(name)s saved.") % {"name": saved.name})
    return redirect("connection_list", project.slug)


@require_POST
@project_view(Action.MANAGE_PROJECT)
def connection_remove(request: ProjectRequest, connection_id: int) -> HttpResponse:
    project = request.project
    connection = _own(project, connection_id)
    name = connection.name
    connection_delete(connection=connection)
    messages.success(request, _("Connection %(name)s deleted; jobs that used it keep their results.") % {"name": name})
    return redirect("connection_list", project.slug)
