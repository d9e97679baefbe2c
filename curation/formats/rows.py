"""The canonical row every format reads into and writes from: the row, its errors, the read
options, and small helpers the formats share (describing a value, extra keys, writing).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

ROLES = ("system", "user", "assistant", "tool", "function")
SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "unassigned": "unassigned",
}


@dataclass(slots=True)
class ExportRow:
    """One example handed to a writer (docs/data-model.md). ``id``, ``status`` and
    ``label_source`` are written only by an export "with Shikomi fields". ``label_source`` is
    where the label came from, as curation.rules.selectors.label_source gives it: None without
    a label, {"source": "person"}, or {"source": "rules", "rule_set", "model", "probability"}."""

    messages: list[dict[str, Any]]
    label: str | None = None
    split: str = "unassigned"
    metadata: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)
    id: int | None = None
    status: str | None = None
    label_source: dict[str, Any] | None = None


@dataclass(slots=True)
class RowError:
    line: int
    code: str
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "field": self.field, "message": self.message}


@dataclass(slots=True)
class Row:
    """One example as read from a file, in the canonical shape, with what is wrong with it."""

    line: int
    messages: Any = None
    label: Any = None
    split: Any = None
    metadata: Any = field(default_factory=dict)
    # Function schemas the conversation may call, in OpenAI's shape (docs/data-model.md).
    tools: Any = field(default_factory=list)
    # Read only from an export "with Shikomi fields"; None: the import's default (needs review).
    status: Any = None
    errors: list[RowError] = field(default_factory=list)
    # False for classification-shaped rows (a text and a label): no reply is expected.
    chat: bool = True
    # True when the record's raw JSON text has no \u0000 escape, so that nothing in the row can
    # hold a NUL character (strict JSON has no other way to write one) and the checks need not
    # search for it. Set by the JSON reader only; False (search) for every other source.
    nul_free: bool = False

    def error(self, code: str, field: str, message: str) -> Row:
        self.errors.append(RowError(self.line, code, field, message))
        return self


class ReadMemo:
    """What the reading of one file remembers from row to row (ReadOptions.memo). A file's tool
    list usually repeats row after row: it is converted (conversation.tools_from) and checked
    (checks.check_row) once, and the rows that have it share one list, which nothing changes
    once read. Bounded: forgotten whole after LIMIT different lists, or TEXT_LIMIT characters of
    their text, so that memory stays flat whatever the file holds."""

    LIMIT = 256
    TEXT_LIMIT = 1024 * 1024
    __slots__ = ("tools", "shared", "checked", "text")

    def __init__(self) -> None:
        self.text = 0  # characters of the keys of ``tools``
        # (is JSON text, the text or repr of the file's value) -> tools_from's answer.
        self.tools: dict[tuple[bool, str], tuple[list[dict[str, Any]], str | None]] = {}
        # id -> a list tools_from handed out, and what the checks found of it (the tool names a
        # call may use), once they found nothing wrong. The list is held, so its id stays its own.
        self.shared: dict[int, list[dict[str, Any]]] = {}
        self.checked: dict[int, tuple[list[dict[str, Any]], frozenset[str] | None]] = {}

    def forget(self) -> None:
        self.text = 0
        self.tools.clear()
        self.shared.clear()
        self.checked.clear()


@dataclass(slots=True)
class ReadOptions:
    encoding: str = "auto"
    mapping: dict[str, str] | None = None
    delimiter: str | None = None
    split: str | None = None
    max_row_bytes: int = 1024 * 1024
    classification: bool = False
    max_messages: int | None = None
    # What a Parquet file or dataset archive may decode to (SHIKOMI_MAX_DECODED_BYTES).
    max_decoded_bytes: int | None = None
    # Not an option: what reading this file remembers from row to row.
    memo: ReadMemo = field(default_factory=ReadMemo, repr=False, compare=False)


class DecodedTooLarge(Exception):
    """A file decodes to more than ReadOptions.max_decoded_bytes (a small Parquet file or
    archive can hold far more than its size on disk). Stops the whole import: no row of the
    file is written. ``member`` names the file inside an archive, None for the upload itself."""

    def __init__(self, member: str | None, limit: int) -> None:
        super().__init__(f"{member or 'the file'} decodes to more than {limit} bytes")
        self.member = member
        self.limit = limit


class FileRejected(Exception):
    """The file as a whole cannot be imported (a classification file with no label column):
    raised while reading, it stops the import and nothing of the file is written."""

    def __init__(self, error: RowError) -> None:
        super().__init__(error.message)
        self.error = error


class Source:
    """What a format's reader returns: rows, in file order, and how far it has got."""

    encoding: str | None = None

    def __iter__(self) -> Iterator[Row]:
        raise NotImplementedError

    def progress(self) -> float:
        return 0.0


def describe(value: Any) -> str:
    """How a value reads in an error message: 'a number (3)', 'text', 'null'."""
    if value is None:
        return _("null")
    if isinstance(value, bool):
        return _("true/false")
    if isinstance(value, int | float):
        return _("a number (%(value)s)") % {"value": value}
    if isinstance(value, str):
        return _("text")
    if isinstance(value, list):
        return _("a list")
    if isinstance(value, dict):
        return _("an object")
    return type(value).__name__


def extras_into_metadata(record: dict[str, Any], known: frozenset[str], row: Row) -> None:
    """Keys a format does not know are kept in metadata, so an import loses nothing."""
    metadata = record.get("metadata")
    if metadata is None:
        metadata = {}
    extras = [key for key in record if key not in known]
    if extras and isinstance(metadata, dict):
        metadata = dict(metadata)
        for key in extras:
            if key in metadata:
                metadata.setdefault("_extra", {})[key] = record[key]
            else:
                metadata[key] = record[key]
    row.metadata = metadata


# --- writing ---------------------------------------------------------------------------


def encode_chunks(pieces: Iterable[str], size: int = 64 * 1024) -> Iterator[bytes]:
    """Join small strings into chunks of about ``size`` characters, encoded as UTF-8."""
    buffer: list[str] = []
    length = 0
    for piece in pieces:
        buffer.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(buffer).encode("utf-8")
            buffer.clear()
            length = 0
    if buffer:
        yield "".join(buffer).encode("utf-8")


# json.dumps(value, ensure_ascii=False) makes an encoder on every call; this one is made once
# and writes the same text.
_encode = json.JSONEncoder(ensure_ascii=False).encode


def dumps(value: Any) -> str:
    return _encode(value)


def batched(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in iterable:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
