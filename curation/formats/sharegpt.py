"""ShareGPT conversation files in LLaMA-Factory's layout:
{"conversations": [{"from", "value"}, ...], "system"?, "tools"?}.

Speakers follow the names used by FastChat and LLaMA-Factory: human/user, gpt/assistant,
system; "function_call" is the assistant calling tools (its value the JSON of {"name",
"arguments"}, or a list of them for parallel calls) and "observation" a tool's answer. Call ids,
which the layout does not have, are made on import (docs/data-model.md); after parallel calls
the answers are one observation each, or one observation holding a JSON list of them.
``tools`` lists bare function schemas, as a JSON string or a list. Reasoning is a leading
<think> block of a gpt turn. Turns written as {"role", "content"} are read too.

Written the same way: a leading system message as the top-level ``system``, calls as
function_call turns (one object, or a list for parallel calls), their answers as observation
turns (one JSON list after parallel calls, as LLaMA-Factory's turn order wants), ``tools`` as a
JSON string of bare schemas. ShareGPT has no turn weights and no call ids: an example with a
weight-0 turn or with ids of its own cannot be held (see cannot_hold).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils.translation import gettext as _

from curation.formats.conversation import (
    assign_call_ids,
    bare_schemas,
    call_ids_are_made,
    dumps_arguments,
    message_from,
    take_shikomi_fields,
    tools_from,
    with_think,
)
from curation.formats.reading import JsonSource
from curation.formats.rows import ExportRow, ReadOptions, Row, describe, dumps, encode_chunks, extras_into_metadata

SPEAKERS = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
}
_SPEAKERS_TEXT = ", ".join(SPEAKERS)
SPEAKER_OF = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation"}
CALL_SPEAKERS = frozenset(("function_call",))
RESULT_SPEAKERS = frozenset(("observation", "tool", "function"))
KNOWN_KEYS = frozenset(("conversations", "system", "tools", "label", "split", "metadata"))
CONTENT_TYPE = "application/json; charset=utf-8"
EXTENSION = "json"


# --- reading ----------------------------------------------------------------------------


def row_from_record(line: int, record: dict[str, Any], options: ReadOptions) -> Row:
    row = Row(line, None, record.get("label"), record.get("split"))
    extras_into_metadata(record, KNOWN_KEYS | take_shikomi_fields(record, row), row)
    tools, error = tools_from(record.get("tools"), options.memo)
    if error:
        row.error("invalid_field", "tools", error)
    row.tools = tools
    turns = record.get("conversations")
    if turns is None:
        return row.error(
            "missing_field",
            "conversations",
            _('no "conversations"; expected a list of {"from": ..., "value": ...}'),
        )
    if not isinstance(turns, list):
        return row.error(
            "invalid_field",
            "conversations",
            _('expected a list of {"from": ..., "value": ...}, found %(found)s') % {"found": describe(turns)},
        )
    messages: list[dict[str, Any]] = []
    turn_of: list[int] = []  # the turn each message came from, to name it in an error
    system = record.get("system")
    if system is not None:
        if not isinstance(system, str):
            row.error("invalid_field", "system", _("expected text, found %(found)s") % {"found": describe(system)})
        elif system.strip():
            messages.append({"role": "system", "content": system})
            turn_of.append(-1)
    for i, turn in enumerate(turns):
        for message in _messages_of_turn(row, i, turn, turns):
            messages.append(message)
            turn_of.append(i)
    for index in assign_call_ids(messages):
        row.error(
            "unknown_call",
            f"conversations[{turn_of[index]}]",
            _("this observation answers no function call: every call before it already has its answer"),
        )
    if not row.errors:
        row.messages = messages
    return row


def _speaker(row: Row, where: str, turn: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the turn's speaker in lower case, its canonical role), with an error where unknown."""
    speaker = turn.get("from", turn.get("role"))
    name = speaker.strip().lower() if isinstance(speaker, str) else None
    role = SPEAKERS.get(name) if name is not None else None
    if speaker is None:
        row.error(
            "missing_role",
            f"{where}.from",
            _('no "from"; expected one of %(speakers)s') % {"speakers": _SPEAKERS_TEXT},
        )
    elif role is None:
        row.error(
            "unrecognised_role",
            f"{where}.from",
            _("unrecognised speaker %(speaker)s; expected one of %(speakers)s")
            % {
                "speaker": f'"{speaker}"' if isinstance(speaker, str) else describe(speaker),
                "speakers": _SPEAKERS_TEXT,
            },
        )
    return name, role


