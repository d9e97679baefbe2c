"""What the pages' forms send, read into the canonical shapes (docs/data-model.md), and the chat
editor's turns prepared for its template.

The chat editor (templates/curation/core/_chat_editor.html) sends one of each of these fields per
turn, in order, so the lists stay aligned: ``role``, ``content``, ``reasoning``, ``weight``
("" absent, "1", "0"), ``tool_call_id``, ``tool_calls`` (the turn's calls as JSON text, kept up
to date by static/js/editor.js from the call cards) and ``extra`` (the message's other keys as
JSON, sent back untouched); on the labeling page also ``turn_rating``. Without JavaScript the
hidden fields keep what the page was rendered with, so an untouched turn saves back as it was.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from curation.core.services import InvalidExample
from llm.toolcalls import schema_problem, schema_validator

# The keys the editor edits; the rest of a message travels in "extra" as it came.
EDITED = ("role", "content", "reasoning", "weight", "tool_calls", "tool_call_id")
_PARALLEL = ("reasoning", "weight", "tool_calls", "tool_call_id", "extra")
_PATH_PART = re.compile(r"messages\[(\d+)\]|\.?tool_calls\[(\d+)\]|\.?([a-z_]+)")


def messages_from_post(data) -> list[dict[str, Any]]:
    """The turns of a chat editor, in the canonical shape: only the keys that are set.

    Browsers send textarea line breaks as CRLF; they are stored as LF, so an untouched
    answer compares equal to the original. A value that cannot be read (tool calls that are not
    JSON, a weight other than 0 or 1) is kept as sent, for the checks to name its field."""
    roles, contents = data.getlist("role"), data.getlist("content")
    fields = {name: data.getlist(name) for name in _PARALLEL}
    messages = []
    for i, (role, content) in enumerate(zip(roles, contents, strict=False)):
        value = {name: (values[i] if i < len(values) else "") for name, values in fields.items()}
        message: dict[str, Any] = {"role": role, "content": _lf(content)}
        message.update(_extra(value["extra"]))
        if value["reasoning"].strip():
            message["reasoning"] = _lf(value["reasoning"])
        if value["tool_calls"].strip():
            message["tool_calls"] = _json_or_text(value["tool_calls"])
        if value["tool_call_id"]:
            message["tool_call_id"] = value["tool_call_id"]
        if value["weight"]:
            message["weight"] = {"0": 0, "1": 1}.get(value["weight"], value["weight"])
        messages.append(message)
    return messages


def turn_ratings_from_post(data) -> dict[str, Any]:
    """The per-turn ratings of the labeling page: {message index: rating}, for the turns rated.
    A rating that is not a number is kept as sent, for the service to refuse."""
    ratings: dict[str, Any] = {}
    for i, value in enumerate(data.getlist("turn_rating")):
        if value:
            number = int_or_none(value)
            ratings[str(i)] = value if number is None else number
    return ratings


def int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _extra(text: str) -> dict[str, Any]:
    """The message's keys the editor does not edit (a speaker's ``name``, say), as rendered."""
    value = _json_or_text(text) if text else {}
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if k not in EDITED}


# --- The editor's turns -----------------------------------------------------------------------


def tool_names(tools: Any) -> list[str]:
    """The names of the functions an example's tools define, in their order."""
    return list(_schemas(tools))


def _schemas(tools: Any) -> dict[str, dict[str, Any]]:
    """Function name -> its parameters schema (an object of anything when it has none)."""
    found: dict[str, dict[str, Any]] = {}
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            parameters = function.get("parameters")
            found[function["name"]] = parameters if isinstance(parameters, dict) else {"type": "object"}
    return found


def editor_tools(tools: Any) -> list[dict[str, str]]:
    """The example's tools as the editor lists them (read-only): name, description, parameters."""
    shown = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict):
            shown.append(
                {
                    "name": str(function.get("name", "")),
                    "description": str(function.get("description") or ""),
                    "parameters": json.dumps(function.get("parameters", {}), ensure_ascii=False, indent=2),
                }
            )
    return shown


