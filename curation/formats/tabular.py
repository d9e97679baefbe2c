"""CSV and TSV files: a header row, then one example per record.

Columns are found by name, or by the ``mapping`` option ({"text": "Body", "label":
"Category"}; ``instruction=Title+Body`` joins two columns; see mapping.py). A "text" column
is the user's message of a classification example; an "instruction" (with optional "input",
"output", "system") is read as in Alpaca. Other columns are kept in metadata. A
classification project's file needs a label column (it may be empty). Quoted fields may
hold line breaks; the line of a row is the physical line where its record starts.

An export "with Shikomi fields" adds the input (Alpaca's convention, see alpaca.py) and id,
status, metadata (JSON text) and label_source (compact JSON text, empty without a label)
columns; a file with id, status and metadata columns is read as one: its metadata column is
the metadata, its ids and its label_source column are dropped (a label a file brings is a
person's to the importing project). A CSV holds one
plain turn: ``cannot_hold`` names what else an example has, and it is left out.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils.translation import gettext as _

from curation.formats import alpaca
from curation.formats.conversation import SHIKOMI_STATUSES
from curation.formats.mapping import columns_of, join, missing_column, no_label
from curation.formats.rows import ExportRow, FileRejected, ReadOptions, Row, RowError, Source
from curation.formats.textfile import TextFile, line_problem, too_large, truncated, utf8_size

MAPPING_KEYS = ("text", "label", "instruction", "input", "output", "system", "split")
SHIKOMI_COLUMNS = ("id", "status", "metadata")
# Written after SHIKOMI_COLUMNS by an export with Shikomi fields; a file from before it lacks it.
LABEL_SOURCE_COLUMN = "label_source"
CONTENT_TYPE = "text/csv; charset=utf-8"
TSV_CONTENT_TYPE = "text/tab-separated-values; charset=utf-8"
EXTENSION = "csv"


class _LineFeed:
    """The lines csv.reader consumes, counted and checked for bad bytes as they pass."""

    def __init__(self, f: io.TextIOWrapper, encoding: str, max_row_bytes: int) -> None:
        self.f = f
        self.encoding = encoding
        self.max_row_bytes = max_row_bytes
        self.lineno = 0
        self.size = 0  # UTF-8 bytes of the record being read
        self.exhausted = False
        self.problems: list[RowError] = []

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        line = self.f.readline(self.max_row_bytes + 2)
        if not line:
            self.exhausted = True
            raise StopIteration
        self.lineno += 1
        if len(line) > self.max_row_bytes and not line.endswith(("\n", "\r")):
            while (rest := self.f.readline(256 * 1024)) and not rest.endswith(("\n", "\r")):
                pass
            self.size = self.max_row_bytes + 1
            return "\n"
        self.size += len(line) if line.isascii() else utf8_size(line)
        if not line.isascii() or "\x00" in line:
            if problem := line_problem(line, self.lineno, self.encoding):
                self.problems.append(problem)
        return line

    def start_record(self) -> int:
        self.size = 0
        self.problems = []
        return self.lineno + 1


class TabularSource(Source):
    def __init__(self, path: str | os.PathLike[str], options: ReadOptions, delimiter: str) -> None:
        self.text = TextFile(path, options.encoding)
        self.encoding = self.text.encoding
        self.options = options
        self.delimiter = options.delimiter or delimiter

    def progress(self) -> float:
        return self.text.progress()

    def __iter__(self) -> Iterator[Row]:
        limit = self.options.max_row_bytes
        # Process-wide, but only ever raised: a quoted field left open cannot take the
        # rest of the file into memory.
        csv.field_size_limit(max(131072, limit + 1))
        with self.text.open() as f:
            feed = _LineFeed(f, self.encoding, limit)
            reader = csv.reader(feed, delimiter=self.delimiter)
            columns: Columns | None = None
            while True:
                start = feed.start_record()
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except csv.Error:
                    yield Row(start, errors=feed.problems or [too_large(start, None, limit)])
                    continue
                if feed.exhausted:
                    yield Row(start, errors=[truncated(start)])
                    return
                if feed.problems:
                    yield Row(start, errors=feed.problems)
                    if columns is None:
                        return
                    continue
                if feed.size > limit:
                    yield Row(start, errors=[too_large(start, feed.size, limit)])
                    continue
                if not record:
                    continue
                if columns is None:
                    columns = Columns(record, self.options)
                    if columns.errors:
                        yield Row(start, errors=columns.errors)
                        return
                    continue
                yield columns.row(start, record, self.options)


def read(path: str | os.PathLike[str], options: ReadOptions, delimiter: str = ",") -> TabularSource:
    return TabularSource(path, options, delimiter)


class Columns:
    """Where each canonical field is in the header (one column, or several a text field joins),
    and which columns go to metadata. Fields the mapping does not name are found by name."""

    def __init__(self, header: list[str], options: ReadOptions) -> None:
        mapping = options.mapping or {}
        self.header = [cell.strip() for cell in header]
        self.header[0] = self.header[0].lstrip("\ufeff")
        self.errors: list[RowError] = []
        names = ", ".join(f'"{name}"' for name in self.header)
        self.index: dict[str, list[int]] = {}
        for key, value in mapping.items():
            columns = columns_of(key, value, self.header)
            if missing := [c for c in columns if c not in self.header]:
                self.errors.append(missing_column(1, key, missing, self.header, where="file"))
            else:
                self.index[key] = [self.header.index(c) for c in columns]
        used = {i for indexes in self.index.values() for i in indexes}
        lowered = [name.lower() for name in self.header]
        for key in MAPPING_KEYS:
            if key not in mapping and key in lowered and lowered.index(key) not in used:
                if key in ("text", "instruction") and ({"text", "instruction"} & set(mapping)):
                    continue  # the mapping chose which one the user's turn is
                self.index[key] = [lowered.index(key)]
        if "instruction" in self.index and "text" not in mapping:
            self.index.pop("text", None)
        if not self.errors and "text" not in self.index and "instruction" not in self.index:
            self.errors.append(
                RowError(
                    1,
                    "missing_column",
                    "text",
                    _(
                        "no text or instruction column; the columns are: %(names)s; name the "
                        "column to read with the mapping option (text=COLUMN)"
                    )
                    % {"names": names},
                )
            )
        if not self.errors and options.classification and "label" not in self.index:
            raise FileRejected(no_label(self.header))
        # Written by an export with Shikomi fields: read back, not kept as extra columns.
        self.shikomi = {n: lowered.index(n) for n in SHIKOMI_COLUMNS} if set(SHIKOMI_COLUMNS) <= set(lowered) else {}
        if self.shikomi and LABEL_SOURCE_COLUMN in lowered:
            self.shikomi[LABEL_SOURCE_COLUMN] = lowered.index(LABEL_SOURCE_COLUMN)  # read, and dropped
        mapped = {i for indexes in self.index.values() for i in indexes} | set(self.shikomi.values())
        self.extra = [(i, name) for i, name in enumerate(self.header) if i not in mapped]

    def row(self, line: int, record: list[str], options: ReadOptions) -> Row:
        record = [unescape_formula(c) for c in record]  # the ' an export put before "=1+1"
        index = self.index

        def cell(key: str) -> str:
            indexes = index.get(key)
            if indexes is None:
                return ""
            if len(indexes) == 1:
                return record[indexes[0]] if indexes[0] < len(record) else ""
            return join([record[i] for i in indexes if i < len(record)])

        row = Row(line, None, cell("label").strip() or None, cell("split").strip() or None)
        row.metadata = {name: record[i] if i < len(record) else "" for i, name in self.extra}
        if self.shikomi:
            self._shikomi_fields(row, record)
        row.chat = False  # the reply is checked here, as the output column
        if len(record) > len(self.header) and any(c.strip() for c in record[len(self.header) :]):
            row.error(
                "invalid_field",
                "",
                _(
                    "found %(found)d cells, but the header has %(columns)d columns; quote cells "
                    "that contain the delimiter"
                )
                % {"found": len(record), "columns": len(self.header)},
            )
        messages: list[dict[str, Any]] = []
        system = cell("system")
        if system.strip():
            messages.append({"role": "system", "content": system})
        key = "instruction" if "instruction" in index else "text"
        text = cell(key)
        extra_input = cell("input")
        if text.strip():
            content = f"{text}\n\n{extra_input}" if extra_input.strip() else text
            messages.append({"role": "user", "content": content})
        elif extra_input.strip():
            messages.append({"role": "user", "content": extra_input})
        else:
            self._empty(row, key)
        if "output" in index:
            output = cell("output")
            if output.strip():
                messages.append({"role": "assistant", "content": output})
            elif not options.classification:
                self._empty(row, "output")
        if not row.errors:
            row.messages = messages
        return row

    def _shikomi_fields(self, row: Row, record: list[str]) -> None:
        def cell(key: str) -> str:
            i = self.shikomi[key]
            return record[i] if i < len(record) else ""

        status = cell("status").strip()
        if status in SHIKOMI_STATUSES:
            row.status = status
        text = cell("metadata").strip()
        try:
            metadata = json.loads(text) if text else {}
        except ValueError:
            metadata = None
        if not isinstance(metadata, dict):
            column = self.header[self.shikomi["metadata"]]
            row.error(
                "invalid_field",
                column,
                _('the "%(column)s" cell must be a JSON object {...}') % {"column": column},
            )
            return
        row.metadata = {**row.metadata, **metadata}

    def _empty(self, row: Row, key: str) -> None:
        column = "+".join(self.header[i] for i in self.index[key])
        row.error(
            "empty_content",
            column,
            _('the "%(column)s" cell is empty; write its text') % {"column": column},
        )


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP, "CSV
# Injection"). A leading quote is escaped too, so that reading strips exactly the quote
# writing added and an export imports back to the same text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def escape_formula(cell: str) -> str:
    """The cell with a ' in front when a spreadsheet would take it for a formula."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def unescape_formula(cell: str) -> str:
    """The inverse of escape_formula: one leading ' dropped where escape_formula adds one."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


def cannot_hold(row: ExportRow, *, classification: bool = False) -> str | None:
    """Why a CSV/TSV row cannot hold the example (a short reason), or None. Classification:
    one user turn (text); chat: a system prompt, one user turn and its reply."""
    turns = alpaca.plain_turns(row)
    if isinstance(turns, str):
        return turns
    system, pairs = turns
    if len(pairs) > 1:
        return _("several turns")
    if classification:
        if system is not None:
            return _("system prompt")
        return _("replies") if pairs[0][1] is not None else None
    return alpaca.no_reply(pairs, classification)


def _header(classification: bool, shikomi_fields: bool) -> list[str]:
    header = ["text"] if classification else ["system", "instruction", "output"]
    if shikomi_fields and not classification:
        header.insert(2, "input")
    header += ["label", "split"]
    if shikomi_fields:
        header += [*SHIKOMI_COLUMNS, LABEL_SOURCE_COLUMN]
    return header


def _cells(row: ExportRow, classification: bool, shikomi_fields: bool) -> list[str]:
    if classification:
        text = next((m.get("content") or "" for m in row.messages if m.get("role") == "user"), "")
        cells = [text]
    else:
        record = alpaca.to_record(row.messages, with_input=shikomi_fields)
        cells = [record.get("system", ""), record["instruction"], record["output"]]
        if shikomi_fields:
            cells.insert(2, record["input"])
    split = row.split if shikomi_fields else "" if row.split == "unassigned" else row.split
    cells += [row.label or "", split]
    if shikomi_fields:
        metadata = json.dumps(row.metadata, ensure_ascii=False) if row.metadata else ""
        source = json.dumps(row.label_source, ensure_ascii=False, separators=(",", ":")) if row.label_source else ""
        cells += ["" if row.id is None else str(row.id), row.status or "", metadata, source]
    return cells


def write(
    rows: Iterable[ExportRow],
    *,
    classification: bool = False,
    delimiter: str = ",",
    raw_formulas: bool = False,
    shikomi_fields: bool = False,
) -> Iterator[bytes]:
    """Classification: text, label, split. Otherwise the last turn, as in Alpaca. With
    Shikomi fields: the input, id, status, metadata and label_source too.

    Cells a spreadsheet would run as formulas get a leading ' unless ``raw_formulas``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)

    def writerow(cells: list[str]) -> None:
        writer.writerow(cells if raw_formulas else [escape_formula(c) for c in cells])

    buffer.write("\ufeff")  # so that Excel reads UTF-8, Japanese included
    writer.writerow(_header(classification, shikomi_fields))
    count = 0
    for row in rows:
        if cannot_hold(row, classification=classification) is not None:
            continue  # counted and reported by the export before it starts
        writerow(_cells(row, classification, shikomi_fields))
        count += 1
        if count % 1000 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def write_tsv(
    rows: Iterable[ExportRow], *, classification: bool = False, raw_formulas: bool = False, shikomi_fields: bool = False
) -> Iterator[bytes]:
    return write(
        rows, classification=classification, delimiter="\t", raw_formulas=raw_formulas, shikomi_fields=shikomi_fields
    )
