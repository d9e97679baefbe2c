"""Low-level reading shared by the formats: encodings, lines, JSON records, rows and errors.

Nothing here holds a whole file: text is read in chunks or line by line, so memory stays
flat however large the upload is.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

CHUNK_CHARS = 256 * 1024
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

# Rows handed to a writer: (messages, label name or None, split, metadata).
ExportRow = tuple[list[dict[str, Any]], str | None, str, dict[str, Any]]


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
    errors: list[RowError] = field(default_factory=list)
    # False for classification-shaped rows (a text and a label): no reply is expected.
    chat: bool = True

    def error(self, code: str, field: str, message: str) -> Row:
        self.errors.append(RowError(self.line, code, field, message))
        return self


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


class DecodedTooLarge(Exception):
    """A file decodes to more than ReadOptions.max_decoded_bytes (a small Parquet file or
    archive can hold far more than its size on disk). Stops the whole import: no row of the
    file is written. ``member`` names the file inside an archive, None for the upload itself."""

    def __init__(self, member: str | None, limit: int) -> None:
        super().__init__(f"{member or 'the file'} decodes to more than {limit} bytes")
        self.member = member
        self.limit = limit


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


# --- encodings -------------------------------------------------------------------------

_UNDECODABLE = "shikomi-undecodable"
# Lone surrogates never come out of a strict utf-8, utf-16 or cp932 decoder, so one in the
# decoded text marks bytes that did not decode.
_BAD_CHAR = re.compile("[\ud800-\udfff]")


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeDecodeError)
    return "\udcff", exc.end


codecs.register_error(_UNDECODABLE, _mark_undecodable)

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _bomless_utf16(head: bytes) -> str | None:
    """UTF-16 without a BOM: ASCII text has a NUL in every other byte."""
    pairs = len(head) // 2
    if pairs < 2:
        return None
    even = head[0 : pairs * 2 : 2].count(0)
    odd = head[1 : pairs * 2 : 2].count(0)
    if odd > pairs * 0.4 and even == 0:
        return "utf-16-le"
    if even > pairs * 0.4 and odd == 0:
        return "utf-16-be"
    return None


_HIGH_BYTES = bytes(range(128, 256))


def _utf8_errors(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(undecodable sequences, non-ASCII bytes) of the file read as UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")(_UNDECODABLE)
    errors = non_ascii = 0
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            errors += decoder.decode(chunk).count("\udcff")
            non_ascii += len(chunk) - len(chunk.translate(None, _HIGH_BYTES))
    errors += decoder.decode(b"", final=True).count("\udcff")
    return errors, non_ascii


# Bytes CP932 maps to private-use characters (0xA0, 0xFD-0xFF, the user-defined area)
# are next to absent from real Shift_JIS text, and common in files that are not CP932.
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


def _is_cp932(path: str | os.PathLike[str]) -> bool:
    decoder = codecs.getincrementaldecoder("cp932")()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1024 * 1024):
                if _PRIVATE_USE.search(decoder.decode(chunk)):
                    return False
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: str | os.PathLike[str]) -> str:
    """BOM first; else UTF-8 when the whole file decodes, or when nearly all of it does
    (a few bad bytes are reported on their lines); else CP932; else UTF-8."""
    with open(path, "rb") as f:
        head = f.read(4096)
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    if guess := _bomless_utf16(head):
        return guess
    errors, non_ascii = _utf8_errors(path)
    if errors == 0 or (non_ascii and errors * 100 <= non_ascii):
        return "utf-8"
    if _is_cp932(path):
        return "cp932"
    return "utf-8"


def is_known_encoding(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


class TextFile:
    """A text file opened in its encoding, with undecodable bytes marked, not raised."""

    def __init__(self, path: str | os.PathLike[str], encoding: str = "auto") -> None:
        self.path = path
        self.size = os.path.getsize(path)
        if not encoding or encoding == "auto":
            encoding = detect_encoding(path)
        self.encoding = encoding
        self._raw: io.FileIO | None = None

    def _codec(self) -> str:
        # A BOM is not text: skip one even where "utf-8" was chosen by hand.
        return "utf-8-sig" if codecs.lookup(self.encoding).name == "utf-8" else self.encoding

    def open(self) -> io.TextIOWrapper:
        f = open(self.path, encoding=self._codec(), errors=_UNDECODABLE, newline="")  # noqa: SIM115
        self._raw = f.buffer.raw  # type: ignore[attr-defined]
        return f

    def first_char(self) -> str:
        """The first character that is not whitespace ('' for a blank file)."""
        with open(self.path, encoding=self._codec(), errors=_UNDECODABLE, newline="") as f:
            while chunk := f.read(4096):
                stripped = chunk.lstrip()
                if stripped:
                    return stripped[0]
        return ""

    def progress(self) -> float:
        if self._raw is None:
            return 0.0
        if self._raw.closed or not self.size:
            return 1.0  # read to the end
        return min(self._raw.tell() / self.size, 1.0)


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def line_problem(line: str, lineno: int, encoding: str) -> RowError | None:
    """A NUL byte or undecodable bytes in a physical line; the column helps find them."""
    nul = line.find("\x00")
    if nul >= 0:
        return RowError(
            lineno,
            "nul_byte",
            "",
            _(
                "a NUL byte (\\x00) at column %(column)d; text cannot contain NUL: "
                "remove it, or check that the file is text and not binary"
            )
            % {"column": nul + 1},
        )
    bad = None if line.isascii() else _BAD_CHAR.search(line)
    if bad:
        return RowError(
            lineno,
            "undecodable_bytes",
            "",
            _(
                "bytes at column %(column)d cannot be decoded as %(encoding)s; save the file "
                "as UTF-8, or choose the encoding it was saved in"
            )
            % {"column": bad.start() + 1, "encoding": encoding},
        )
    return None


def too_large(lineno: int, size: int | None, limit: int) -> RowError:
    if size is None:
        message = _(
            "the record is larger than %(limit)d bytes, the limit per row "
            "(SHIKOMI_MAX_ROW_BYTES); shorten it or raise the limit"
        ) % {"limit": limit}
    else:
        message = _(
            "the record is %(size)d bytes; the limit per row is %(limit)d bytes "
            "(SHIKOMI_MAX_ROW_BYTES); shorten it or raise the limit"
        ) % {"size": size, "limit": limit}
    return RowError(lineno, "row_too_large", "", message)


def truncated(lineno: int) -> RowError:
    return RowError(
        lineno,
        "truncated_file",
        "",
        _(
            "the file ends in the middle of this record; it looks cut off (an interrupted "
            "upload or export?): complete the record or remove it"
        ),
    )


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

JsonRecord = tuple[int, Any]  # (line, value), value a RowError where it could not be read


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
            yield lineno, too_large(lineno, None, max_row_bytes)
            continue
        if len(line) * 4 > max_row_bytes and (size := utf8_size(line)) > max_row_bytes:
            yield lineno, too_large(lineno, size, max_row_bytes)
            continue
        if problem := line_problem(line, lineno, encoding):
            yield lineno, problem
            continue
        if line.isspace():
            continue
        try:
            value = loads(line)
        except json.JSONDecodeError as exc:
            if not ended and _looks_cut_off(exc, len(line.rstrip())):
                yield lineno, truncated(lineno)
            else:
                yield lineno, invalid_json(lineno, exc)
            continue
        yield lineno, value


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
                yield self.line, truncated(self.line)
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
                    )
                return
            if ch == ",":
                if expect_value:
                    yield (
                        self.line,
                        RowError(self.line, "invalid_json", "", _("two commas with no element between them")),
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
                    return start_line, truncated(start_line)
                if cut_off:
                    error = too_large(start_line, None, self.max_row_bytes)
                else:
                    error = invalid_json(self._line_at(exc.pos), exc, column=self._column_at(exc.pos))
                if not self._skip_value():
                    self.stopped = True
                return start_line, error
            if end == len(self.buf) and self._fill():
                continue  # a number may go on in the next chunk
            break
        if (
            end - self.pos > self.max_row_bytes / 4
            and (size := utf8_size(self.buf[self.pos : end])) > self.max_row_bytes
        ):
            self._advance(end)
            return start_line, too_large(start_line, size, self.max_row_bytes)
        nul = self.buf.find("\x00", self.pos, end)
        bad = nul if nul >= 0 else -1
        if bad < 0 and (match := _BAD_CHAR.search(self.buf, self.pos, end)):
            bad = match.start()
        if bad >= 0:
            line_start = self.buf.rfind("\n", 0, bad) + 1
            line_end = self.buf.find("\n", bad)
            text = self.buf[line_start : line_end if line_end >= 0 else len(self.buf)]
            problem = line_problem(text, self._line_at(bad), self.encoding)
            self._advance(end)
            return start_line, problem
        self._advance(end)
        return start_line, value

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


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def batched(iterable: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in iterable:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


RowConverter = Callable[[int, dict[str, Any], ReadOptions], Row]


class JsonSource(Source):
    """Rows of a JSON Lines or JSON array file, each record turned into a Row by ``convert``."""

    def __init__(self, path: str | os.PathLike[str], options: ReadOptions, convert: RowConverter):
        self.text = TextFile(path, options.encoding)
        self.encoding = self.text.encoding
        self.options = options
        self.convert = convert

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
        for line, value in iter_json_records(self.text, options.max_row_bytes):
            if isinstance(value, dict):
                yield convert(line, value, options)
            elif isinstance(value, RowError):
                yield Row(line, errors=[value])
            else:
                yield Row(line).error(
                    "not_an_object",
                    "",
                    _("expected a JSON object {...} for each example, found %(found)s") % {"found": describe(value)},
                )

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
