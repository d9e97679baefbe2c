"""Checks every row passes once in the canonical shape, whatever format it came from
(docs/data-model.md): the messages, their tool calls and results, the example's tools."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from curation.formats.rows import ROLES, SPLIT_ALIASES, SPLITS, ReadMemo, ReadOptions, Row, RowError, describe

# "function_call" is OpenAI's legacy single call; readers turn it into tool_calls, and it is
# still accepted where it was written by hand.
_KEYS = ("role", "content", "name", "weight", "reasoning", "tool_calls", "tool_call_id", "function_call")
MESSAGE_KEYS = frozenset(_KEYS)
_MESSAGE_KEYS_TEXT = ", ".join(_KEYS)
_ROLES_TEXT = ", ".join(ROLES)
# Keys only an assistant turn may have, and the roles of a tool result ("function" is the old name).
_ASSISTANT_KEYS = ("reasoning", "tool_calls", "weight", "function_call")
_RESULT_ROLES = ("tool", "function")
_TURN_KEYS = (*_ASSISTANT_KEYS, "tool_call_id")
# The keys a message of each role may have without one of _TURN_KEYS being out of place.
_ROLE_KEYS = {
    role: MESSAGE_KEYS.difference(
        key for key in _TURN_KEYS if not (role in _RESULT_ROLES if key == "tool_call_id" else role == "assistant")
    )
    for role in ROLES
}
_CALL_SHAPE = '{"id": ..., "type": "function", "function": {"name": ..., "arguments": ...}}'
_TOOL_SHAPE = '{"type": "function", "function": {"name": ..., "description": ..., "parameters": {...}}}'


@dataclass(slots=True)
class _Calls:
    """What the checks of one conversation remember from message to message."""

    names: frozenset[str] | None = None  # the example's tool names; None: any name
    any: bool = False  # the conversation makes tool calls
    ids: dict[str, str] = field(default_factory=dict)  # call id -> where it was made


def check_row(row: Row, labels: Collection[str], options: ReadOptions) -> Row:
    """Add to ``row.errors`` what is wrong, and normalise label, split, metadata and tools."""
    look = row.messages is not None or not row.errors
    names = _check_tools(row, options.memo)
    if look:
        _check_messages(
            row,
            needs_reply=row.chat and not options.classification,
            max_messages=options.max_messages,
            tool_names=names,
        )
    _check_label(row, labels)
    _check_split(row, options.split)
    if not isinstance(row.metadata, dict):
        row.error(
            "invalid_field",
            "metadata",
            _("expected an object {...}, found %(found)s") % {"found": describe(row.metadata)},
        )
    elif row.metadata and not row.nul_free and _has_nul(row.metadata):
        row.error("nul_byte", "metadata", _("contains a NUL character (\\u0000), which cannot be stored; remove it"))
    return row


def _has_nul(value: Any) -> bool:
    """NUL anywhere in a JSON value: PostgreSQL cannot store it in text or jsonb. Not called for
    a row whose JSON text had no \\u0000 escape (Row.nul_free): it cannot hold one."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def check_messages(
    messages: Any, *, needs_reply: bool, max_messages: int | None = None, tools: Any = None
) -> list[RowError]:
    """What is wrong with a list of messages (and the example's tools), for callers outside
    an import."""
    row = Row(0, messages=messages, tools=[] if tools is None else tools)
    names = _check_tools(row)
    _check_messages(row, needs_reply=needs_reply, max_messages=max_messages, tool_names=names)
    return row.errors


# --- tools -------------------------------------------------------------------------------


def _check_tools(row: Row, memo: ReadMemo | None = None) -> frozenset[str] | None:
    """Add what is wrong with ``row.tools``; the names a call may use, or None for any name
    (no tools, or tools too broken to judge calls by). A list that the file's reading shares
    between rows (``memo``, see ReadMemo) is checked once, when nothing is wrong with it."""
    tools = row.tools
    if tools is None:
        row.tools = tools = []
    if memo is not None and (seen := memo.checked.get(id(tools))) is not None and seen[0] is tools:
        return seen[1]
    errors = len(row.errors)
    names = _check_tool_list(row, tools)
    if memo is not None and len(row.errors) == errors and memo.shared.get(id(tools)) is tools:
        memo.checked[id(tools)] = (tools, names)
    return names


