"""OpenAI chat fine-tuning files: JSON Lines of {"messages": [{"role", "content"}, ...]}.

The canonical shape is this one, so reading is mostly checking. Top-level keys other than
messages, label, split and metadata are kept in metadata. A JSON array of the same objects
is read too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from curation.formats.reading import JsonSource
from curation.formats.rows import ExportRow, ReadOptions, Row, dumps, encode_chunks, extras_into_metadata

KNOWN_KEYS = frozenset(("messages", "label", "split", "metadata"))
CONTENT_TYPE = "application/jsonl; charset=utf-8"
EXTENSION = "jsonl"


def row_from_record(line: int, record: dict[str, Any], options: ReadOptions) -> Row:
    row = Row(line, record.get("messages"), record.get("label"), record.get("split"))
    extras_into_metadata(record, KNOWN_KEYS, row)
    return row


def read(path: str | os.PathLike[str], options: ReadOptions) -> JsonSource:
    return JsonSource(path, options, row_from_record)


def write(rows: Iterable[ExportRow], *, classification: bool = False) -> Iterator[bytes]:
    def lines() -> Iterator[str]:
        for messages, label, _split, _metadata in rows:
            record: dict[str, Any] = {"messages": messages}
            if label is not None:
                record["label"] = label
            yield dumps(record) + "\n"

    return encode_chunks(lines())
