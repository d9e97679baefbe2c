"""Connections: the models a project may generate with, defined by its admins (or, for every
project, by the instance's operator). Reviewers choose one by name; nobody below an admin ever
types an address, a path or the name of a secret, and even admins name secrets only from the
operator's list (environment variables with SHIKOMI_SECRET_PREFIX) and model folders only inside
the operator's models directory (SHIKOMI_MODELS_DIR).

Jobs store {"connection": id}; the secret's value is read from the environment when a request
is sent, so it is never stored, shown or logged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from curation.core.errors import ServiceError
from curation.models import Connection, Project
from llm import registry
from llm.interface import GenerationBackend, GenerationError

EMBEDDED_CONNECTION = "Embedded model"
# What an admin sets on a connection, in every form of it (page, API, Django admin).
CONNECTION_FIELDS = ("name", "kind", "folder", "base_url", "model", "timeout", "secret")
MAX_TIMEOUT = 600


class BackendChoiceError(ServiceError):
    """A backend choice that cannot work; `field` names the part to correct."""


class ConnectionInvalid(ServiceError):
    """A connection that cannot be saved; `field` names the part to correct."""


def secret_names() -> list[str]:
    """The secrets a connection may send: the environment variables with the operator's prefix."""
    prefix = settings.SHIKOMI_SECRET_PREFIX
    return sorted(name for name in os.environ if name.startswith(prefix) and len(name) > len(prefix))


def secret_value(name: str) -> str | None:
    """The value of the operator's secret `name`, read now; None when `name` is not in the
    operator's list (any other environment variable) or the variable is empty. Callers say so in
    their own words, naming the secret, never a value."""
    if not name or name not in secret_names():
        return None
    return os.environ.get(name, "").strip() or None


def models_dir() -> Path:
    return Path(settings.SHIKOMI_MODELS_DIR).resolve()


def model_folder_resolve(folder: str) -> Path:
    """The model folder inside the models directory, or ValueError.

    The message is the same for a path that escapes the directory and for one that does not
    exist inside it, so the answer reveals nothing about the server's files."""
    root = models_dir()
    refused = ValueError(
        _(
            "%(folder)r is not a model folder in the models directory; give the path of a folder inside it, "
            "relative to it (ask the operator which models are there)."
        )
        % {"folder": folder}
    )
    text = folder.strip()
    if not text or "\x00" in text:
        raise refused
    path = Path(text)
    # An absolute path is accepted only when it already lies inside the directory.
    candidate = path if path.is_absolute() else root / path
    if ".." in path.parts:
        raise refused
    try:
        resolved = candidate.resolve(strict=True)  # follows symlinks: one that leaves the directory is refused
    except (OSError, RuntimeError):
        raise refused from None
    if resolved == root or not resolved.is_relative_to(root) or not resolved.is_dir():
        raise refused
    return resolved


@dataclass(frozen=True)
class ConnectionFields:
    """A connection's settable fields, checked (CONNECTION_FIELDS names them)."""

    name: str
    kind: str
    folder: str = ""
    base_url: str = ""
    model: str = ""
    timeout: float = 60.0
    secret: str = ""


