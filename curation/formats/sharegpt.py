"""ShareGPT conversation files: {"conversations": [{"from", "value"}, ...], "system"?}.

Speakers follow the names used by FastChat and LLaMA-Factory: human/user, gpt/assistant,
system; "function_call" is the assistant calling a tool and "observation" the tool's
answer. Turns written as {"role", "content"} are read too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils.translation import gettext as _

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
SPEAKER_OF = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation", "function": "observation"}
KNOWN_KEYS = frozenset(("conversations", "system", "label", "split", "metadata"))
CONTENT_TYPE = "application/json; charset=utf-8"
EXTENSION = "json"


def row_from_record(line: int, record: dict[str, Any], options: ReadOptions) -> Row:
    row = Row(line, None, record.get("label"), record.get("split"))
    extras_into_metadata(record, KNOWN_KEYS, row)
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
    system = record.get("system")
    if system is not None:
        if not isinstance(system, str):
            row.error("invalid_field", "system", _("expected text, found %(found)s") % {"found": describe(system)})
        elif system.strip():
            messages.append({"role": "system", "content": system})
    for i, turn in enumerate(turns):
        where = f"conversations[{i}]"
        if not isinstance(turn, dict):
            row.error(
                "invalid_field",
                where,
                _('expected an object {"from": ..., "value": ...}, found %(found)s') % {"found": describe(turn)},
            )
            continue
        speaker = turn.get("from", turn.get("role"))
        value = turn.get("value", turn.get("content"))
        role = SPEAKERS.get(speaker.strip().lower()) if isinstance(speaker, str) else None
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
        if value is None:
            row.error("missing_content", f"{where}.value", _('no "value"; expected the text of the turn'))
        elif not isinstance(value, str):
            row.error(
                "invalid_field", f"{where}.value", _("expected text, found %(found)s") % {"found": describe(value)}
            )
        elif not value.strip():
            row.error("empty_content", f"{where}.value", _("the turn is empty; write its text or remove it"))
        elif role is not None:
            messages.append({"role": role, "content": value})
    if not row.errors:
        row.messages = messages
    return row


def read(path: str | os.PathLike[str], options: ReadOptions) -> JsonSource:
    return JsonSource(path, options, row_from_record)


def to_turn(message: dict[str, Any]) -> dict[str, str]:
    role = message.get("role", "user")
    content = message.get("content")
    calls = message.get("tool_calls") or message.get("function_call")
    if role == "assistant" and calls and not content:
        return {"from": "function_call", "value": json.dumps(calls, ensure_ascii=False)}
    return {"from": SPEAKER_OF.get(role, role), "value": content or ""}


def write(rows: Iterable[ExportRow], *, classification: bool = False) -> Iterator[bytes]:
    def pieces() -> Iterator[str]:
        yield "["
        separator = "\n"
        for messages, label, split, _metadata in rows:
            record: dict[str, Any] = {"conversations": [to_turn(m) for m in messages]}
            if label is not None:
                record["label"] = label
            if split and split != "unassigned":
                record["split"] = split
            yield separator + dumps(record)
            separator = ",\n"
        yield "\n]\n"

    return encode_chunks(pieces())
