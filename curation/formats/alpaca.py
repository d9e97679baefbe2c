"""Alpaca instruction files: {instruction, input?, output, system?, history?} records.

The user's message is the instruction, followed by a blank line and the input when there
is one; history is a list of earlier [user, assistant] turns. Written as a JSON array, one
element per line; read from a JSON array or JSON Lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils.translation import gettext as _

from curation.formats.reading import JsonSource
from curation.formats.rows import ExportRow, ReadOptions, Row, describe, dumps, encode_chunks, extras_into_metadata

KNOWN_KEYS = frozenset(("instruction", "input", "output", "system", "history", "label", "split", "metadata"))
CONTENT_TYPE = "application/json; charset=utf-8"
EXTENSION = "json"


def _text(row: Row, record: dict[str, Any], key: str, *, required: bool) -> str | None:
    """The text under ``key``; records an error and returns None when it is unusable."""
    value = record.get(key)
    if value is None:
        if required:
            row.error(
                "missing_field",
                key,
                _('no "%(key)s"; an Alpaca record needs "instruction" and "output"') % {"key": key},
            )
        return None if required else ""
    if not isinstance(value, str):
        row.error("invalid_field", key, _("expected text, found %(found)s") % {"found": describe(value)})
        return None
    return value


def empty(row: Row, key: str) -> None:
    row.error("empty_content", key, _('"%(key)s" is empty; write its text') % {"key": key})


def row_from_record(line: int, record: dict[str, Any], options: ReadOptions) -> Row:
    row = Row(line, None, record.get("label"), record.get("split"))
    extras_into_metadata(record, KNOWN_KEYS, row)
    instruction = _text(row, record, "instruction", required=True)
    extra_input = _text(row, record, "input", required=False)
    output = _text(row, record, "output", required=True)
    system = _text(row, record, "system", required=False)
    history = record.get("history") or []
    messages: list[dict[str, Any]] = []
    if system and not system.isspace():
        messages.append({"role": "system", "content": system})
    if not isinstance(history, list):
        row.error(
            "invalid_field",
            "history",
            _("expected a list of [user, assistant] pairs, found %(found)s") % {"found": describe(history)},
        )
    else:
        for i, turn in enumerate(history):
            if (
                not isinstance(turn, list | tuple)
                or len(turn) != 2
                or not all(isinstance(t, str) and t.strip() for t in turn)
            ):
                row.error(
                    "invalid_field",
                    f"history[{i}]",
                    _("expected a pair [user text, assistant text], found %(found)s") % {"found": describe(turn)},
                )
                continue
            messages.append({"role": "user", "content": turn[0]})
            messages.append({"role": "assistant", "content": turn[1]})
    if instruction is not None:
        if instruction.strip():
            content = instruction
            if extra_input and extra_input.strip():
                content = f"{instruction}\n\n{extra_input}"
            messages.append({"role": "user", "content": content})
        elif extra_input and extra_input.strip():
            messages.append({"role": "user", "content": extra_input})
        else:
            empty(row, "instruction")
    if output is not None:
        if output.strip():
            messages.append({"role": "assistant", "content": output})
        elif not options.classification:
            empty(row, "output")
    row.chat = False  # the reply was checked here, as "output"
    if not row.errors:
        row.messages = messages
    return row


def read(path: str | os.PathLike[str], options: ReadOptions) -> JsonSource:
    return JsonSource(path, options, row_from_record)


def to_record(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The last user turn and its reply; earlier turns as history; tool turns are dropped."""
    system = None
    pairs: list[list[str]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content") or ""
        if role == "system" and system is None and not pairs:
            system = content
        elif role == "user":
            pairs.append([content, ""])
        elif role == "assistant" and pairs and not pairs[-1][1]:
            pairs[-1][1] = content
    instruction, output = pairs.pop() if pairs else ["", ""]
    record: dict[str, Any] = {"instruction": instruction, "input": "", "output": output}
    if system is not None:
        record["system"] = system
    if pairs:
        record["history"] = pairs
    return record


def write(rows: Iterable[ExportRow], *, classification: bool = False) -> Iterator[bytes]:
    def pieces() -> Iterator[str]:
        yield "["
        separator = "\n"
        for messages, label, split, _metadata in rows:
            record = to_record(messages)
            if label is not None:
                record["label"] = label
            if split and split != "unassigned":
                record["split"] = split
            yield separator + dumps(record)
            separator = ",\n"
        yield "\n]\n"

    return encode_chunks(pieces())