def _check_tool_list(row: Row, tools: Any) -> frozenset[str] | None:
    if not isinstance(tools, list):
        row.error(
            "invalid_field",
            "tools",
            _("expected a list of tools %(shape)s, found %(found)s") % {"shape": _TOOL_SHAPE, "found": describe(tools)},
        )
        return None
    if not tools:
        return None
    errors = len(row.errors)
    names: dict[str, int] = {}
    for i, tool in enumerate(tools):
        name = _check_tool(row, f"tools[{i}]", tool)
        if name is None:
            continue
        if name in names:
            row.error(
                "duplicate_tool",
                f"tools[{i}].function.name",
                _('the function "%(name)s" is already defined by tools[%(first)d]; each tool needs its own name')
                % {"name": name, "first": names[name]},
            )
        else:
            names[name] = i
    if not row.nul_free and _has_nul(tools):
        row.error("nul_byte", "tools", _("contains a NUL character (\\u0000), which cannot be stored; remove it"))
    return frozenset(names) if len(row.errors) == errors else None


def _check_tool(row: Row, where: str, tool: Any) -> str | None:
    """Add what is wrong with one tool definition; its function's name when it has one."""
    if not isinstance(tool, dict):
        row.error(
            "invalid_field",
            where,
            _("expected a tool %(shape)s, found %(found)s") % {"shape": _TOOL_SHAPE, "found": describe(tool)},
        )
        return None
    if tool.get("type") != "function":
        row.error("invalid_field", f"{where}.type", _expected_function(tool, "type"))
    function = tool.get("function")
    if not isinstance(function, dict):
        row.error(
            "invalid_field",
            f"{where}.function",
            _('expected an object {"name": ..., "description": ..., "parameters": {...}}, found %(found)s')
            % {"found": describe(function) if "function" in tool else _("nothing")},
        )
        return None
    name = _check_name(row, f"{where}.function.name", function)
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        row.error(
            "invalid_field",
            f"{where}.function.description",
            _("expected text, found %(found)s") % {"found": describe(description)},
        )
    parameters = function.get("parameters")
    if "parameters" in function and not isinstance(parameters, dict):
        row.error(
            "invalid_field",
            f"{where}.function.parameters",
            _('expected a JSON schema object {"type": "object", "properties": {...}}, found %(found)s')
            % {"found": describe(parameters)},
        )
    return name


def _expected_function(value: dict[str, Any], key: str) -> str:
    if key not in value:
        return _('no type; expected "function"')
    found = value[key]
    return _('expected "function", found %(found)s') % {
        "found": f'"{found}"' if isinstance(found, str) else describe(found)
    }


def _check_name(row: Row, where: str, function: dict[str, Any]) -> str | None:
    """Add what is wrong with a function's name; the name when it is good."""
    name = function.get("name")
    if isinstance(name, str) and name.strip():
        return name
    if name is None:
        row.error("missing_name", where, _("no name; expected the function's name"))
    else:
        row.error(
            "invalid_field",
            where,
            _("expected the function's name (text), found %(found)s")
            % {"found": _("empty text") if isinstance(name, str) else describe(name)},
        )
    return None


# --- messages ----------------------------------------------------------------------------


def _check_messages(
    row: Row, *, needs_reply: bool, max_messages: int | None = None, tool_names: frozenset[str] | None = None
) -> None:
    messages = row.messages
    if not _check_message_list(row, messages, max_messages):
        return
    calls = _Calls(names=tool_names, any=any(isinstance(m, dict) and m.get("tool_calls") for m in messages))
    has_reply = False
    for i, message in enumerate(messages):
        has_reply = _check_message(row, f"messages[{i}]", message, calls) or has_reply
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


