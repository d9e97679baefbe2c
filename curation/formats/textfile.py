"""Text files in whatever encoding they were saved in: detecting it, marking undecodable bytes
instead of raising, and the errors a physical line or record can have.

Nothing here holds a whole file: text is read in chunks or line by line, so memory stays
flat however large the upload is.
"""

from __future__ import annotations

import codecs
import io
import os
import re

from django.utils.translation import gettext as _

from curation.formats.rows import RowError

_UNDECODABLE = "shikomi-undecodable"
# Lone surrogates never come out of a strict utf-8, utf-16 or cp932 decoder, so one in the
# decoded text marks bytes that did not decode.
BAD_CHAR = re.compile("[\ud800-\udfff]")


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
    bad = None if line.isascii() else BAD_CHAR.search(line)
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
