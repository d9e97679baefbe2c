"""Writes to examples: every change goes through here and leaves a revision."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.core.errors import ServiceError
from curation.models import Example, ExampleRevision, Label, Project, UserSettings


def content_hash(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
    """Exact-duplicate key of an example: its messages and its tools, byte for byte. Without
    tools it is the messages' alone, as it always was (docs/data-model.md)."""
    content: Any = {"messages": messages, "tools": tools} if tools else messages
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def search_text(messages: list[dict[str, Any]]) -> str:
    """What search looks in. NFKC folds full- and half-width forms (ｶﾀｶﾅ, ＡＢＣ) so Japanese
    text is found however it was typed; the query is folded the same way."""
    text = "\n".join(m["content"] for m in messages if isinstance(m, dict) and isinstance(m.get("content"), str))
    return fold(text)


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def example_snapshot(example: Example) -> dict[str, Any]:
    """What a revision stores of an example: every field a person can change."""
    return {
        "messages": example.messages,
        "tools": example.tools,
        "label": example.label.name if example.label_id else None,
        "status": example.status,
        "split": example.split,
        "source": example.source,
        "metadata": example.metadata,
    }


class StaleVersion(ServiceError):
    """Someone else saved the example since this version was read."""

    status = 409

    def __init__(self, example: Example) -> None:
        super().__init__("", f"Example {example.pk} has changed: it is now at version {example.version}.")
        self.current = example


class InvalidExample(ServiceError):
    """A field value a person can correct; ``field`` names it."""


def validate_messages(messages: Any, *, needs_reply: bool = False, tools: Any = None) -> list[dict[str, Any]]:
    """The same checks an imported row gets (curation/formats/checks.py), one rule set, and the
    same limits: SHIKOMI_MAX_MESSAGES and SHIKOMI_MAX_ROW_BYTES. With ``tools`` (the example's),
    they are checked too, and every call must name one of them."""
    from curation.formats.checks import check_messages

    errors = check_messages(messages, needs_reply=needs_reply, max_messages=settings.SHIKOMI_MAX_MESSAGES, tools=tools)
    if errors:
        raise InvalidExample(errors[0].field, errors[0].message)
    _check_size(messages, tools=tools)
    return messages


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _check_size(messages: list[dict[str, Any]], metadata: Any = None, tools: Any = None) -> None:
    """An example is no larger than an imported row may be (SHIKOMI_MAX_ROW_BYTES): its messages,
    metadata and tools as JSON. The error names the largest message, where one alone is too large."""
    limit = settings.SHIKOMI_MAX_ROW_BYTES
    size = _json_size(messages) + (_json_size(metadata) if metadata else 0) + (_json_size(tools) if tools else 0)
    if size <= limit:
        return
    sizes = [_json_size(m) for m in messages]
    largest = max(range(len(sizes)), key=sizes.__getitem__)
    if sizes[largest] > limit:
        field, size = f"messages[{largest}].content", sizes[largest]
    elif metadata and _json_size(metadata) > limit:
        field, size = "metadata", _json_size(metadata)
    elif tools and _json_size(tools) > limit:
        field, size = "tools", _json_size(tools)
    else:
        field = "messages"
    raise InvalidExample(
        field,
        _(
            "%(size)d bytes; an example may be at most %(limit)d bytes, as an imported row "
            "(SHIKOMI_MAX_ROW_BYTES). Shorten it."
        )
        % {"size": size, "limit": limit},
    )


def needs_reply(project: Project) -> bool:
    """Chat-shaped projects train on replies; a classification example is a text and a label."""
    return project.kind != Project.Kind.CLASSIFICATION


REVIEW_STATUSES = (Example.Status.APPROVED, Example.Status.REJECTED)


def _check_may_set_status(user: Any, project: Project, status: str) -> None:
    """Approving and rejecting are a reviewer's decisions, whoever else may edit."""
    from curation.core.permissions import Action, can

    if status in REVIEW_STATUSES and user is not None and not can(user, project, Action.REVIEW):
        raise PermissionDenied(_("Only reviewers and admins may mark an example %(status)s.") % {"status": status})


def _may_review(user: Any, project: Project) -> bool:
    from curation.core.permissions import Action, can

    return can(user, project, Action.REVIEW)


def _check_may_set_split(user: Any, project: Project, *, bulk: bool = True) -> None:
    """Splits decide what a model trains and is tested on: the Splits page is for admins, and so
    is moving examples between splits, in bulk or one at a time (an example moved from test to
    train would leak into training)."""
    from curation.core.permissions import Action, can

    if user is not None and not can(user, project, Action.MANAGE_PROJECT):
        if bulk:
            raise PermissionDenied(_("Only admins may move examples between splits in bulk."))
        raise PermissionDenied(_("Only admins may move an example to another split."))


