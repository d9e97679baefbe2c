"""Alpaca instruction files: {instruction, input?, output, system?, history?} records.

The user's message is the instruction, followed by a blank line and the input when there
is one; history is a list of earlier [user, assistant] turns. Written as a JSON array, one
element per line; read from a JSON array or JSON Lines.

The input stays a field of its own through a round trip by that convention: the export
splits the last user turn at its first blank line into instruction and input (a message
without one is all instruction), and the import joins them back with that blank line, so
the messages come back the same. Alpaca holds plain turns only: ``cannot_hold`` names what
an example has that it cannot write (tool calls, reasoning, turn weights...), and such an
example is left out of the export instead of being written with an empty field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils.translation import gettext as _

from curation.formats.conversation import take_shikomi_fields
from curation.formats.reading import JsonSource
from curation.formats.rows import (
    ExportRow,
    ReadOptions,
    Row,
    describe,
    dumps,
    encode_chunks,
    extras_into_metadata,
)

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
    extras_into_metadata(record, KNOWN_KEYS | take_shikomi_fields(record, row), row)
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


# --- writing ---------------------------------------------------------------------------


def unsupported(row: ExportRow) -> str | None:
    """What an example has that no plain-turn format (Alpaca, prompt/completion, CSV) can
    write; None when it has only plain turns. Weight 1 is the default a missing weight means,
    so only a weight-0 turn is a loss."""
    if row.tools:
        return _("tools")
    for message in row.messages:
        if message.get("tool_calls") or message.get("function_call") or message.get("role") in ("tool", "function"):
            return _("tool calls")
    if any(message.get("reasoning") for message in row.messages):
        return _("reasoning")
    if any(message.get("weight", 1) != 1 for message in row.messages):
        return _("turn weights")
    if any(message.get("name") for message in row.messages):
        return _("names")
    return None


Turns = tuple[str | None, list[list[Any]]]


def plain_turns(row: ExportRow) -> Turns | str:
    """(system prompt or None, [[user, reply or None], ...]) of an example made of plain
    turns in order, or the reason it is not one."""
    if (reason := unsupported(row)) is not None:
        return reason
    system: str | None = None
    pairs: list[list[Any]] = []
    for i, message in enumerate(row.messages):
        role, content = message.get("role"), message.get("content") or ""
        if role == "system" and i == 0:
            system = content
        elif role == "user" and (not pairs or pairs[-1][1] is not None):
            pairs.append([content, None])
        elif role == "assistant" and pairs and pairs[-1][1] is None:
            pairs[-1][1] = content
        elif role == "assistant" and not pairs:
            return _("no user turn")
        else:
            return _("turn order")
    if not pairs:
        return _("no user turn")
    return system, pairs


def no_reply(pairs: list[list[Any]], classification: bool) -> str | None:
    """A chat example must end with a reply: an export never writes an empty output."""
    return _("no reply") if pairs[-1][1] is None and not classification else None


def cannot_hold(row: ExportRow, *, classification: bool = False) -> str | None:
    """Why Alpaca cannot hold the example (a short reason), or None."""
    turns = plain_turns(row)
    if isinstance(turns, str):
        return turns
    return no_reply(turns[1], classification)


def split_input(content: str) -> tuple[str, str]:
    """The instruction and the input of a user turn: split at the first blank line, when
    there is text on both sides (the import joins them back with that blank line)."""
    instruction, sep, extra = content.partition("\n\n")
    if sep and instruction.strip() and extra.strip():
        return instruction, extra
    return content, ""


def to_record(messages: list[dict[str, Any]], *, with_input: bool = True) -> dict[str, Any]:
    """The last user turn and its reply; earlier turns as history; tool turns are dropped.
    ``with_input``: the last user turn split into instruction and input (see split_input)."""
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
    extra = ""
    if with_input:
        instruction, extra = split_input(instruction)
    record: dict[str, Any] = {"instruction": instruction, "input": extra, "output": output}
    if system is not None:
        record["system"] = system
    if pairs:
        record["history"] = pairs
    return record


def shikomi_record(record: dict[str, Any], row: ExportRow, shikomi_fields: bool) -> dict[str, Any]:
    """Label and split where set; with Shikomi fields, id, status, label_source and metadata
    too (and the split always), so that importing the file gives back the same examples."""
    if row.label is not None:
        record["label"] = row.label
    if shikomi_fields:
        record["split"] = row.split
        record["id"] = row.id
        record["status"] = row.status
        record["label_source"] = row.label_source
        record["metadata"] = row.metadata
    elif row.split and row.split != "unassigned":
        record["split"] = row.split
    return record


def write(rows: Iterable[ExportRow], *, classification: bool = False, shikomi_fields: bool = False) -> Iterator[bytes]:
    def pieces() -> Iterator[str]:
        yield "["
        separator = "\n"
        for row in rows:
            if cannot_hold(row, classification=classification) is not None:
                continue  # counted and reported by the export before it starts
            record = shikomi_record(to_record(row.messages), row, shikomi_fields)
            yield separator + dumps(record)
            separator = ",\n"
        yield "\n]\n"

    return encode_chunks(pieces())