def _messages_of_turn(row: Row, i: int, turn: Any, turns: list[Any]) -> list[dict[str, Any]]:
    where = f"conversations[{i}]"
    if not isinstance(turn, dict):
        row.error(
            "invalid_field",
            where,
            _('expected an object {"from": ..., "value": ...}, found %(found)s') % {"found": describe(turn)},
        )
        return []
    speaker, role = _speaker(row, where, turn)
    value = turn.get("value", turn.get("content"))
    if value is None:
        row.error("missing_content", f"{where}.value", _('no "value"; expected the text of the turn'))
        return []
    if not isinstance(value, str):
        row.error("invalid_field", f"{where}.value", _("expected text, found %(found)s") % {"found": describe(value)})
        return []
    if not value.strip():
        row.error("empty_content", f"{where}.value", _("the turn is empty; write its text or remove it"))
        return []
    if role is None:
        return []
    if speaker in CALL_SPEAKERS:
        calls = _calls_from(row, f"{where}.value", value)
        return [{"role": "assistant", "content": "", "tool_calls": calls}] if calls else []
    if speaker in RESULT_SPEAKERS:
        return [{"role": "tool", "content": content} for content in _results_of(i, value, turns)]
    message = {"role": role, "content": value}
    return [message_from(message) if role == "assistant" else message]


def _calls_from(row: Row, field: str, value: str) -> list[dict[str, Any]]:
    """The calls of a function_call turn: {"name", "arguments"} or a list of them."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        row.error(
            "invalid_json",
            field,
            _('not valid JSON: %(error)s at column %(column)d; a function call is {"name": ..., "arguments": {...}}')
            % {"error": exc.msg, "column": exc.colno},
        )
        return []
    items = parsed if isinstance(parsed, list) else [parsed]
    calls: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        where = f"{field}[{n}]" if isinstance(parsed, list) else field
        name = item.get("name") if isinstance(item, dict) else None
        arguments = item.get("arguments", {}) if isinstance(item, dict) else None
        if not isinstance(name, str) or not name.strip():
            row.error(
                "invalid_field",
                where,
                _('expected a function call {"name": ..., "arguments": {...}}, found %(found)s')
                % {"found": describe(item)},
            )
        elif not isinstance(arguments, dict | str):
            row.error(
                "invalid_field",
                where,
                _('the "arguments" of %(name)s must be a JSON object, found %(found)s')
                % {"name": name, "found": describe(arguments)},
            )
        else:
            text = arguments if isinstance(arguments, str) else dumps_arguments(arguments)
            calls.append({"type": "function", "function": {"name": name, "arguments": text}})
    if not items:
        row.error("invalid_field", field, _("the list of function calls is empty"))
    return calls if len(calls) == len(items) else []


def _results_of(i: int, value: str, turns: list[Any]) -> list[str]:
    """The answers an observation holds: one, or one per call when it is the only observation
    after a turn of several parallel calls and its value is a JSON list of as many answers."""
    count = _parallel_calls_before(i, turns)
    if count < 2 or _is_result(turns[i + 1] if i + 1 < len(turns) else None):
        return [value]
    return _split_answers(value, count) or [value]


def _split_answers(value: str, count: int) -> list[str] | None:
    """The ``count`` answers of a JSON list of them, or None when ``value`` is not one."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, list) or len(parsed) != count:
        return None
    return [item if isinstance(item, str) else dumps(item) for item in parsed]


def _is_result(turn: Any) -> bool:
    speaker = turn.get("from", turn.get("role")) if isinstance(turn, dict) else None
    return isinstance(speaker, str) and speaker.strip().lower() in RESULT_SPEAKERS


def _parallel_calls_before(i: int, turns: list[Any]) -> int:
    """How many calls the turn just before turn ``i`` makes (0 when it is not a function_call)."""
    previous = turns[i - 1] if i > 0 else None
    if not isinstance(previous, dict):
        return 0
    speaker = previous.get("from", previous.get("role"))
    value = previous.get("value", previous.get("content"))
    if not (isinstance(speaker, str) and speaker.strip().lower() in CALL_SPEAKERS and isinstance(value, str)):
        return 0
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return 0
    return len(parsed) if isinstance(parsed, list) else 1


def read(path: str | os.PathLike[str], options: ReadOptions) -> JsonSource:
    return JsonSource(path, options, row_from_record)


# --- writing ----------------------------------------------------------------------------


