"""Pieces of the canonical conversation (docs/data-model.md) that the readers and writers share:
tool definitions, one message from a file's message, call ids, reasoning as ``<think>``, and the
fields an export "with Shikomi fields" adds.

Plain functions over plain dicts; nothing here reads a file or the database.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext as _

from curation.formats.rows import ReadMemo, Row, describe

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
# Example.Status values: a record with an ``id`` and one of these as ``status`` is Shikomi's own.
SHIKOMI_STATUSES = frozenset(("draft", "needs_review", "approved", "rejected"))


def dumps_arguments(value: Any) -> str:
    """Arguments given as an object, as JSON text (how OpenAI writes them)."""
    return json.dumps(value, ensure_ascii=False)


# --- tools ------------------------------------------------------------------------------


def tools_from(value: Any, memo: ReadMemo | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """A file's tool list in OpenAI's shape, or what is wrong with it.

    Accepts OpenAI tool definitions ({"type": "function", "function": {...}}), bare function
    schemas ({"name", "description", "parameters"}, as LLaMA-Factory writes them), or a JSON
    string of either. None, "" and [] are no tools.

    With the ``memo`` of a file's reading, a value seen before (the same JSON text, or a value
    whose repr is the same: repr tells apart every JSON value, 1 from 1.0 and true, and keeps
    the keys' order) gives the same answer, the same list, without converting it again."""
    if memo is None or value is None:
        return _tools_from(value)
    key = (True, value) if isinstance(value, str) else (False, repr(value))
    found = memo.tools.get(key)
    if found is None:
        if len(memo.tools) >= memo.LIMIT or memo.text + len(key[1]) > memo.TEXT_LIMIT:
            memo.forget()
        memo.text += len(key[1])
        found = memo.tools[key] = _tools_from(value)
        memo.shared[id(found[0])] = found[0]
    return found


