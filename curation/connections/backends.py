"""A job's choice of backend: checked when the job starts, turned into a backend when it runs.

A job stores {"connection": id} (one of the project's connections) or {"kind": "tuned", "run": id}
(the model a finished training run of the project made, reached through `training.interface`).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from curation.connections.services import (
    BackendChoiceError,
    connection_backend,
    connection_for,
    embedded_connection,
)
from llm.interface import GenerationBackend, GenerationError
from llm.local import LocalBackend

# What a reviewer once typed; now only admins define these, in a connection.
OLD_BACKEND_KEYS = ("base_url", "api_key_env", "api_key", "model", "timeout")


def backend_spec_clean(spec: dict[str, Any] | None, project: Any) -> dict[str, Any]:
    """A backend choice as a job stores it, checked: {"connection": id} (a connection `project`
    may use, by id or name; the embedded model's when the spec is empty) or {"kind": "tuned",
    "run": id} (a finished training run of `project`). Raises BackendChoiceError.

    An address, a model path or a secret's name is refused here: those are a connection's,
    which only an admin defines."""
    spec = spec if isinstance(spec, dict) else {}
    if any(key in spec for key in OLD_BACKEND_KEYS) or spec.get("kind") in ("local", "openai"):
        raise BackendChoiceError(
            "connection",
            _(
                "Addresses, model paths and key names are no longer given with a job; choose one of the "
                "project's connections by name or id (ask an admin to add a connection)."
            ),
        )
    if spec.get("kind") == "tuned":
        from training.interface import run_model

        run = run_model(project, spec.get("run"))
        if run is None:
            raise BackendChoiceError("run", _("Choose a training run of this project."))
        if not run.ready:
            raise BackendChoiceError(
                "run", _("Run %(n)s has no trained model yet: only finished runs can generate.") % {"n": run.number}
            )
        return {"kind": "tuned", "run": run.pk}
    if spec.get("kind"):
        raise BackendChoiceError("kind", _("Choose a connection, or a finished training run (kind tuned)."))
    if spec.get("connection") in (None, ""):
        return {"connection": embedded_connection().pk}
    return {"connection": connection_for(project, spec["connection"]).pk}


def backend_choose(spec: dict[str, Any] | None, project: Any) -> tuple[dict[str, Any], str]:
    """A job's backend choice checked at its start: the spec to store and the backend's name.
    A connection that cannot work now (its secret unset, its folder gone) is a
    BackendChoiceError on "connection", like a choice that was never allowed."""
    spec = backend_spec_clean(spec, project)
    try:
        return spec, backend_from_spec(spec, project).name
    except GenerationError as error:
        raise BackendChoiceError("connection", str(error)) from None


def backend_from_spec(spec: dict[str, Any] | None, project: Any) -> GenerationBackend:
    """The backend a job's stored choice names (the embedded model when there is none).

    A connection deleted since the job started is a GenerationError that says so."""
    spec = dict(spec or {})
    if spec.get("kind") == "tuned":
        from training.interface import tuned_backend

        return tuned_backend(backend_spec_clean(spec, project)["run"])
    if spec.get("connection") in (None, ""):
        return LocalBackend()
    from curation.models import Connection

    connection = Connection.objects.filter(pk=spec["connection"]).first()
    if connection is None or connection.project_id not in (None, getattr(project, "pk", None)):
        raise GenerationError(
            _("The connection this job used was deleted; start a new job with one of the project's connections.")
        )
    return connection_backend(connection)
