"""CSV and TSV files: a header row, then one example per record.

Columns are found by name, or by the ``mapping`` option ({"text": "Body", "label":
"Category"}). A "text" column is the user's message of a classification example; an
"instruction" (with optional "input", "output", "system") is read as in Alpaca. Columns not
mapped are kept in metadata. Quoted fields may hold line breaks; the line of a row is the
physical line where its record starts.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils.translation import gettext as _

from curation.formats import alpaca
from curation.formats.rows import ExportRow, ReadOptions, Row, RowError, Source
from curation.formats.textfile import TextFile, line_problem, too_large, truncated, utf8_size

MAPPING_KEYS = ("text", "label", "instruction", "input", "output", "system", "split")
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
            columns: _Columns | None = None
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
                    columns = _Columns(record, self.options.mapping)
                    if columns.errors:
                        yield Row(start, errors=columns.errors)
                        return
                    continue
                yield columns.row(start, record, self.options)


def read(path: str | os.PathLike[str], options: ReadOptions, delimiter: str = ",") -> TabularSource:
    return TabularSource(path, options, delimiter)


class _Columns:
    """Where each canonical field is in the header, and which columns go to metadata."""

    def __init__(self, header: list[str], mapping: dict[str, str] | None) -> None:
        self.header = [cell.strip() for cell in header]
        self.header[0] = self.header[0].lstrip("\ufeff")
        self.errors: list[RowError] = []
        names = ", ".join(f'"{name}"' for name in self.header)
        self.index: dict[str, int] = {}
        if mapping:
            for key, column in mapping.items():
                if column in self.header:
                    self.index[key] = self.header.index(column)
                else:
                    self.errors.append(
                        RowError(
                            1,
                            "missing_column",
                            key,
                            _(
                                'column "%(column)s" (mapped to %(key)s) is not in the header; '
                                "the columns are: %(names)s"
                            )
                            % {"column": column, "key": key, "names": names},
                        )
                    )
        else:
            lowered = [name.lower() for name in self.header]
            for key in MAPPING_KEYS:
                if key in lowered:
                    self.index[key] = lowered.index(key)
        if "instruction" in self.index and not mapping:
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
        mapped = set(self.index.values())
        self.extra = [(i, name) for i, name in enumerate(self.header) if i not in mapped]

    def row(self, line: int, record: list[str], options: ReadOptions) -> Row:
        record = [unescape_formula(c) for c in record]  # the ' an export put before "=1+1"
        index = self.index

        def cell(key: str) -> str:
            i = index.get(key)
            return record[i] if i is not None and i < len(record) else ""

        row = Row(line, None, cell("label").strip() or None, cell("split").strip() or None)
        row.metadata = {name: record[i] if i < len(record) else "" for i, name in self.extra}
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

    def _empty(self, row: Row, key: str) -> None:
        column = self.header[self.index[key]]
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


def write(
    rows: Iterable[ExportRow], *, classification: bool = False, delimiter: str = ",", raw_formulas: bool = False
) -> Iterator[bytes]:
    """Classification: text, label, split. Otherwise the last turn, as in Alpaca.

    Cells a spreadsheet would run as formulas get a leading ' unless ``raw_formulas``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)

    def writerow(cells: list[str]) -> None:
        writer.writerow(cells if raw_formulas else [escape_formula(c) for c in cells])

    buffer.write("\ufeff")  # so that Excel reads UTF-8, Japanese included
    if classification:
        writer.writerow(["text", "label", "split"])
    else:
        writer.writerow(["system", "instruction", "output", "label", "split"])
    count = 0
    for messages, label, split, _metadata in rows:
        split_cell = "" if split == "unassigned" else split
        if classification:
            text = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
            writerow([text, label or "", split_cell])
        else:
            record = alpaca.to_record(messages)
            writerow([record.get("system", ""), record["instruction"], record["output"], label or "", split_cell])
        count += 1
        if count % 1000 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def write_tsv(
    rows: Iterable[ExportRow], *, classification: bool = False, raw_formulas: bool = False
) -> Iterator[bytes]:
    return write(rows, classification=classification, delimiter="\t", raw_formulas=raw_formulas)
