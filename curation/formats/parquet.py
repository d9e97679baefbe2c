"""Writing examples as Parquet that Hugging Face ``datasets`` and TRL read as they are, keeping
everything of docs/data-model.md (hf.py reads it back).

The columns:

- ``messages``: a list of structs, the shape TRL's conversational datasets have. ``role`` and
  ``content`` are always there; ``reasoning``, ``tool_calls``, ``tool_call_id``, ``name`` and
  ``weight`` are there when some message of the export has them (Arrow gives every message
  every field of the struct, so a field nobody uses would show up as ``None`` in every message
  ``datasets`` returns). ``tool_calls`` is a list of ``{id, type, function: {name,
  arguments}}`` with the arguments as JSON text, as OpenAI writes them.
- ``tools``: the function schemas as JSON text (null when the example has none). A JSON
  Schema is free-form: as Arrow structs, the union of every schema's keys would put nulls into
  each one (``"enum": null``...), which changes what the schema says; JSON text keeps it exact,
  and it is how TRL's own tool-calling datasets store it (TRL reads both).
- ``label``, ``split`` (null when unassigned), ``metadata`` (any JSON object, as JSON text).
- With Shikomi fields: ``id``, ``status`` and ``label_source``: where the label came from, as
  JSON text like ``metadata`` (null without a label). JSON text rather than a struct: a struct
  gives every row every field, so a person's label would read back as ``{"source": "person",
  "rule_set": None, "model": None, "probability": None}``, not the object the JSON formats
  write; one ``json.loads`` gives back exactly that object. The import drops it (hf.py reads
  the file as OpenAI records, conversation.take_shikomi_fields).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation.formats.rows import ExportRow, batched

CONTENT_TYPE = "application/vnd.apache.parquet"
EXTENSION = "parquet"
BATCH_ROWS = 2000

TOOL_CALL = pa.struct(
    [
        ("id", pa.string()),
        ("type", pa.string()),
        ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())])),
    ]
)
# Every key a canonical message may have, in the order the struct lists them.
MESSAGE_FIELDS: dict[str, pa.DataType] = {
    "role": pa.string(),
    "content": pa.string(),
    "reasoning": pa.string(),
    "tool_calls": pa.list_(TOOL_CALL),
    "tool_call_id": pa.string(),
    "name": pa.string(),
    "weight": pa.int64(),
}
ALWAYS = ("role", "content")


def schema(message_keys: Iterable[str], *, shikomi_fields: bool) -> pa.Schema:
    keys = set(message_keys) | set(ALWAYS)
    message = pa.struct([(key, kind) for key, kind in MESSAGE_FIELDS.items() if key in keys])
    columns = [
        ("messages", pa.list_(message)),
        ("tools", pa.string()),
        ("label", pa.string()),
        ("split", pa.string()),
        ("metadata", pa.string()),
    ]
    if shikomi_fields:
        columns += [("id", pa.int64()), ("status", pa.string()), ("label_source", pa.string())]
    return pa.schema(columns)


def _call(call: Any) -> Any:
    if not isinstance(call, dict):
        return call
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if arguments is not None and not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return {
        "id": call.get("id"),
        "type": call.get("type", "function"),
        "function": {"name": function.get("name"), "arguments": arguments},
    }


def _message(message: dict[str, Any]) -> dict[str, Any]:
    out = {key: message[key] for key in MESSAGE_FIELDS if message.get(key) is not None}
    if isinstance(out.get("tool_calls"), list):
        out["tool_calls"] = [_call(c) for c in out["tool_calls"]]
    weight = out.get("weight")
    if isinstance(weight, float) and weight.is_integer():
        out["weight"] = int(weight)
    return out


def _columns(batch: list[ExportRow], shikomi_fields: bool) -> tuple[dict[str, list[Any]], set[str]]:
    names = ["messages", "tools", "label", "split", "metadata"]
    if shikomi_fields:
        names += ["id", "status", "label_source"]
    columns: dict[str, list[Any]] = {name: [] for name in names}
    keys: set[str] = set()
    for row in batch:
        messages = [_message(m) for m in row.messages]
        for m in messages:
            keys.update(m)
        columns["messages"].append(messages)
        columns["tools"].append(json.dumps(row.tools, ensure_ascii=False) if row.tools else None)
        columns["label"].append(row.label)
        columns["split"].append(None if row.split == "unassigned" else row.split)
        columns["metadata"].append(json.dumps(row.metadata, ensure_ascii=False) if row.metadata else None)
        if shikomi_fields:
            columns["id"].append(row.id)
            columns["status"].append(row.status)
            source = row.label_source
            columns["label_source"].append(json.dumps(source, ensure_ascii=False) if source else None)
    return columns, keys


def write(rows: Iterable[ExportRow], *, classification: bool = False, shikomi_fields: bool = False) -> Iterator[bytes]:
    """Parquet that ``datasets.load_dataset("parquet", ...)`` reads, streamed from a temp file.

    The message struct holds the keys met so far; a batch that brings a new key starts a new
    segment with the wider struct, and the segments are joined at the end (most exports have
    one segment and are streamed as written)."""
    segments: list[tuple[str, pa.Schema]] = []
    try:
        writer: pq.ParquetWriter | None = None
        keys: set[str] = set(ALWAYS)
        for batch in batched(rows, BATCH_ROWS):
            columns, batch_keys = _columns(batch, shikomi_fields)
            if writer is None or not batch_keys <= keys:
                if writer is not None:
                    writer.close()
                keys |= batch_keys
                segments.append((_temp(), schema(keys, shikomi_fields=shikomi_fields)))
                writer = pq.ParquetWriter(*segments[-1])
            writer.write_table(pa.Table.from_pydict(columns, schema=segments[-1][1]))
        if writer is not None:
            writer.close()
        if not segments:
            segments.append((_temp(), schema(keys, shikomi_fields=shikomi_fields)))
            pq.ParquetWriter(*segments[-1]).close()
        if len(segments) > 1:
            segments.append((_temp(), segments[-1][1]))
            _join(segments[:-1], *segments[-1])
        with open(segments[-1][0], "rb") as f:
            while chunk := f.read(1024 * 1024):
                yield chunk
    finally:
        for name, _schema in segments:
            os.unlink(name)


def _temp() -> str:
    fd, name = tempfile.mkstemp(prefix="shikomi-export-", suffix=".parquet")
    os.close(fd)
    return name


def _join(parts: list[tuple[str, pa.Schema]], name: str, wide: pa.Schema) -> None:
    """The segments in one file with the widest struct; fields a segment lacks are null."""
    with pq.ParquetWriter(name, wide) as writer:
        for part, _schema in parts:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=BATCH_ROWS):
                writer.write_table(pa.Table.from_pylist(batch.to_pylist(), schema=wide))