def _label_for(project: Project, name: str | None) -> Label | None:
    if name in (None, ""):
        return None
    label = project.labels.filter(name=name).first()
    if label is None:
        names = ", ".join(project.labels.values_list("name", flat=True)) or _("none defined")
        raise InvalidExample(
            "label", _("%(name)s is not a label of this project (%(names)s).") % {"name": repr(name), "names": names}
        )
    return label


@transaction.atomic
def example_create(
    *,
    project: Project,
    user: Any,
    messages: list[dict[str, Any]],
    label: str | None = None,
    source: str = Example.Source.HUMAN,
    status: str = Example.Status.NEEDS_REVIEW,
    split: str = Example.Split.UNASSIGNED,
    metadata: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
) -> Example:
    tools = tools or []
    messages = validate_messages(messages, needs_reply=needs_reply(project), tools=tools)
    _check_size(messages, metadata, tools)
    _check_may_set_status(user, project, status)
    example = Example.objects.create(
        project=project,
        messages=messages,
        label=_label_for(project, label),
        source=source,
        status=status,
        split=split,
        metadata=metadata or {},
        tools=tools,
        content_hash=content_hash(messages, tools),
        search_text=search_text(messages),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    ExampleRevision.objects.create(
        example=example,
        project=project,
        user=example.created_by,
        action=ExampleRevision.Action.CREATE,
        version=example.version,
        before=None,
        after=example_snapshot(example),
    )
    return example


UPDATABLE = ("messages", "tools", "label", "status", "split", "metadata")


@transaction.atomic
def example_update(
    *,
    example: Example,
    user: Any,
    version: int,
    action: str = ExampleRevision.Action.UPDATE,
    **changes: Any,
) -> Example:
    """Apply ``changes`` if the example is still at ``version``; else raise StaleVersion.

    The compare-and-set is one UPDATE ... WHERE version = %s, so two concurrent saves
    of the same version cannot both win, whatever the database.
    """
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise InvalidExample(sorted(unknown)[0], _("cannot be changed."))
    before = example_snapshot(example)
    fields = _content_fields(example, changes)
    if "label" in changes:
        fields["label"] = _label_for(example.project, changes["label"])
        fields["weak_label"] = None  # a person chose it: no longer the rules' label
    for name, choices in (("status", Example.Status), ("split", Example.Split)):
        if name in changes:
            if changes[name] not in choices.values:
                raise InvalidExample(name, _("must be one of %(values)s.") % {"values": ", ".join(choices.values)})
            fields[name] = changes[name]
    if "status" in fields and fields["status"] != example.status:
        _check_may_set_status(user, example.project, fields["status"])
    if "split" in fields and fields["split"] != example.split:
        _check_may_set_split(user, example.project, bulk=False)
    if "metadata" in changes:
        if not isinstance(changes["metadata"], dict):
            raise InvalidExample("metadata", _("must be an object."))
        fields["metadata"] = changes["metadata"]
        _check_size(fields.get("messages", example.messages), fields["metadata"], fields.get("tools", example.tools))
    if _needs_review_again(user, example, fields):
        fields["status"] = Example.Status.NEEDS_REVIEW

    updated = Example.objects.filter(pk=example.pk, version=version).update(
        version=F("version") + 1, updated_at=timezone.now(), **fields
    )
    if not updated:
        raise StaleVersion(Example.objects.select_related("label").get(pk=example.pk))
    example.refresh_from_db()
    if "status" in fields and before["status"] == Example.Status.DRAFT:
        drafts_decided_outside_queue(
            [example.pk], fields["status"], user if getattr(user, "is_authenticated", False) else None
        )
    ExampleRevision.objects.create(
        example=example,
        project=example.project,
        user=user if getattr(user, "is_authenticated", False) else None,
        action=action,
        version=example.version,
        before=before,
        after=example_snapshot(example),
    )
    return example


def _content_fields(example: Example, changes: dict[str, Any]) -> dict[str, Any]:
    """The checked messages and tools of an update, with the hash and search text they make:
    the two are checked together (every call names one of the tools) and hashed together."""
    if "messages" not in changes and "tools" not in changes:
        return {}
    messages = changes.get("messages", example.messages)
    tools = changes.get("tools", example.tools)
    if tools is None:
        tools = []
    validate_messages(messages, needs_reply=needs_reply(example.project), tools=tools)
    fields: dict[str, Any] = {"content_hash": content_hash(messages, tools)}
    if "messages" in changes:
        fields["messages"] = messages
        fields["search_text"] = search_text(messages)
    if "tools" in changes:
        fields["tools"] = tools
    return fields


def _content_changed(example: Example, fields: dict[str, Any]) -> bool:
    """The messages (their content hash) or the label differ from what was approved."""
    if "content_hash" in fields and fields["content_hash"] != example.content_hash:
        return True
    if "label" in fields:
        return (fields["label"].pk if fields["label"] else None) != example.label_id
    return False


def _needs_review_again(user: Any, example: Example, fields: dict[str, Any]) -> bool:
    """An approval covers the content a reviewer saw: an edit of that content by someone who
    may not approve sends the example back to review (the revision records the change)."""
    return (
        example.status == Example.Status.APPROVED
        and fields.get("status", example.status) == Example.Status.APPROVED
        and user is not None
        and _content_changed(example, fields)
        and not _may_review(user, example.project)
    )


@transaction.atomic
def example_delete(*, example: Example, user: Any) -> None:
    ExampleRevision.objects.create(
        example=None,
        project=example.project,
        user=user if getattr(user, "is_authenticated", False) else None,
        action=ExampleRevision.Action.DELETE,
        version=example.version,
        before={"id": example.pk, **example_snapshot(example)},
        after=None,
    )
    example.delete()


BULK_FIELDS = ("label", "split", "status")


@transaction.atomic
def example_bulk_update(
    *,
    project: Project,
    user: Any,
    changes: dict[str, Any],
    examples: Any = None,
    ids: list[int] | None = None,
    keep_origin: bool = False,
) -> int:
    """Set label, split or status on many examples at once (a queryset, or ids); each
    changed example gets its version bumped and a revision, as a single edit would.
    Returns how many changed. Any number of ids is taken (the splits and the leakage fix move
    whole splits); a request's own list is capped where it comes in (limits.bulk_ids_check).
    A label set by a person replaces an accepted rule label; with ``keep_origin`` (a label
    merge, which moves the rule labels too) the examples keep where their label came from."""
    unknown = set(changes) - set(BULK_FIELDS)
    if unknown or not changes:
        raise InvalidExample(sorted(unknown)[0] if unknown else "action", _("choose label, split or status."))
    fields: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    if "label" in changes:
        label = _label_for(project, changes["label"])
        fields["label"], shown["label"] = label, label.name if label else None
        if not keep_origin:
            fields["weak_label"] = None  # a person chose it: no longer the rules' label
    for name, choices in (("status", Example.Status), ("split", Example.Split)):
        if name in changes:
            if changes[name] not in choices.values:
                raise InvalidExample(name, _("must be one of %(values)s.") % {"values": ", ".join(choices.values)})
            fields[name] = shown[name] = changes[name]
    if "status" in fields:
        _check_may_set_status(user, project, fields["status"])
    if "split" in fields:
        _check_may_set_split(user, project)
    # A label set on approved examples by someone who may not approve sends them back to review.
    demote = "label" in fields and user is not None and not _may_review(user, project)
    author = user if getattr(user, "is_authenticated", False) else None
    if ids is None:
        ids = list(examples.filter(project=project).values_list("pk", flat=True))
    changed = 0
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        rows = (
            Example.objects.select_for_update(of=("self",))
            .filter(project=project, pk__in=chunk)
            .select_related("label")
        )
        revisions, touched, demoted = [], [], []
        for example in rows:
            before = example_snapshot(example)
            after = {**before, **shown}
            if after == before:
                continue
            touched.append(example.pk)
            if demote and before["status"] == Example.Status.APPROVED and after["label"] != before["label"]:
                after["status"] = Example.Status.NEEDS_REVIEW
                demoted.append(example.pk)
            revisions.append(
                ExampleRevision(
                    example=example,
                    project=project,
                    user=author,
                    action=ExampleRevision.Action.UPDATE,
                    version=example.version + 1,
                    before=before,
                    after=after,
                )
            )
        Example.objects.filter(pk__in=touched).update(version=F("version") + 1, updated_at=timezone.now(), **fields)
        Example.objects.filter(pk__in=demoted).update(status=Example.Status.NEEDS_REVIEW)
        ExampleRevision.objects.bulk_create(revisions)
        if "status" in fields:
            drafts_decided_outside_queue(touched, fields["status"], author)
        changed += len(touched)
    return changed


def drafts_decided_outside_queue(example_ids: list[int], status: str, user: Any) -> None:
    """A generated draft approved or rejected on the example pages (not in the review queue)
    counts as decided there too, so the queue and its statistics agree with the example."""
    from curation.models import Draft

    decision = {Example.Status.APPROVED: Draft.Decision.APPROVED, Example.Status.REJECTED: Draft.Decision.REJECTED}
    if status not in decision:
        return
    Draft.objects.filter(example_id__in=example_ids, decision=Draft.Decision.PENDING).update(
        decision=decision[status], reviewed_by=user, reviewed_at=timezone.now()
    )


def user_language_set(*, user: Any, language: str) -> bool:
    """Remember the person's language (it follows them from browser to browser); False, and
    nothing saved, for a language this site does not offer."""
    if language not in dict(settings.LANGUAGES):
        return False
    UserSettings.objects.update_or_create(user=user, defaults={"language": language})
    return True