def _call_of(call: dict[str, Any]) -> dict[str, Any]:
    """A canonical call as LLaMA-Factory writes one: arguments as an object when the text is
    exactly how this module reads an object back, else as the text itself (nothing is lost)."""
    function = call.get("function") or {}
    arguments = function.get("arguments", "{}")
    try:
        parsed = json.loads(arguments)
    except (TypeError, ValueError):
        parsed = None
    if isinstance(parsed, dict) and dumps_arguments(parsed) == arguments:
        arguments = parsed
    return {"name": function.get("name"), "arguments": arguments}


def _result_item(content: str) -> Any:
    """One answer inside an observation's JSON list: the JSON value itself when reading it back
    gives the same text, else the text."""
    try:
        parsed = json.loads(content)
    except ValueError:
        return content
    return parsed if isinstance(parsed, dict | list) and dumps(parsed) == content else content


def to_turns(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The conversation's turns; a leading system message is left to the caller."""
    turns: list[dict[str, str]] = []
    i = 0
    while i < len(messages):
        message = messages[i]
        role = message.get("role", "user")
        calls = message.get("tool_calls") if role == "assistant" else None
        if calls:
            items = [_call_of(c) for c in calls]
            value = items[0] if len(items) == 1 else items
            turns.append({"from": "function_call", "value": dumps(value)})
            answers = _answers_after(messages, i, len(calls))
            if len(calls) > 1 and len(answers) == len(calls):
                items = [_result_item(m.get("content") or "") for m in answers]
                turns.append({"from": "observation", "value": dumps(items)})
                i += len(answers)
        elif role == "assistant":
            turns.append({"from": "gpt", "value": with_think(message)})
        else:
            turns.append({"from": SPEAKER_OF.get(role, role), "value": message.get("content") or ""})
        i += 1
    return turns


def _answers_after(messages: list[dict[str, Any]], i: int, count: int) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    for message in messages[i + 1 : i + 1 + count]:
        if message.get("role") != "tool":
            break
        answers.append(message)
    if i + 1 + len(answers) < len(messages) and messages[i + 1 + len(answers)].get("role") == "tool":
        return []  # more answers than calls: each its own observation
    return answers


def record_of(row: ExportRow, *, shikomi_fields: bool = False) -> dict[str, Any]:
    messages = row.messages
    record: dict[str, Any] = {}
    if messages and messages[0].get("role") == "system":
        record["system"] = messages[0].get("content") or ""
        messages = messages[1:]
    record["conversations"] = to_turns(messages)
    if row.tools:
        record["tools"] = dumps(bare_schemas(row.tools))
    if row.label is not None:
        record["label"] = row.label
    if row.split and row.split != "unassigned":
        record["split"] = row.split
    if shikomi_fields:
        record.update(id=row.id, status=row.status, label_source=row.label_source, metadata=row.metadata)
    return record


def cannot_hold(row: ExportRow) -> str | None:
    """Why this layout cannot give the example back as it is, or None when it can."""
    calls = False
    for m in row.messages:
        if m.get("weight") == 0:
            return _("turn weights")
        if "name" in m:
            return _("speaker names")
        if m.get("tool_calls"):
            if m.get("content") or m.get("reasoning"):
                return _("text or reasoning beside tool calls")
            calls = True
        calls = calls or "tool_call_id" in m
    if calls and (not call_ids_are_made(row.messages) or _answers_would_split(row.messages)):
        return _("call ids")
    return None


def _answers_would_split(messages: list[dict[str, Any]]) -> bool:
    """A lone answer after parallel calls whose text is a JSON list of as many answers would be
    read back as one answer per call."""
    for i, message in enumerate(messages):
        calls = message.get("tool_calls")
        if message.get("role") != "assistant" or not calls or len(calls) < 2:
            continue
        following = [m.get("role") == "tool" for m in messages[i + 1 : i + 3]]
        if following[:1] == [True] and following[1:] != [True]:
            if _split_answers(messages[i + 1].get("content") or "", len(calls)) is not None:
                return True
    return False


def write(rows: Iterable[ExportRow], *, classification: bool = False, shikomi_fields: bool = False) -> Iterator[bytes]:
    def pieces() -> Iterator[str]:
        yield "["
        separator = "\n"
        for row in rows:
            yield separator + dumps(record_of(row, shikomi_fields=shikomi_fields))
            separator = ",\n"
        yield "\n]\n"

    return encode_chunks(pieces())
