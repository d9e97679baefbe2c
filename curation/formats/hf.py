"""Hugging Face datasets: a save_to_disk folder (zipped or not) and Parquet files.

``Dataset.save_to_disk`` writes Arrow IPC *stream* files listed in state.json;
``DatasetDict.save_to_disk`` writes one such folder per split, named in
dataset_dict.json. Both are read one record batch at a time, straight out of the zip when
the upload is one, so memory stays flat. The shape is told from the columns: messages
(OpenAI), conversations (ShareGPT), instruction + output (Alpaca), prompt + completion, or
text with an optional label (classification). Row numbers stand for lines: 1-based,
counted across the splits in the order the dataset lists them.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import os
import posixpath
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.utils.translation import gettext as _

from curation.formats import alpaca, openai, prompt_completion, sharegpt
from curation.formats.mapping import Mapper, columns_of, missing_column, no_label, text_row
from curation.formats.parquet import BATCH_ROWS, CONTENT_TYPE, EXTENSION, write
from curation.formats.rows import (
    SPLIT_ALIASES,
    DecodedTooLarge,
    FileRejected,
    ReadOptions,
    Row,
    RowError,
    Source,
)
from curation.formats.textfile import too_large, utf8_size

__all__ = ["BATCH_ROWS", "CONTENT_TYPE", "EXTENSION", "read", "write"]


# --- where the data files are: a folder or a zip ---------------------------------------


class _Tree:
    """Files of a dataset by relative path, in a folder or inside a zip."""

    def __init__(self, path: Path) -> None:
        self.zip: zipfile.ZipFile | None = None
        self.root = path
        if path.is_dir():
            self.names = {
                str(p.relative_to(path)).replace(os.sep, "/"): p.stat().st_size for p in path.rglob("*") if p.is_file()
            }
        elif zipfile.is_zipfile(path):
            self.zip = zipfile.ZipFile(path)
            self.names = {i.filename: i.file_size for i in self.zip.infolist() if not i.is_dir()}
        else:  # a single Parquet file
            self.root = path.parent
            self.names = {path.name: path.stat().st_size}
        self.single = self.zip is None and not path.is_dir()

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()

    def open(self, name: str) -> IO[bytes]:
        if self.zip is not None:
            return self.zip.open(name)
        return open(self.root / name, "rb")  # noqa: SIM115

    def json(self, name: str) -> Any:
        with self.open(name) as f:
            return json.load(f)

    def find(self, basename: str) -> str | None:
        """The shallowest file of that name: a zip often holds the folder itself."""
        found = [n for n in self.names if posixpath.basename(n) == basename]
        return min(found, key=lambda n: (n.count("/"), n)) if found else None


class _Part:
    """One data file, and the split it belongs to."""

    def __init__(self, tree: _Tree, name: str, split: str | None, kind: str, features: dict[str, Any]):
        self.tree = tree
        self.name = name
        self.split = split
        self.kind = kind  # "arrow" or "parquet"
        self.size = tree.names[name]
        self.features = features
        self.file: IO[bytes] | None = None

    def schema(self) -> pa.Schema:
        with self.tree.open(self.name) as f:
            if self.kind == "parquet":
                return pq.ParquetFile(f).schema_arrow
            return pa.ipc.open_stream(f).schema

    def declared_size(self) -> int:
        """What a Parquet file says its data takes uncompressed (its footer, read before any
        row); 0 for Arrow streams, whose size is only known by reading them."""
        if self.kind != "parquet":
            return 0
        with self.tree.open(self.name) as f:
            meta = pq.ParquetFile(f).metadata
            return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))

    def batches(self) -> Iterator[pa.RecordBatch]:
        with self.tree.open(self.name) as f:
            self.file = f
            if self.kind == "parquet":
                yield from pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS)
            else:
                yield from pa.ipc.open_stream(f)
        self.file = None

    def position(self) -> int:
        try:
            return self.file.tell() if self.file is not None else 0
        except (ValueError, OSError):
            return 0


def _features(tree: _Tree, folder: str) -> dict[str, Any]:
    info = posixpath.join(folder, "dataset_info.json") if folder else "dataset_info.json"
    if info in tree.names:
        return tree.json(info).get("features") or {}
    return {}


def _parts(tree: _Tree) -> list[_Part]:
    parts: list[_Part] = []
    if dataset_dict := tree.find("dataset_dict.json"):
        root = posixpath.dirname(dataset_dict)
        for split in tree.json(dataset_dict).get("splits", []):
            folder = posixpath.join(root, split) if root else split
            parts += _arrow_parts(tree, folder, split)
    elif state := tree.find("state.json"):
        parts += _arrow_parts(tree, posixpath.dirname(state), None)
    elif tree.single:
        name = next(iter(tree.names))
        with tree.open(name) as f:
            if f.read(4) != b"PAR1":
                raise ValueError(_("the file is neither a .zip nor a .parquet file"))
        parts.append(_Part(tree, name, None, "parquet", {}))
    else:
        for name in sorted(n for n in tree.names if n.endswith(".parquet")):
            stem = posixpath.basename(name).split("-")[0].split(".")[0]
            parts.append(_Part(tree, name, stem if stem in SPLIT_ALIASES else None, "parquet", {}))
    return parts


def _arrow_parts(tree: _Tree, folder: str, split: str | None) -> list[_Part]:
    state = tree.json(posixpath.join(folder, "state.json") if folder else "state.json")
    features = _features(tree, folder)
    return [
        _Part(tree, posixpath.join(folder, f["filename"]) if folder else f["filename"], split, "arrow", features)
        for f in state.get("_data_files", [])
    ]


def _parquet_features(schema: pa.Schema) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return {}
    try:
        return json.loads(raw).get("info", {}).get("features") or {}
    except (ValueError, AttributeError):
        return {}


# --- rows ------------------------------------------------------------------------------

Convert = Callable[[int, dict[str, Any], ReadOptions], Row]
_text_row = text_row


def _shape(columns: list[str]) -> Convert | None:
    names = set(columns)
    if "messages" in names:
        return openai.row_from_record
    if "conversations" in names:
        return sharegpt.row_from_record
    if {"instruction", "output"} <= names:
        return alpaca.row_from_record
    if {"prompt", "completion"} <= names:
        return prompt_completion.row_from_record
    if "text" in names:
        return _text_row
    return None


_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """Arrow values that JSON cannot hold, as text: dates, decimals, bytes."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def _clean_messages(messages: Any) -> Any:
    """Arrow structs give every message (and every tool call) every key; keep the ones that
    are set."""
    if not isinstance(messages, list):
        return messages
    return [_clean_message(m) if isinstance(m, dict) else m for m in messages]


