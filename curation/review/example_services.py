"""Decisions in the review queue for examples that need review: approve (with the label as the
reviewer chose it, and the conversation as they edited it) or reject. Each decision is one
example_update, so it is checked against the version the reviewer saw and recorded in the
example's history like any other change.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from curation.core.errors import ServiceError
from curation.core.services import InvalidExample, example_update
from curation.models import Example

APPROVE, REJECT = "approve", "reject"
ACTIONS = (APPROVE, REJECT)
KEEP = object()  # the label as it is


class NotWaiting(ServiceError):
    """The example no longer needs review: someone decided it, or changed it, first."""

    status = 409

    def __init__(self, example: Example) -> None:
        super().__init__(
            "",
            _("Example %(id)s no longer needs review: it is %(status)s now.")
            % {"id": example.pk, "status": example.get_status_display()},
        )
        self.current = example


@transaction.atomic
def example_review_decide(
    *,
    example: Example,
    user: Any,
    version: int,
    action: str,
    label: Any = KEEP,
    messages: list[dict[str, Any]] | None = None,
) -> Example:
    """Approve or reject an example that needs review, as of `version` (StaleVersion, a 409,
    when it changed since). Approving takes `label` (a label name, None or "" for no label; KEEP
    leaves it) and `messages` when the reviewer edited the conversation; rejecting changes
    nothing else. A label given unchanged is not set again, so a label the rules gave keeps its
    origin when a reviewer approves it as it is."""
    if action not in ACTIONS:
        raise InvalidExample("action", _("Choose approve or reject."))
    current = Example.objects.select_for_update(of=("self",)).select_related("label", "project").get(pk=example.pk)
    if current.status != Example.Status.NEEDS_REVIEW and current.version == version:
        raise NotWaiting(current)
    if action == REJECT:
        return example_update(example=current, user=user, version=version, status=Example.Status.REJECTED)
    changes: dict[str, Any] = {"status": Example.Status.APPROVED}
    if label is not KEEP and (label or None) != (current.label.name if current.label_id else None):
        changes["label"] = label or None
    if messages is not None and messages != current.messages:
        changes["messages"] = messages
    return example_update(example=current, user=user, version=version, **changes)