def _tools_from(value: Any) -> tuple[list[dict[str, Any]], str | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return [], None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            return [], _("not valid JSON: %(error)s at column %(column)d") % {"error": exc.msg, "column": exc.colno}
    if not isinstance(value, list):
        return [], _("expected a list of function schemas, found %(found)s") % {"found": describe(value)}
    tools: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        tool, error = _tool_from(item)
        if error:
            return [], _("tool %(n)d: %(error)s") % {"n": i + 1, "error": error}
        tools.append(tool)
    return tools, None


def _expected_schema() -> str:
    # Built only for an error: gettext on every tool of every row was most of tools_from's time.
    return _('expected a function schema {"name": ..., "description": ..., "parameters": {...}}')


def _tool_from(item: Any) -> tuple[dict[str, Any], str | None]:
    if not isinstance(item, dict):
        return {}, _("%(expected)s, found %(found)s") % {"expected": _expected_schema(), "found": describe(item)}
    if "function" in item or "type" in item:
        if item.get("type") != "function" or not isinstance(item.get("function"), dict):
            return {}, _('expected {"type": "function", "function": {...}}; only function tools are supported')
        tool, function = dict(item), item["function"]
    else:
        tool, function = {"type": "function", "function": item}, item
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        return {}, _('%(expected)s; "name" is missing or not text') % {"expected": _expected_schema()}
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        return {}, _('"parameters" of %(name)s must be a JSON schema object, found %(found)s') % {
            "name": name,
            "found": describe(parameters),
        }
    return tool, None


def bare_schemas(tools: list[dict[str, Any]]) -> list[Any]:
    """OpenAI tool definitions as the bare function schemas LLaMA-Factory lists."""
    return [tool.get("function", tool) if isinstance(tool, dict) else tool for tool in tools]


# --- messages ---------------------------------------------------------------------------


def message_from(record_message: Any) -> Any:
    """One message of a file in the canonical shape. What cannot be made canonical is left as it
    is, for the checks to report with its field."""
    if not isinstance(record_message, dict):
        return record_message
    if len(record_message) == 2 and _plain_text(record_message):
        return record_message  # by far the most common message: nothing to change
    role = record_message.get("role")
    if role == "tool" and _plain_result(record_message):
        return record_message  # a tool result that names its call: nothing to change either
    if role == "assistant" and _plain_calls(record_message):
        return record_message  # calls with their ids, as OpenAI writes them: nothing to change
    message = dict(record_message)
    if message.get("role") == "function":
        message["role"] = "tool"
    legacy = message.get("function_call")
    if isinstance(legacy, dict) and not message.get("tool_calls"):
        del message["function_call"]
        message["tool_calls"] = [{"type": "function", "function": legacy}]
    if isinstance(message.get("tool_calls"), list):
        message["tool_calls"] = [_call_from(call) for call in message["tool_calls"]]
    _take_reasoning(message)
    if message.get("role") == "assistant" and message.get("tool_calls") and message.get("content") is None:
        message["content"] = ""
    return message


def _plain_text(message: dict[str, Any]) -> bool:
    """A {"role", "content"} message with text that is canonical as it is."""
    role, content = message.get("role"), message.get("content")
    if role in ("user", "system"):
        return isinstance(content, str)
    return role == "assistant" and isinstance(content, str) and not content.startswith(THINK_OPEN)


_RESULT_KEYS = frozenset(("role", "content", "tool_call_id", "name"))


def _plain_result(message: dict[str, Any]) -> bool:
    """A tool result with its call's id and nothing to read differently: message_from would
    copy it unchanged, and assign_call_ids leaves it as it is."""
    return isinstance(message.get("tool_call_id"), str) and _RESULT_KEYS.issuperset(message)


_CALL_TURN_KEYS = frozenset(("role", "content", "tool_calls", "name", "weight", "reasoning"))


def _plain_calls(message: dict[str, Any]) -> bool:
    """An assistant turn with tool calls that message_from would copy unchanged and that
    assign_call_ids leaves as it is: text for content (the reasoning, when there is some, is
    its own key), and calls in OpenAI's shape that each have their id."""
    calls = message.get("tool_calls")
    if not (calls and isinstance(calls, list) and _CALL_TURN_KEYS.issuperset(message)):
        return False
    content = message.get("content")
    if not isinstance(content, str):
        return False
    if "reasoning" in message:
        if message["reasoning"] in (None, ""):
            return False
    elif content.startswith(THINK_OPEN):
        return False
    for call in calls:
        if not (isinstance(call, dict) and isinstance(call.get("id"), str) and call["id"] and "type" in call):
            return False
        function = call.get("function")
        if isinstance(function, dict) and not isinstance(function.get("arguments"), str | None):
            return False
    return True


def _call_from(call: Any) -> Any:
    if not isinstance(call, dict):
        return call
    if "type" in call:
        function = call.get("function")
        if not isinstance(function, dict) or isinstance(function.get("arguments"), str | None):
            return call  # canonical as it is; assign_call_ids replaces a call, never changes it
    call = dict(call)
    call.setdefault("type", "function")
    function = call.get("function")
    if isinstance(function, dict):
        function = dict(function)
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            function["arguments"] = dumps_arguments(arguments)
        call["function"] = function
    return call


def _take_reasoning(message: dict[str, Any]) -> None:
    """``reasoning_content`` or ``reasoning``, else a leading <think> block of an assistant's
    content, into ``reasoning``; an empty one is dropped."""
    other = message.pop("reasoning_content", None)
    if message.get("reasoning") in (None, ""):
        message.pop("reasoning", None)
        if other not in (None, ""):
            message["reasoning"] = other
    elif other not in (None, "") and other != message["reasoning"]:
        message["reasoning_content"] = other  # two different ones: left for the checks to report
    content = message.get("content")
    if "reasoning" in message or message.get("role") != "assistant" or not isinstance(content, str):
        return
    reasoning, rest = split_think(content)
    if reasoning is not None:
        message["content"] = rest
        if reasoning:
            message["reasoning"] = reasoning


def split_think(content: str) -> tuple[str | None, str]:
    """(reasoning, answer) of a text that starts with a <think> block, (None, text) otherwise.
    Newlines around the reasoning and before the answer are the block's, as chat templates
    write them (Qwen3, DeepSeek-R1)."""
    if not content.startswith(THINK_OPEN):
        return None, content
    end = content.find(THINK_CLOSE, len(THINK_OPEN))
    if end < 0:
        return None, content
    reasoning = content[len(THINK_OPEN) : end].strip("\n")
    return reasoning, content[end + len(THINK_CLOSE) :].lstrip("\n")


def with_think(message: dict[str, Any]) -> str:
    """The content with the reasoning put back in front as a <think> block, for formats that
    have no reasoning field; split_think reads it back."""
    content = message.get("content") or ""
    reasoning = message.get("reasoning")
    if not reasoning:
        return content
    return f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{content}"


# --- call ids ---------------------------------------------------------------------------


def assign_call_ids(messages: list[Any]) -> list[int]:
    """Give calls without an id ``call_0``, ``call_1``, ... (the call's place among all calls),
    and each tool result without a ``tool_call_id`` the id of the oldest call still unanswered.
    Changes the messages in place; returns the indexes of tool results that found no call to
    answer in a conversation that has calls."""
    for m in messages:
        if isinstance(m, dict) and ("tool_calls" in m or m.get("role") == "tool"):
            break
    else:
        return []
    used: set[str] | None = None  # the ids the file gave, found when a call needs one made
    unanswered: list[str] = []
    orphans: list[int] = []
    has_calls = False
    position = 0
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        if isinstance(calls, list):
            for j, call in enumerate(calls):
                if not isinstance(call, dict):
                    continue
                has_calls = True
                if not (isinstance(call.get("id"), str) and call["id"]):
                    if used is None:
                        used = _given_ids(messages)
                    rest = {k: v for k, v in call.items() if k != "id"}
                    call = calls[j] = {"id": _fresh_id(position, used), **rest}
                position += 1
                unanswered.append(call["id"])
        elif message.get("role") == "tool":
            answered = message.get("tool_call_id")
            if answered is None and unanswered:
                message["tool_call_id"] = unanswered.pop(0)
            elif answered in unanswered:
                unanswered.remove(answered)
            elif answered is None:
                orphans.append(index)
    return orphans if has_calls else []


def _given_ids(messages: list[Any]) -> set[str]:
    return {
        call["id"]
        for message in messages
        if isinstance(message, dict) and isinstance(message.get("tool_calls"), list)
        for call in message["tool_calls"]
        if isinstance(call, dict) and isinstance(call.get("id"), str) and call["id"]
    }


def _fresh_id(position: int, used: set[str]) -> str:
    candidate = f"call_{position}"
    n = 0
    while candidate in used:
        n += 1
        candidate = f"call_{position}_{n}"
    used.add(candidate)
    return candidate


def call_ids_are_made(messages: list[dict[str, Any]]) -> bool:
    """Whether the conversation's call ids and result ids are the ones assign_call_ids makes
    for it, so that a format without ids (ShareGPT) gives them back."""
    bare: list[dict[str, Any]] = []
    for message in messages:
        copy = {k: v for k, v in message.items() if k != "tool_call_id"}
        if isinstance(message.get("tool_calls"), list):
            copy["tool_calls"] = [{k: v for k, v in c.items() if k != "id"} for c in message["tool_calls"]]
        bare.append(copy)
    if assign_call_ids(bare):
        return False
    for original, made in zip(messages, bare, strict=True):
        if original.get("tool_call_id") != made.get("tool_call_id"):
            return False
        calls = original.get("tool_calls")
        if isinstance(calls, list) and [c.get("id") for c in calls] != [c.get("id") for c in made["tool_calls"]]:
            return False
    return True


# --- Shikomi fields ---------------------------------------------------------------------


def take_shikomi_fields(record: dict[str, Any], row: Row) -> frozenset[str]:
    """The keys of an export "with Shikomi fields" that are Shikomi's own, not extra columns:
    ``id``, ``status`` and ``label_source`` when the record has an id and a status and the
    status is one of Shikomi's (someone else's ``id`` or ``label_source`` stays in metadata).
    The id is dropped (ids are the database's); the status is kept on the row; the label source
    is dropped too: a label a file brings is a person's as far as the importing project knows
    (only an accept in Shikomi makes a label one from rules)."""
    status = record.get("status")
    if "id" not in record or "status" not in record:
        return frozenset()
    if status is not None and not (isinstance(status, str) and status in SHIKOMI_STATUSES):
        return frozenset()
    if status is not None:
        row.status = status
    return SHIKOMI_KEYS


SHIKOMI_KEYS = frozenset(("id", "status", "label_source"))
