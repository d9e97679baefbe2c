"""Reading JSON Lines files and JSON arrays into rows, one record at a time.

Nothing here holds a whole file: text is read in chunks or line by line, so memory stays
flat however large the upload is. Encodings and the text file itself are in `textfile`, the
row model in `rows`.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

from django.utils.translation import gettext as _

from curation.formats.mapping import Mapper, text_row
from curation.formats.mapping import no_label as no_label_error
from curation.formats.rows import FileRejected, ReadOptions, Row, RowError, Source, describe
from curation.formats.textfile import BAD_CHAR, TextFile, line_problem, too_large, truncated, utf8_size

CHUNK_CHARS = 256 * 1024


def invalid_json(lineno: int, exc: json.JSONDecodeError, column: int | None = None) -> RowError:
    return RowError(
        lineno,
        "invalid_json",
        "",
        _("not valid JSON: %(error)s at column %(column)d")
        % {"error": exc.msg, "column": column if column is not None else exc.colno},
    )


def _looks_cut_off(exc: json.JSONDecodeError, end: int) -> bool:
    """Whether decoding failed because the text ended, not because of a wrong character."""
    return exc.msg.startswith("Unterminated string") or exc.pos >= end - 5


# --- JSON Lines and JSON arrays --------------------------------------------------------

# (line, value, NUL-free), value a RowError where it could not be read; NUL-free: the record's
# text has no \u0000 escape, so no string in the value holds a NUL (strict JSON, which json
# reads, refuses raw control characters; a NUL can only be written as that escape).
JsonRecord = tuple[int, Any, bool]
NUL_ESCAPE = "\\u0000"


def iter_json_records(text: TextFile, max_row_bytes: int) -> Iterator[JsonRecord]:
    """Records of a JSON Lines file, or of a JSON array when the file starts with '['."""
    if text.first_char() == "[":
        with text.open() as f:
            yield from _ArrayReader(f, max_row_bytes, text.encoding).records()
    else:
        with text.open() as f:
            yield from _jsonl_records(f, max_row_bytes, text.encoding)


def _jsonl_records(f: io.TextIOWrapper, max_row_bytes: int, encoding: str) -> Iterator[JsonRecord]:
    loads = json.loads
    limit = max_row_bytes + 2
    lineno = 0
    while line := f.readline(limit):
        lineno += 1
        ended = line.endswith(("\n", "\r"))
        if not ended and len(line) >= limit:
            while (rest := f.readline(CHUNK_CHARS)) and not rest.endswith(("\n", "\r")):
                pass
            yield lineno, too_large(lineno, None, max_row_bytes), False
            continue
        if len(line) * 4 > max_row_bytes and (size := utf8_size(line)) > max_row_bytes:
            yield lineno, too_large(lineno, size, max_row_bytes), False
            continue
        if problem := line_problem(line, lineno, encoding):
            yield lineno, problem, False
            continue
        if line.isspace():
            continue
        try:
            value = loads(line)
        except json.JSONDecodeError as exc:
            if not ended and _looks_cut_off(exc, len(line.rstrip())):
                yield lineno, truncated(lineno), False
            else:
                yield lineno, invalid_json(lineno, exc), False
            continue
        yield lineno, value, NUL_ESCAPE not in line


_WHITESPACE = re.compile(r"[ \t\r\n]*")
_OUTSIDE_STRING = re.compile(r'[\[\]{}",]')
_INSIDE_STRING = re.compile(r'["\\]')


class _ArrayReader:
    """Elements of a top-level JSON array, decoded one at a time from a sliding buffer."""

    def __init__(self, f: io.TextIOWrapper, max_row_bytes: int, encoding: str) -> None:
        self.f = f
        self.max_row_bytes = max_row_bytes
        self.encoding = encoding
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.eof = False
        self.stopped = False  # an element could not be skipped: the rest is unreadable
        self.decode = json.JSONDecoder().raw_decode

    def _fill(self) -> bool:
        """Read more text, dropping what has been consumed; False at the end of the file."""
        if self.eof:
            return False
        chunk = self.f.read(CHUNK_CHARS)
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        if not chunk:
            self.eof = True
        return bool(chunk)

    def _advance(self, to: int) -> None:
        self.line += self.buf.count("\n", self.pos, to)
        self.pos = to

    def _skip_whitespace(self) -> bool:
        """Move to the next significant character; False at the end of the file."""
        while True:
            end = _WHITESPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            self._advance(end)
            if end < len(self.buf):
                return True
            if not self._fill():
                return False

    def _line_at(self, index: int) -> int:
        return self.line + self.buf.count("\n", self.pos, index)

    def _column_at(self, index: int) -> int:
        return index - self.buf.rfind("\n", 0, index)

    def records(self) -> Iterator[JsonRecord]:
        self._fill()
        self._skip_whitespace()
        self._advance(self.pos + 1)  # the '['
        expect_value = True
        while True:
            if not self._skip_whitespace():
                yield self.line, truncated(self.line), False
                return
            ch = self.buf[self.pos]
            if ch == "]":
                self._advance(self.pos + 1)
                if self._skip_whitespace():
                    yield (
                        self.line,
                        RowError(
                            self.line,
                            "invalid_json",
                            "",
                            _("unexpected text after the closing ] of the array"),
                        ),
                        False,
                    )
                return
            if ch == ",":
                if expect_value:
                    yield (
                        self.line,
                        RowError(self.line, "invalid_json", "", _("two commas with no element between them")),
                        False,
                    )
                self._advance(self.pos + 1)
                expect_value = True
                continue
            if not expect_value:
                yield (
                    self.line,
                    RowError(
                        self.line,
                        "invalid_json",
                        "",
                        _("expected , or ] after the previous element, found %(char)r") % {"char": ch},
                    ),
                    False,
                )
            yield self._element()
            if self.stopped:
                return
            expect_value = False

    def _element(self) -> JsonRecord:
        """Decode the element at pos, or say why it could not be."""
        start_line = self.line
        while True:
            try:
                value, end = self.decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                cut_off = _looks_cut_off(exc, len(self.buf))
                if cut_off and len(self.buf) - self.pos <= self.max_row_bytes and self._fill():
                    continue
                if cut_off and self.eof:
                    self.stopped = True
                    return start_line, truncated(start_line), False
                if cut_off:
                    error = too_large(start_line, None, self.max_row_bytes)
                else:
                    error = invalid_json(self._line_at(exc.pos), exc, column=self._column_at(exc.pos))
                if not self._skip_value():
                    self.stopped = True
                return start_line, error, False
            if end == len(self.buf) and self._fill():
                continue  # a number may go on in the next chunk
            break
        if (
            end - self.pos > self.max_row_bytes / 4
            and (size := utf8_size(self.buf[self.pos : end])) > self.max_row_bytes
        ):
            self._advance(end)
            return start_line, too_large(start_line, size, self.max_row_bytes), False
        nul = self.buf.find("\x00", self.pos, end)
        bad = nul if nul >= 0 else -1
        if bad < 0 and (match := BAD_CHAR.search(self.buf, self.pos, end)):
            bad = match.start()
        if bad >= 0:
            line_start = self.buf.rfind("\n", 0, bad) + 1
            line_end = self.buf.find("\n", bad)
            text = self.buf[line_start : line_end if line_end >= 0 else len(self.buf)]
            problem = line_problem(text, self._line_at(bad), self.encoding)
            self._advance(end)
            return start_line, problem, False
        nul_free = self.buf.find(NUL_ESCAPE, self.pos, end) < 0
        self._advance(end)
        return start_line, value, nul_free

    def _skip_value(self) -> bool:
        """Skip an element that did not decode by matching brackets; False at EOF."""
        depth = 0
        in_string = False
        i = self.pos
        while True:
            pattern = _INSIDE_STRING if in_string else _OUTSIDE_STRING
            match = pattern.search(self.buf, i)
            if match is None:
                self._advance(len(self.buf))
                if not self._fill():
                    return False
                i = self.pos
                continue
            i = match.end()
            ch = match.group()
            if in_string:
                if ch == "\\":
                    if i >= len(self.buf):
                        self._advance(i - 1)
                        if not self._fill():
                            return False
                        i = self.pos + 1
                    i += 1
                else:
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch in "[{":
                depth += 1
            elif ch in "]}" or ch == ",":
                if ch != "," and depth > 0:
                    depth -= 1
                    if depth == 0:
                        self._advance(i)
                        return True
                elif depth == 0:
                    self._advance(i - 1)
                    return True


RowConverter = Callable[[int, dict[str, Any], ReadOptions], Row]


class JsonSource(Source):
    """Rows of a JSON Lines or JSON array file, each record turned into a Row by ``convert``,
    after the column mapping (mapping.py); a mapping that names ``text`` reads classification
    texts whatever the format. A classification project's file in which no record has a label
    is rejected at its end (FileRejected), before anything of it is committed."""

    def __init__(self, path: str | os.PathLike[str], options: ReadOptions, convert: RowConverter):
        self.text = TextFile(path, options.encoding)
        self.encoding = self.text.encoding
        self.options = options
        self.mapper = Mapper(options.mapping)
        self.convert = text_row if "text" in self.mapper.mapping else convert

    def __iter__(self) -> Iterator[Row]:
        for number, row in enumerate(self._rows(), start=1):
            if row.errors and self._is_array():
                # Line numbers alone cannot tell apart the elements of a one-line array.
                for error in row.errors:
                    error.message += _(" (element %(n)d of the array)") % {"n": number}
            yield row

    def _rows(self) -> Iterator[Row]:
        convert = self.convert
        options = self.options
        mapper = self.mapper if self.mapper.mapping else None
        labels = options.classification  # a label column still to find
        keys: dict[str, None] = {}  # the keys found, to name them when none is the label
        for line, value, nul_free in iter_json_records(self.text, options.max_row_bytes):
            if isinstance(value, dict):
                if labels:
                    labels = not self.mapper.has("label", value)
                    if len(keys) < 50:
                        keys.update(dict.fromkeys(value))
                row = convert(line, value, options) if mapper is None else mapper.convert(convert, line, value, options)
                row.nul_free = nul_free  # everything in the row comes from this record
                yield row
            elif isinstance(value, RowError):
                yield Row(line, errors=[value])
            else:
                yield Row(line).error(
                    "not_an_object",
                    "",
                    _("expected a JSON object {...} for each example, found %(found)s") % {"found": describe(value)},
                )
        if labels and keys:
            raise FileRejected(no_label_error(keys))

    def _is_array(self) -> bool:
        if not hasattr(self, "_array"):
            with open(self.text.path, "rb") as f:
                head = f.read(4096)
            try:
                text = head.decode(self.encoding or "utf-8", errors="ignore")
            except LookupError:
                text = head.decode("utf-8", errors="ignore")
            self._array = text.lstrip("\ufeff \t\r\n").startswith("[")
        return self._array

    def progress(self) -> float:
        return self.text.progress()
