"""OpenAI chat fine-tuning files: JSON Lines of {"messages": [...], "tools": [...]}.

Read exactly: messages with ``tool_calls``, ``tool_call_id``, ``name`` and ``weight``; the
legacy ``function_call`` and ``functions`` (read as ``tool_calls`` and ``tools``); reasoning from
``reasoning_content`` or a leading ``<think>`` block. Top-level keys other than messages, tools,
label, split and metadata (and the id, status and label_source of an export with Shikomi
fields, which are Shikomi's own) are kept in metadata. A JSON array of the same objects is read too.

Written as OpenAI's fine-tuning format: {"messages", "tools"} (tools only when there are some),
the reasoning as a <think> block in front of the content (OpenAI has no reasoning field), the
label when set; with Shikomi fields also id, label, label_source (where the label came from:
a person or a rule set), split, status and metadata.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from curation.formats.conversation import assign_call_ids, message_from, take_shikomi_fields, tools_from, with_think
from curation.formats.reading import JsonSource
from curation.formats.rows import ExportRow, ReadOptions, Row, dumps, encode_chunks, extras_into_metadata

KNOWN_KEYS = frozenset(("messages", "tools", "label", "split", "metadata"))
CONTENT_TYPE = "application/jsonl; charset=utf-8"
EXTENSION = "jsonl"


def row_from_record(line: int, record: dict[str, Any], options: ReadOptions) -> Row:
    messages = record.get("messages")
    if isinstance(messages, list):
        messages = [message_from(m) for m in messages]
        assign_call_ids(messages)
    row = Row(line, messages, record.get("label"), record.get("split"))
    known = KNOWN_KEYS | take_shikomi_fields(record, row)
    tools_key = "tools" if "tools" in record or "functions" not in record else "functions"
    if tools_key == "functions":
        known |= {"functions"}
    tools, error = tools_from(record.get(tools_key), options.memo)
    if error:
        row.error("invalid_field", tools_key, error)
    row.tools = tools
    extras_into_metadata(record, known, row)
    return row


def read(path: str | os.PathLike[str], options: ReadOptions) -> JsonSource:
    return JsonSource(path, options, row_from_record)


def to_message(message: dict[str, Any]) -> dict[str, Any]:
    """A canonical message as OpenAI's fine-tuning format has it."""
    if "reasoning" not in message:
        if not (message.get("tool_calls") and message.get("content") == ""):
            return message
        # a call without text: the message without its content, in one copy
        return {k: v for k, v in message.items() if k != "content"}
    out = {k: v for k, v in message.items() if k != "reasoning"}
    content = with_think(message)
    if content or not message.get("tool_calls"):
        out["content"] = content
    else:
        del out["content"]  # a call without text, as OpenAI's own examples write it
    return out


def record_of(row: ExportRow, *, shikomi_fields: bool = False, classification: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {"messages": [to_message(m) for m in row.messages]}
    if row.tools:
        record["tools"] = row.tools
    record.update(_fields_of(row, shikomi_fields=shikomi_fields, classification=classification))
    return record


def _fields_of(row: ExportRow, *, shikomi_fields: bool, classification: bool) -> dict[str, Any]:
    """The keys of a record after its messages and tools."""
    if shikomi_fields:
        return {
            "id": row.id,
            "label": row.label,
            "label_source": row.label_source,
            "split": row.split,
            "status": row.status,
            "metadata": row.metadata,
        }
    if row.label is not None or classification:
        # A classification file always has its label key (null when unlabeled): the import
        # refuses a classification file without a label column.
        return {"label": row.label}
    return {}


def write(rows: Iterable[ExportRow], *, classification: bool = False, shikomi_fields: bool = False) -> Iterator[bytes]:
    def lines() -> Iterator[str]:
        # Rows that repeat one tool list share one list object (the export decodes each stored
        # list once, curation/io/exports.py): it is encoded once. Each line is exactly what
        # dumps(record_of(row)) writes.
        last_tools: Any = None
        tools_text = ""
        for row in rows:
            if not row.tools:
                yield dumps(record_of(row, shikomi_fields=shikomi_fields, classification=classification)) + "\n"
                continue
            if row.tools is not last_tools:
                last_tools, tools_text = row.tools, dumps(row.tools)
            messages = dumps([to_message(m) for m in row.messages])
            fields = _fields_of(row, shikomi_fields=shikomi_fields, classification=classification)
            tail = ", " + dumps(fields)[1:] + "\n" if fields else "}\n"
            yield '{"messages": ' + messages + ', "tools": ' + tools_text + tail

    return encode_chunks(lines())
