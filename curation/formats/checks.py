"""Checks every row passes once in the canonical shape, whatever format it came from."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.utils.translation import gettext as _

from curation.formats.rows import ROLES, SPLIT_ALIASES, SPLITS, ReadOptions, Row, RowError, describe

_KEYS = ("role", "content", "name", "weight", "function_call", "tool_calls", "tool_call_id")
MESSAGE_KEYS = frozenset(_KEYS)
_MESSAGE_KEYS_TEXT = ", ".join(_KEYS)
_ROLES_TEXT = ", ".join(ROLES)


def check_row(row: Row, labels: Collection[str], options: ReadOptions) -> Row:
    """Add to ``row.errors`` what is wrong, and normalise label, split and metadata."""
    if row.messages is not None or not row.errors:
        _check_messages(row, needs_reply=row.chat and not options.classification, max_messages=options.max_messages)
    _check_label(row, labels)
    _check_split(row, options.split)
    if not isinstance(row.metadata, dict):
        row.error(
            "invalid_field",
            "metadata",
            _("expected an object {...}, found %(found)s") % {"found": describe(row.metadata)},
        )
    elif row.metadata and _has_nul(row.metadata):
        row.error("nul_byte", "metadata", _("contains a NUL character (\\u0000), which cannot be stored; remove it"))
    return row


def _has_nul(value: Any) -> bool:
    """NUL anywhere in a JSON value: PostgreSQL cannot store it in text or jsonb."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def check_messages(messages: Any, *, needs_reply: bool, max_messages: int | None = None) -> list[RowError]:
    """What is wrong with a list of messages, for callers outside an import."""
    row = Row(0, messages=messages)
    _check_messages(row, needs_reply=needs_reply, max_messages=max_messages)
    return row.errors


def _check_messages(row: Row, *, needs_reply: bool, max_messages: int | None = None) -> None:
    messages = row.messages
    if not _check_message_list(row, messages, max_messages):
        return
    has_reply = False
    for i, message in enumerate(messages):
        has_reply = _check_message(row, f"messages[{i}]", message) or has_reply
    if needs_reply and not has_reply:
        row.error(
            "no_assistant_message",
            "messages",
            _('no assistant message; a chat example needs at least one reply with role "assistant"'),
        )


def _check_message_list(row: Row, messages: Any, max_messages: int | None) -> bool:
    """Whether ``messages`` is a non-empty list short enough for its messages to be looked at."""
    if not isinstance(messages, list):
        if messages is None:
            message = _('no "messages"; expected a list of {"role": ..., "content": ...}')
        else:
            message = _('"messages" must be a list of {"role": ..., "content": ...}, found %(found)s') % {
                "found": describe(messages)
            }
        row.error("missing_messages", "messages", message)
        return False
    if not messages:
        row.error("empty_messages", "messages", _("the list of messages is empty"))
        return False
    if max_messages is not None and len(messages) > max_messages:
        # Before looking at any message: the count alone is enough to refuse.
        row.error(
            "too_many_messages",
            "messages",
            _("%(n)d messages; an example may have at most %(limit)d (SHIKOMI_MAX_MESSAGES)")
            % {"n": len(messages), "limit": max_messages},
        )
        return False
    return True


def _check_message(row: Row, where: str, message: Any) -> bool:
    """Add what is wrong with one message; whether it is an assistant reply."""
    if not isinstance(message, dict):
        row.error(
            "invalid_field",
            where,
            _('expected an object {"role": ..., "content": ...}, found %(found)s') % {"found": describe(message)},
        )
        return False
    if len(message) > 2 or "role" not in message or "content" not in message:
        for key in message:
            if key not in MESSAGE_KEYS:
                row.error(
                    "unrecognised_key",
                    f"{where}.{key}",
                    _('unrecognised key "%(key)s"; a message may have %(keys)s')
                    % {"key": key, "keys": _MESSAGE_KEYS_TEXT},
                )
    is_reply = _check_role(row, where, message.get("role"))
    _check_content(row, where, message)
    if len(message) > 2 and _has_nul({k: v for k, v in message.items() if k != "content"}):
        row.error("nul_byte", where, _("contains a NUL character (\\u0000), which cannot be stored; remove it"))
    return is_reply


def _check_role(row: Row, where: str, role: Any) -> bool:
    """Add what is wrong with a message's role; whether it is "assistant"."""
    if role is None:
        row.error(
            "missing_role",
            f"{where}.role",
            _("no role; expected one of %(roles)s") % {"roles": _ROLES_TEXT},
        )
    elif not isinstance(role, str):
        row.error(
            "invalid_field",
            f"{where}.role",
            _("expected text, one of %(roles)s, found %(found)s") % {"roles": _ROLES_TEXT, "found": describe(role)},
        )
    elif role not in ROLES:
        row.error(
            "unrecognised_role",
            f"{where}.role",
            _('unrecognised role "%(role)s"; expected one of %(roles)s') % {"role": role, "roles": _ROLES_TEXT},
        )
    return role == "assistant"


def _check_content(row: Row, where: str, message: dict[str, Any]) -> None:
    """Add what is wrong with a message's content; a tool call may stand in for it."""
    calls = message.get("tool_calls") or message.get("function_call")
    content = message.get("content")
    if content is None:
        if not calls:
            row.error(
                "missing_content",
                f"{where}.content",
                _("no content; expected the text of the message"),
            )
    elif not isinstance(content, str):
        row.error(
            "invalid_field",
            f"{where}.content",
            _("expected text, found %(found)s") % {"found": describe(content)},
        )
    elif not content or content.isspace():
        if not calls:
            row.error(
                "empty_content",
                f"{where}.content",
                _("the content is empty; write the text of the message or remove it"),
            )
    elif "\x00" in content:
        row.error(
            "nul_byte",
            f"{where}.content",
            _("contains a NUL character (\\u0000), which cannot be stored; remove it"),
        )


def _check_label(row: Row, labels: Collection[str]) -> None:
    label = row.label
    if label is None or label == "":
        row.label = None
        return
    if not isinstance(label, str):
        row.error(
            "invalid_field",
            "label",
            _("expected a label name, found %(found)s") % {"found": describe(label)},
        )
    elif label.strip() in labels:
        row.label = label.strip()
    elif label not in labels:
        if labels:
            valid = ", ".join(sorted(labels))
            message = _('unknown label "%(label)s"; this project\'s labels are: %(labels)s') % {
                "label": label,
                "labels": valid,
            }
        else:
            message = _('unknown label "%(label)s"; this project has no labels yet: add it first') % {"label": label}
        row.error("unknown_label", "label", message)


def _check_split(row: Row, default: str | None) -> None:
    split: Any = row.split
    if split is None or split == "":
        row.split = default or "unassigned"
        return
    normal = SPLIT_ALIASES.get(split.strip().lower()) if isinstance(split, str) else None
    if normal is None:
        row.error(
            "invalid_field",
            "split",
            _("unrecognised split %(split)s; expected one of %(splits)s, or none")
            % {
                "split": f'"{split}"' if isinstance(split, str) else describe(split),
                "splits": ", ".join(SPLITS),
            },
        )
    else:
        row.split = normal