def _check_message(row: Row, where: str, message: Any, calls: _Calls) -> bool:
    """Add what is wrong with one message; whether it is an assistant reply."""
    if not isinstance(message, dict):
        row.error(
            "invalid_field",
            where,
            _('expected an object {"role": ..., "content": ...}, found %(found)s') % {"found": describe(message)},
        )
        return False
    if (len(message) > 2 or "role" not in message or "content" not in message) and not MESSAGE_KEYS.issuperset(message):
        for key in message:
            if key not in MESSAGE_KEYS:
                row.error(
                    "unrecognised_key",
                    f"{where}.{key}",
                    _('unrecognised key "%(key)s"; a message may have %(keys)s')
                    % {"key": key, "keys": _MESSAGE_KEYS_TEXT},
                )
    role = _check_role(row, where, message.get("role"))
    _check_content(row, where, message, role)
    if len(message) > 2 or (calls.any and role in _RESULT_ROLES):
        _check_turn_keys(row, where, message, role, calls)
    if len(message) > 2 and not row.nul_free:
        if _has_nul({k: v for k, v in message.items() if k != "content"}):
            row.error("nul_byte", where, _("contains a NUL character (\\u0000), which cannot be stored; remove it"))
    return role == "assistant"


def _check_role(row: Row, where: str, role: Any) -> str | None:
    """Add what is wrong with a message's role; the role when it is one of ROLES."""
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
    else:
        return role
    return None


def _check_content(row: Row, where: str, message: dict[str, Any], role: str | None) -> None:
    """Add what is wrong with a message's content; an assistant's tool call may stand in for it."""
    calls = role in ("assistant", None) and (message.get("tool_calls") or message.get("function_call"))
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


def _check_turn_keys(row: Row, where: str, message: dict[str, Any], role: str | None, calls: _Calls) -> None:
    """Add what is wrong with the keys beyond role and content: each on its roles, each of its type."""
    for key in _TURN_KEYS if role is not None and not _ROLE_KEYS.get(role, MESSAGE_KEYS).issuperset(message) else ():
        if key not in message:
            continue
        belongs = role in _RESULT_ROLES if key == "tool_call_id" else role == "assistant"
        if not belongs:
            row.error(
                "misplaced_key",
                f"{where}.{key}",
                _('"%(key)s" belongs on %(roles)s messages, not on a "%(role)s" message')
                % {"key": key, "roles": "tool" if key == "tool_call_id" else "assistant", "role": role},
            )
    if role == "assistant":
        _check_reasoning_and_weight(row, where, message)
        if "tool_calls" in message:
            _check_tool_calls(row, f"{where}.tool_calls", message["tool_calls"], calls)
    elif role in _RESULT_ROLES:
        _check_tool_result(row, where, message, calls)


def _check_reasoning_and_weight(row: Row, where: str, message: dict[str, Any]) -> None:
    reasoning = message.get("reasoning")
    if "reasoning" in message and not isinstance(reasoning, str):
        row.error(
            "invalid_field",
            f"{where}.reasoning",
            _("expected the reasoning as text, found %(found)s") % {"found": describe(reasoning)},
        )
    weight = message.get("weight")
    if "weight" in message and (isinstance(weight, bool) or weight not in (0, 1)):
        row.error(
            "invalid_field",
            f"{where}.weight",
            _("expected 1 (train on this turn) or 0 (do not), found %(found)s") % {"found": describe(weight)},
        )


def _check_tool_calls(row: Row, where: str, value: Any, calls: _Calls) -> None:
    if not isinstance(value, list):
        row.error(
            "invalid_field",
            where,
            _("expected a list of calls %(shape)s, found %(found)s") % {"shape": _CALL_SHAPE, "found": describe(value)},
        )
        return
    if not value:
        row.error(
            "empty_tool_calls",
            where,
            _('the list of tool calls is empty; remove "tool_calls" or add a call'),
        )
    for j, call in enumerate(value):
        _check_tool_call(row, f"{where}[{j}]", call, calls)