def connection_clean(
    *,
    project: Project | None,
    name: Any = "",
    kind: Any = "",
    folder: Any = "",
    base_url: Any = "",
    model: Any = "",
    timeout: Any = 60,
    secret: Any = "",
    instance: Connection | None = None,
) -> ConnectionFields:
    """The connection's fields, checked once for every caller (page, API, admin, superuser).
    Raises ConnectionInvalid naming the field."""
    name = " ".join(str(name or "").split())
    kind = str(kind or "").strip()
    secret = str(secret or "").strip()
    if not name:
        raise ConnectionInvalid("name", _("Give the connection a name."))
    if len(name) > 100:
        raise ConnectionInvalid("name", _("A name has at most 100 characters."))
    taken = Connection.objects.filter(Q(project=project) | Q(project__isnull=True), name=name)
    if instance is not None:
        taken = taken.exclude(pk=instance.pk)
    if taken.exists():
        raise ConnectionInvalid("name", _("There is already a connection named %(name)r.") % {"name": name})
    if kind not in Connection.Kind.values:
        raise ConnectionInvalid("kind", _("Choose one of %(kinds)s.") % {"kinds": ", ".join(Connection.Kind.values)})
    # Checked for every kind and every user, superusers too: the list is the operator's.
    if secret and secret not in secret_names():
        raise ConnectionInvalid(
            "secret",
            _(
                "%(name)r is not one of the operator's secrets. Choose one of the list (environment variables "
                "starting with %(prefix)s), or none."
            )
            % {"name": secret, "prefix": settings.SHIKOMI_SECRET_PREFIX},
        )
    if kind == Connection.Kind.EMBEDDED:
        return ConnectionFields(name=name, kind=kind)
    if kind == Connection.Kind.FOLDER:
        folder = str(folder or "").strip()
        try:
            resolved = model_folder_resolve(folder)
        except ValueError as error:
            raise ConnectionInvalid("folder", str(error)) from None
        return ConnectionFields(name=name, kind=kind, folder=str(resolved.relative_to(models_dir())))
    base_url, model = str(base_url or "").strip(), str(model or "").strip()
    try:
        timeout = float(60 if timeout in (None, "") else timeout)
    except (TypeError, ValueError):
        timeout = -1.0
    if not 1 <= timeout <= MAX_TIMEOUT:
        raise ConnectionInvalid("timeout", _("Give a timeout from 1 to %(n)s seconds.") % {"n": MAX_TIMEOUT})
    if not model:
        raise ConnectionInvalid("model", _("Give the model name the server serves."))
    from curation.connections.outbound import check_url
    from llm.outbound import OutboundRefused

    try:
        registry.backend_for(Connection.Kind.OPENAI, base_url=base_url, model=model, timeout=timeout)
    except ValueError as error:  # everything else it checks is about the address
        raise ConnectionInvalid("base_url", str(error)) from None
    try:
        check_url(base_url)
    except OutboundRefused as error:
        raise ConnectionInvalid("base_url", str(error)) from None
    return ConnectionFields(name=name, kind=kind, base_url=base_url, model=model, timeout=timeout, secret=secret)


def _save(connection: Connection, fields: ConnectionFields) -> Connection:
    for key, value in fields.__dict__.items():
        setattr(connection, key, value)
    try:
        with transaction.atomic():
            connection.save()
    except IntegrityError:  # someone saved the same name in between
        raise ConnectionInvalid(
            "name", _("There is already a connection named %(name)r.") % {"name": fields.name}
        ) from None
    return connection


def connection_create(*, project: Project | None, user: Any, **values: Any) -> Connection:
    """A new connection of `project` (None: the operator's, for every project)."""
    fields = connection_clean(project=project, **values)
    created_by = user if getattr(user, "is_authenticated", False) else None
    return _save(Connection(project=project, created_by=created_by), fields)


def connection_update(*, connection: Connection, **values: Any) -> Connection:
    """Change a connection; fields left out keep their value. Jobs that used it use the new settings."""
    current = {key: getattr(connection, key) for key in CONNECTION_FIELDS}
    fields = connection_clean(project=connection.project, instance=connection, **(current | values))
    return _save(connection, fields)


def connection_delete(*, connection: Connection) -> None:
    """Delete a connection. Jobs keep the backend name they stored, so they stay readable; one
    resumed later is refused with a message saying its connection is gone."""
    connection.delete()


# --- choosing ------------------------------------------------------------------------------


def embedded_connection() -> Connection:
    """The operator's embedded-model connection, offered to every project.

    Made by migration 0009 and again here when missing (a database flushed by tests, or an
    operator who deleted it), so every project can always generate without any setup."""
    found = Connection.objects.filter(project__isnull=True, kind=Connection.Kind.EMBEDDED).order_by("id").first()
    if found is not None:
        return found
    connection, _created = Connection.objects.get_or_create(
        project=None, name=EMBEDDED_CONNECTION, defaults={"kind": Connection.Kind.EMBEDDED}
    )
    return connection


