"""Push an export, with its data card, to a dataset repository on the Hugging Face Hub.

An admin chooses the repository (``owner/name``), whether a new one is private, and which of
the operator's secrets holds the token (by name, from the list curation.connections gives). The
Hub's address is the operator's setting (SHIKOMI_HUB_ENDPOINT) and passes the outbound guard
before any request is sent. Pushing sends the project's data off the server, so it takes the
admin's right to manage the project, not only the right to export.

The push runs while the admin waits: the export is read into memory, so its files together may
hold at most SHIKOMI_HUB_MAX_BYTES, and it is sent as one commit (README.md and the data files),
so the repository never holds half of it. A refusal by the Hub comes back with its HTTP status
and its own message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx2
from django.conf import settings
from django.utils.translation import gettext as _
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from curation.connections.outbound import check_url
from curation.connections.services import secret_names, secret_value
from curation.core.errors import ServiceError
from curation.io.exports import example_export
from curation.models import Project, ProjectChange
from llm.outbound import OutboundRefused

# The Hub's rule for a repository name: letters, digits, - _ . ; no -- or .. ; at most 96.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
REPO_ID = re.compile(rf"^{_NAME}/{_NAME}$")


class HubPushError(ServiceError):
    """A push that cannot be made or that the Hub refused; ``field`` names the part to correct."""


@dataclass
class HubPush:
    """What a push sent: the repository, its address on the Hub, the commit and the files."""

    repo_id: str
    url: str
    commit_url: str
    files: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def repo_id_clean(value: Any) -> str:
    repo_id = str(value or "").strip()
    if not REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id or repo_id.endswith(".git"):
        raise HubPushError(
            "repo_id",
            _(
                "%(value)r is not a repository id: give owner/name, each of letters, digits, - _ and ., "
                "at most 96 characters, for example kumo/support-data."
            )
            % {"value": repo_id[:200]},
        )
    return repo_id


def _token(secret: Any) -> str:
    name = str(secret or "").strip()
    if name not in secret_names():
        raise HubPushError(
            "secret",
            _(
                "%(name)r is not one of the operator's secrets. Choose one of the list (environment variables "
                "starting with %(prefix)s)."
            )
            % {"name": name, "prefix": settings.SHIKOMI_SECRET_PREFIX},
        )
    token = secret_value(name)
    if token is None:
        raise HubPushError("secret", _("The secret %(name)r is empty; ask the operator to set it.") % {"name": name})
    return token


def _endpoint() -> str:
    endpoint = settings.SHIKOMI_HUB_ENDPOINT
    try:
        check_url(endpoint)
    except OutboundRefused as error:
        raise HubPushError(
            "",
            _(
                "The Hub's address %(endpoint)s is refused: %(error)s. The operator sets it "
                "(SHIKOMI_HUB_ENDPOINT) and the addresses this server may reach (SHIKOMI_OUTBOUND_ALLOW)."
            )
            % {"endpoint": endpoint, "error": error},
        ) from None
    return endpoint


def _files(export_members: list[tuple[str, Any]]) -> list[tuple[str, bytes]]:
    """The export's files in memory, refused as soon as they pass the size limit."""
    limit = settings.SHIKOMI_HUB_MAX_BYTES
    files, size = [], 0
    for name, chunks in export_members:
        parts = []
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise HubPushError(
                    "",
                    _(
                        "The export is larger than %(mb)s MB, the most a push may send. Push fewer examples "
                        "(one split, one label, fewer statuses) or ask the operator to raise SHIKOMI_HUB_MAX_BYTES."
                    )
                    % {"mb": f"{limit / 1024**2:g}"},
                )
            parts.append(chunk)
        files.append((name, b"".join(parts)))
    return files


def hub_push(
    *,
    project: Project,
    user: Any,
    repo_id: Any,
    secret: Any,
    private: bool = True,
    per_split: bool = False,
    **selection: Any,
) -> HubPush:
    """Export ``selection`` (example_export's options) with its data card and commit the files
    to the dataset repository ``repo_id``, creating it (``private`` or public) when it does not
    exist; an existing repository keeps its visibility. Raises HubPushError naming the field,
    with the Hub's status and message when the Hub refused."""
    repo_id = repo_id_clean(repo_id)
    token = _token(secret)
    endpoint = _endpoint()
    export = example_export(project=project, per_split=per_split, card=True, **selection)
    files = _files(export.members)
    api = HfApi(endpoint=endpoint, token=token, library_name="shikomi")
    message = _("Export of %(project)s from Shikomi") % {"project": project.slug}
    try:
        repo = api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=bool(private))
        commit = api.create_commit(
            repo_id,
            repo_type="dataset",
            operations=[CommitOperationAdd(path_in_repo=name, path_or_fileobj=data) for name, data in files],
            commit_message=message,
        )
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else 0
        said = error.server_message or str(error).splitlines()[0]
        raise HubPushError(
            "repo_id",
            _("The Hub at %(endpoint)s refused the push (HTTP %(status)s): %(message)s")
            % {"endpoint": endpoint, "status": status, "message": said},
            status=502,
        ) from None
    except (httpx2.HTTPError, OSError, ValueError) as error:
        raise HubPushError(
            "",
            _("Could not push to the Hub at %(endpoint)s: %(error)s")
            % {"endpoint": endpoint, "error": str(error) or type(error).__name__},
            status=502,
        ) from None
    pushed = HubPush(repo_id, str(repo), commit.commit_url, [name for name, _data in files], export.skipped)
    ProjectChange.objects.create(
        project=project,
        user=user if getattr(user, "is_authenticated", False) else None,
        action="hub_push",
        # "after" is what the settings page's "Recent changes" lists (curation/projects/changes.py).
        detail={
            "after": {"repository": repo_id, "files": ", ".join(pushed.files)},
            "endpoint": endpoint,
            "commit": commit.oid,
        },
    )
    return pushed