def _check_tool_call(row: Row, where: str, call: Any, calls: _Calls) -> None:
    """Add what is wrong with one call: its id, its type, its function and arguments."""
    if not isinstance(call, dict):
        row.error(
            "invalid_field",
            where,
            _("expected a call %(shape)s, found %(found)s") % {"shape": _CALL_SHAPE, "found": describe(call)},
        )
        return
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id.strip():
        row.error(
            "missing_call_id" if call_id is None else "invalid_field",
            f"{where}.id",
            _("expected the call's id, text such as call_0, found %(found)s")
            % {"found": _("nothing") if "id" not in call else describe(call_id) if call_id else _("empty text")},
        )
    elif call_id in calls.ids:
        row.error(
            "duplicate_call_id",
            f"{where}.id",
            _('the id "%(id)s" is already used by %(first)s; each call needs its own id')
            % {"id": call_id, "first": calls.ids[call_id]},
        )
    else:
        calls.ids[call_id] = where
    if call.get("type") != "function":
        row.error("invalid_field", f"{where}.type", _expected_function(call, "type"))
    function = call.get("function")
    if not isinstance(function, dict):
        row.error(
            "invalid_field",
            f"{where}.function",
            _('expected an object {"name": ..., "arguments": ...}, found %(found)s')
            % {"found": describe(function) if "function" in call else _("nothing")},
        )
        return
    name = _check_name(row, f"{where}.function.name", function)
    if name is not None and calls.names is not None and name not in calls.names:
        row.error(
            "unknown_function",
            f"{where}.function.name",
            _('unknown function "%(name)s"; this example\'s tools are: %(names)s')
            % {"name": name, "names": ", ".join(sorted(calls.names))},
        )
    _check_arguments(row, f"{where}.function.arguments", function)


def _check_arguments(row: Row, where: str, function: dict[str, Any]) -> None:
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        row.error(
            "missing_arguments" if arguments is None else "invalid_field",
            where,
            _(
                'expected the arguments as a JSON object written as text, such as "{\\"city\\": \\"Kyoto\\"}", '
                "found %(found)s"
            )
            % {"found": _("nothing") if "arguments" not in function else describe(arguments)},
        )
        return
    try:
        value = json.loads(arguments)
    except ValueError as exc:
        row.error(
            "invalid_arguments",
            where,
            _("not valid JSON (%(error)s); expected a JSON object written as text") % {"error": exc},
        )
        return
    if not isinstance(value, dict):
        row.error(
            "invalid_arguments",
            where,
            _("expected a JSON object {...} written as text, found %(found)s") % {"found": describe(value)},
        )


def _check_tool_result(row: Row, where: str, message: dict[str, Any], calls: _Calls) -> None:
    """A tool result names the earlier call it answers, when the conversation makes calls."""
    if "tool_call_id" not in message:
        if calls.any:
            row.error(
                "missing_tool_call_id",
                f"{where}.tool_call_id",
                _("no tool_call_id; a tool result must name the earlier call it answers (%(ids)s)")
                % {"ids": _call_ids(calls)},
            )
        return
    call_id = message["tool_call_id"]
    if not isinstance(call_id, str) or not call_id.strip():
        row.error(
            "invalid_field",
            f"{where}.tool_call_id",
            _("expected the id of the call this result answers, found %(found)s")
            % {"found": _("empty text") if isinstance(call_id, str) else describe(call_id)},
        )
    elif calls.any and call_id not in calls.ids:
        row.error(
            "unknown_tool_call_id",
            f"{where}.tool_call_id",
            _('no earlier tool call has the id "%(id)s"; expected the id of the call it answers (%(ids)s)')
            % {"id": call_id, "ids": _call_ids(calls)},
        )


def _call_ids(calls: _Calls) -> str:
    if not calls.ids:
        return _("no call comes before this result")
    return _("the earlier calls are %(ids)s") % {"ids": ", ".join(calls.ids)}


# --- label and split ----------------------------------------------------------------


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