def editor_turns(messages: Any, tools: Any, ratings: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Each message with what its turn in the editor shows; the hidden fields hold the values
    exactly as stored, so a turn saves back as it was when nothing in it is touched."""
    schemas = _schemas(tools)
    turns = []
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict):
            message = {"role": "user", "content": json.dumps(message, ensure_ascii=False)}
        calls = message.get("tool_calls")
        weight = message.get("weight")
        extra = {k: v for k, v in message.items() if k not in EDITED}
        turns.append(
            {
                "role": message.get("role"),
                "content": message.get("content") if isinstance(message.get("content"), str) else "",
                "reasoning": message.get("reasoning") if isinstance(message.get("reasoning"), str) else "",
                "weight": "" if weight is None else json.dumps(weight) if not isinstance(weight, str) else weight,
                "train": weight != 0,
                "tool_call_id": str(message.get("tool_call_id") or ""),
                "calls_json": _calls_text(calls),
                "calls": [_card(call, schemas, tools) for call in calls] if _is_call_list(calls) else [],
                "extra_json": json.dumps(extra, ensure_ascii=False) if extra else "",
                "rating": (ratings or {}).get(str(i), ""),
            }
        )
    return turns


def _calls_text(calls: Any) -> str:
    if calls is None:
        return ""
    return calls if isinstance(calls, str) else json.dumps(calls, ensure_ascii=False)


def _is_call_list(calls: Any) -> bool:
    return isinstance(calls, list) and all(isinstance(c, dict) for c in calls)


def _card(call: dict[str, Any], schemas: dict[str, dict[str, Any]], tools: Any) -> dict[str, Any]:
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    name = function.get("name") if isinstance(function.get("name"), str) else ""
    arguments = function.get("arguments")
    text = arguments if isinstance(arguments, str) else "" if arguments is None else json.dumps(arguments)
    return {
        "id": str(call.get("id") or ""),
        "name": name,
        "known": not schemas or name in schemas,
        "arguments": text,
        "json": json.dumps(call, ensure_ascii=False),
        "error": argument_problem(name, text, tools),
    }


# --- Arguments against their function's schema ---------------------------------------------


def argument_problem(name: str, arguments: str, tools: Any) -> str:
    """What is wrong with one call's function and arguments, as the canonical checks and the
    function's ``parameters`` schema say; "" when nothing is."""
    size = len(arguments.encode("utf-8", "surrogatepass"))
    if size > settings.SHIKOMI_MAX_ROW_BYTES:
        return _("%(size)d bytes; an example may be at most %(limit)d bytes (SHIKOMI_MAX_ROW_BYTES).") % {
            "size": size,
            "limit": settings.SHIKOMI_MAX_ROW_BYTES,
        }
    from curation.formats.checks import check_messages

    call = {"id": "call", "type": "function", "function": {"name": name, "arguments": arguments}}
    message = {"role": "assistant", "content": "", "tool_calls": [call]}
    for error in check_messages([message], needs_reply=False, tools=tools):
        if error.field.startswith("messages[0].tool_calls[0].function"):
            return error.message
    return _schema_problem(_schemas(tools).get(name), json.loads(arguments))


def _schema_problem(schema: dict[str, Any] | None, value: Any) -> str:
    """The first place where ``value`` does not fit ``schema`` (llm/toolcalls.py, as generation
    checks drafted calls); "" when it fits or the tool's own schema is broken (tools are not
    edited here)."""
    if schema is None:
        return ""
    try:
        problem = schema_problem(schema_validator(schema), value)
    except ValueError:
        return ""
    if problem is None or problem.startswith("the schema cannot"):
        return ""
    path, _sep, error = problem.removeprefix("at ").partition(": ")
    return _("%(path)s: %(error)s") % {"path": path, "error": error}


def arguments_check(messages: Any, tools: Any) -> None:
    """Raise InvalidExample for the first call whose arguments do not fit its function's schema,
    naming the field (``messages[2].tool_calls[0].function.arguments``)."""
    schemas = _schemas(tools)
    for i, message in enumerate(messages if isinstance(messages, list) and schemas else []):
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if not _is_call_list(calls):
            continue
        for j, call in enumerate(calls):
            function = call.get("function")
            if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
                continue
            try:
                value = json.loads(function["arguments"])
            except ValueError:
                continue  # the canonical checks say so
            problem = _schema_problem(schemas.get(function.get("name")), value)
            if problem:
                raise InvalidExample(f"messages[{i}].tool_calls[{j}].function.arguments", problem)


def field_in_words(field: str) -> str:
    """A checks' field path as the editor shows it: "messages[2].tool_calls[0].function.arguments"
    is "Turn 3, call 1, arguments". A path outside the messages is returned as it is."""
    if not field.startswith("messages["):
        return field
    words = {
        "content": _("content"),
        "reasoning": _("reasoning"),
        "weight": _("train on this turn"),
        "role": _("role"),
        "tool_call_id": _("answers call"),
        "tool_calls": _("tool calls"),
        "id": _("call id"),
        "type": _("type"),
        "name": _("function"),
        "arguments": _("arguments"),
    }
    parts, previous = [], ""
    for turn, call, key in _PATH_PART.findall(field):
        if turn:
            parts.append(_("Turn %(n)d") % {"n": int(turn) + 1})
        elif call:
            parts.append(_("call %(n)d") % {"n": int(call) + 1})
        elif key == "name" and previous != "function":
            parts.append(_("name"))  # a speaker's name, not a function's
        elif key != "function" or field.endswith(".function"):
            parts.append(words.get(key, key))
        previous = key
    return ", ".join(parts)


EDITOR_ROLES = ["system", "user", "assistant", "tool"]


def editor_context(messages: Any, tools: Any, ratings: dict[str, Any] | None = None) -> dict[str, Any]:
    """What templates/curation/core/_chat_editor.html needs besides the project and example."""
    return {
        "turns": editor_turns(messages, tools, ratings),
        "roles": EDITOR_ROLES,
        "tools": editor_tools(tools),
        "tool_names": tool_names(tools),
    }