def _clean_message(message: dict[str, Any]) -> dict[str, Any]:
    message = {k: v for k, v in message.items() if v is not None or k in ("role", "content")}
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        message["tool_calls"] = [_without_nulls(c) if isinstance(c, dict) else c for c in calls]
    return message


def _without_nulls(value: Any) -> Any:
    """A value built from Arrow structs without the keys Arrow filled with null."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _tools(record: dict[str, Any]) -> None:
    """``tools`` as JSON text (how Shikomi and TRL store it) or as Arrow structs, whose nulls
    are the union of every schema's keys and no part of any one of them."""
    tools = record.get("tools")
    if tools is None or (isinstance(tools, str) and not tools.strip()):
        record.pop("tools", None)
    elif isinstance(tools, str):
        try:
            record["tools"] = json.loads(tools)
        except ValueError:
            pass  # reported by the reader of the shape, which names the field
    else:
        record["tools"] = _without_nulls(_plain(tools))


class HFSource(Source):
    """A dataset's rows. The column mapping (mapping.py) is applied to each part's columns
    before its shape is told from them; a missing mapped column, or, in a classification
    project, no label column, is reported on line 1 before any row is read."""

    def __init__(self, path: str | os.PathLike[str], options: ReadOptions) -> None:
        self.path = Path(path)
        self.options = options
        self.mapper = Mapper(options.mapping)
        self.parts: list[_Part] = []
        self.total = 0
        self.done = 0
        self.current: _Part | None = None
        self.decoded = 0  # bytes of Arrow data read so far, after decompression and decoding

    def progress(self) -> float:
        if not self.total:
            return 0.0
        position = self.done + (self.current.position() if self.current else 0)
        return min(position / self.total, 1.0)

    def __iter__(self) -> Iterator[Row]:
        try:
            tree = _Tree(self.path)
        except (zipfile.BadZipFile, OSError) as exc:
            yield Row(1, errors=[_not_a_dataset(str(exc))])
            return
        try:
            yield from self._rows(tree)
        finally:
            tree.close()

    def _rows(self, tree: _Tree) -> Iterator[Row]:
        try:
            self.parts = _parts(tree)
        except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
            yield Row(1, errors=[_not_a_dataset(str(exc))])
            return
        if not self.parts:
            yield Row(1, errors=[_not_a_dataset(_("no dataset_dict.json, state.json or .parquet file found"))])
            return
        self.total = sum(p.size for p in self.parts) or 1
        line = 0
        for part in self.parts:
            self.current = part
            try:
                schema = part.schema()
            except (pa.ArrowException, OSError) as exc:
                yield Row(line + 1, errors=[_not_a_dataset(str(exc))])
                return
            self._check_decoded(part, part.declared_size())
            features = part.features or _parquet_features(schema)
            convert, error = self._shape(schema.names)
            if error is not None:
                yield Row(1, errors=[error])
                return
            if convert is None:
                yield Row(
                    1,
                    errors=[
                        RowError(
                            1,
                            "missing_column",
                            "",
                            _(
                                "cannot tell the shape of the dataset from its columns (%(columns)s); "
                                "expected messages, conversations, instruction + output, "
                                "prompt + completion, or text"
                            )
                            % {"columns": ", ".join(schema.names)},
                        )
                    ],
                )
                return
            class_names = {
                name: f["names"]
                for name, f in features.items()
                if isinstance(f, dict) and f.get("_type") == "ClassLabel"
            }
            split_name = SPLIT_ALIASES.get(part.split.lower()) if part.split else None
            for batch in part.batches():
                self._check_decoded(part, batch.nbytes)
                # As Python objects a batch takes many times its Arrow size: convert a slice at a time.
                for offset in range(0, batch.num_rows, BATCH_ROWS):
                    for record in batch.slice(offset, BATCH_ROWS).to_pylist():
                        line += 1
                        yield self._row(line, record, convert, class_names, part.split, split_name)
            self.done += part.size
        self.current = None

    def _shape(self, columns: list[str]) -> tuple[Convert | None, RowError | None]:
        """How to read rows with these columns, or what is wrong with the mapping."""
        mapping = self.mapper.mapping
        for field, value in mapping.items():
            if missing := [c for c in columns_of(field, value, columns) if c not in columns]:
                return None, missing_column(1, field, missing, columns, where="file")
        names = self.mapper.mapped_names(columns)
        convert = text_row if "text" in mapping else _shape(names)
        if convert is not None and self.options.classification and "label" not in names:
            raise FileRejected(no_label(columns))
        return convert, None

    def _check_decoded(self, part: _Part, size: int) -> None:
        """Count what the data decodes to, not its bytes on disk: a small file of repeated or
        well-compressed values can decode to far more than the upload limit."""
        limit = self.options.max_decoded_bytes
        self.decoded += size
        if limit is not None and self.decoded > limit:
            raise DecodedTooLarge(part.name if not part.tree.single else None, limit)

    def _row(
        self,
        line: int,
        record: dict[str, Any],
        convert: Convert,
        class_names: dict[str, list[str]],
        part_split: str | None,
        split_name: str | None,
    ) -> Row:
        for name, names in class_names.items():
            value = record.get(name)
            if value == -1:
                record[name] = None  # how datasets marks a row without a label
            elif isinstance(value, int) and 0 <= value < len(names):
                record[name] = names[value]
        for key, value in record.items():
            if not isinstance(value, _PLAIN) and key not in ("messages", "conversations", "metadata"):
                record[key] = _plain(value)
        if self.mapper.mapping:
            return self.mapper.convert(
                lambda line, record, options: self._converted(line, record, convert, part_split, split_name),
                line,
                record,
                self.options,
            )
        return self._converted(line, record, convert, part_split, split_name)

    def _converted(
        self, line: int, record: dict[str, Any], convert: Convert, part_split: str | None, split_name: str | None
    ) -> Row:
        if "messages" in record:
            record["messages"] = _clean_messages(record["messages"])
        if "tools" in record:
            _tools(record)
        metadata = record.get("metadata")
        if isinstance(metadata, str):
            try:
                record["metadata"] = json.loads(metadata) if metadata else {}
            except ValueError:
                pass  # reported by the checks as not an object
        elif metadata is not None:
            record["metadata"] = _plain(metadata)
        if record.get("split") is None:
            if split_name:
                record["split"] = split_name
            elif part_split:
                record["hf_split"] = part_split
        row = convert(line, record, self.options)
        limit = self.options.max_row_bytes
        if isinstance(row.messages, list):
            chars = sum(len(m.get("content") or "") for m in row.messages if isinstance(m, dict))
            if chars * 4 > limit and (size := utf8_size(json.dumps(row.messages, ensure_ascii=False))) > limit:
                row.error(*_error_fields(too_large(line, size, limit)))
        return row


def _error_fields(error: RowError) -> tuple[str, str, str]:
    return error.code, error.field, error.message


def _not_a_dataset(detail: str) -> RowError:
    return RowError(
        1,
        "invalid_field",
        "file",
        _("not a Hugging Face dataset (a save_to_disk folder, a .zip of one, or a .parquet file): %(detail)s")
        % {"detail": detail},
    )


def read(path: str | os.PathLike[str], options: ReadOptions) -> HFSource:
    return HFSource(path, options)