def connections_for(project: Project) -> QuerySet[Connection]:
    """The connections a project may use: its own and the operator's."""
    embedded_connection()
    return Connection.objects.filter(Q(project=project) | Q(project__isnull=True)).order_by("name", "id")


def connection_for(project: Project | None, ref: Any) -> Connection:
    """The connection `ref` (an id or a name) names, among those `project` may use.

    BackendChoiceError when there is none, the same for another project's connection as for
    one that does not exist (another project's names are not revealed)."""
    text = str(ref if ref is not None else "").strip()
    found = connections_for(project) if project is not None else Connection.objects.all()
    connection = None
    if text.isdigit():
        connection = found.filter(pk=int(text)).first()
    if connection is None and text:
        # A project's own connection wins over an operator's of the same name.
        named = found.filter(name=text)
        connection = (named.filter(project=project).first() if project is not None else None) or named.first()
    if connection is None:
        raise BackendChoiceError("connection", _("Choose a connection of this project."))
    return connection


def connection_backend(connection: Connection) -> GenerationBackend:
    """The backend a connection stands for. The secret's value is read here, at use, from the
    environment; a secret that is named but not set (or no longer allowed) is a GenerationError
    naming the connection and the secret's name, never a value."""
    if connection.kind == Connection.Kind.FOLDER:
        try:
            folder = model_folder_resolve(connection.folder)
        except ValueError as error:
            raise GenerationError(
                _("Connection %(name)s: %(error)s") % {"name": connection.name, "error": error}
            ) from None
        return registry.backend_for(connection.kind, folder=str(folder), name=f"folder:{connection.folder}")
    if connection.kind == Connection.Kind.OPENAI:
        from curation.connections.outbound import allow_list

        key = ""
        if connection.secret:
            if connection.secret not in secret_names():
                raise GenerationError(
                    _(
                        "Connection %(name)s sends the secret %(secret)s, which is not set on this server (or not "
                        "in the operator's list). Ask the operator to set it for the web server and the worker."
                    )
                    % {"name": connection.name, "secret": connection.secret}
                )
            key = os.environ.get(connection.secret, "")
        try:
            return registry.backend_for(
                connection.kind,
                base_url=connection.base_url,
                model=connection.model,
                api_key=key,
                key_name=connection.secret,
                timeout=connection.timeout,
                allowed=allow_list(),
            )
        except ValueError as error:
            raise GenerationError(
                _("Connection %(name)s: %(error)s") % {"name": connection.name, "error": error}
            ) from None
    return registry.backend_for(Connection.Kind.EMBEDDED)


def backend_choices(
    project: Project, *, kinds: tuple[str, ...] | None = None, runs: bool = True
) -> list[tuple[str, str]]:
    """The options of a "which model" select: connections ("connection:<id>") and, where a
    tuned model may write, the project's finished training runs ("run:<id>")."""
    choices = [
        (f"connection:{c.pk}", f"{c.name} ({c.get_kind_display()})")
        for c in connections_for(project)
        if kinds is None or c.kind in kinds
    ]
    if runs:
        from training.interface import finished_runs

        choices += [
            (f"run:{run.pk}", _("Tuned model of run %(n)s (%(method)s)") % {"n": run.number, "method": run.method})
            for run in finished_runs(project)
        ]
    return choices


def spec_from_choice(choice: str) -> dict[str, Any]:
    """A select's value as a job's backend spec."""
    kind, _sep, ref = str(choice or "").partition(":")
    if kind == "run":
        return {"kind": "tuned", "run": ref}
    if kind == "connection":
        return {"connection": ref}
    return {}


def choice_from_spec(spec: dict[str, Any] | None) -> str:
    spec = spec or {}
    if spec.get("kind") == "tuned":
        return f"run:{spec.get('run')}"
    if spec.get("connection") is not None:
        return f"connection:{spec['connection']}"
    return ""


def connection_name(spec: dict[str, Any] | None) -> str:
    """The name of the connection a job's spec names, for its page ("" for none or a deleted one)."""
    ref = (spec or {}).get("connection")
    if ref is None or not str(ref).isdigit():
        return ""
    return Connection.objects.filter(pk=int(ref)).values_list("name", flat=True).first() or ""
