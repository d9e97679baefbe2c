"""The text of an uploaded document (.txt, .md, .html, .pdf), ready to be cut into passages.

Nothing here touches the database or the network: a view or task hands over the file's name and
bytes and gets back a title and the text, or `DocumentRejected` naming the file and what is
wrong with it, so an upload is either taken whole or not at all.

- Plain text and Markdown must be UTF-8 (a BOM is fine) or UTF-16 with a BOM; anything else is
  refused at the first byte that does not decode, instead of guessing and storing mojibake.
- HTML goes through trafilatura, as fetched web pages do (`html_text`), so navigation, footers
  and the like are left out.
- PDF goes through pypdf, page by page; a PDF without a text layer (a scan) has nothing to read,
  and an encrypted one is refused rather than asked for a password.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass
from pathlib import PurePath

import trafilatura
from django.utils.translation import gettext as _
from pypdf import PageObject, PdfReader
from pypdf.errors import PdfReadError
from trafilatura.utils import decode_file

SUPPORTED = (".txt", ".md", ".html", ".htm", ".pdf")
CONTENT_TYPES = {
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
TITLE_CHARS = 200

# Control characters other than tab and newline (a PDF's form feeds, stray NULs).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACE_RUN = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_MD_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass
class Extracted:
    title: str
    text: str
    content_type: str


class DocumentRejected(ValueError):
    """The document cannot be taken; str() names the file and what is wrong with it."""


def extract_document(filename: str, data: bytes, *, max_chars: int = 5_000_000) -> Extracted:
    """The title and text of the document `filename` holding `data`; DocumentRejected when its
    type is not supported, it cannot be read, it has no text or more than `max_chars`."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in SUPPORTED:
        raise DocumentRejected(_("%(file)s: not a supported type; use .txt, .md, .html or .pdf") % {"file": filename})
    if not data:
        raise DocumentRejected(_("%(file)s: the file is empty") % {"file": filename})
    stem = PurePath(filename).stem
    if suffix == ".pdf":
        title, text = _pdf_text(filename, data, max_chars)
    elif suffix in (".html", ".htm"):
        title, text = html_text(data)
    else:
        text = normalise(_decoded(filename, data), collapse_spaces=False)
        title = _markdown_title(text) if suffix == ".md" else ""
    if not text:
        raise DocumentRejected(_("%(file)s: there is no text in it") % {"file": filename})
    if len(text) > max_chars:
        raise DocumentRejected(
            _("%(file)s: %(count)d characters of text, over the limit of %(limit)d")
            % {"file": filename, "count": len(text), "limit": max_chars}
        )
    return Extracted(title=_short(title) or stem, text=text, content_type=CONTENT_TYPES[suffix])


def normalise(text: str, *, collapse_spaces: bool = True) -> str:
    """`text` with Unix line ends, no control characters, no trailing spaces and at most one blank
    line between paragraphs; runs of spaces inside a line become one when `collapse_spaces`
    (PDF and HTML text, where spacing carries no meaning; Markdown keeps its indentation)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(lambda match: "\n" if match.group() == "\x0c" else "", text)
    lines = (line.rstrip() for line in text.split("\n"))
    if collapse_spaces:
        lines = (_SPACE_RUN.sub(" ", line).strip() for line in lines)
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_text(html: bytes | str) -> tuple[str, str]:
    """(title, main text) of an HTML page: trafilatura's main content, without comments and
    boilerplate, tables kept; ("", "") when it finds none."""
    if isinstance(html, bytes):
        html = decode_file(html)
    text = trafilatura.extract(html, include_comments=False, include_tables=True, favor_precision=True)
    if not text:
        return "", ""
    metadata = trafilatura.extract_metadata(html)
    title = (metadata.title if metadata is not None else None) or ""
    return _short(title), normalise(text)


def _decoded(filename: str, data: bytes) -> str:
    """UTF-8 (with or without a BOM) or UTF-16 with a BOM; DocumentRejected naming the offset of
    the first byte that does not decode."""
    if data.startswith(codecs.BOM_UTF8):
        encoding, skip = "utf-8", len(codecs.BOM_UTF8)
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, skip = ("utf-16-le" if data.startswith(codecs.BOM_UTF16_LE) else "utf-16-be"), 2
    else:
        encoding, skip = "utf-8", 0
    try:
        return data[skip:].decode(encoding)
    except UnicodeDecodeError as error:
        raise DocumentRejected(
            _("%(file)s: the bytes at offset %(offset)d are not %(encoding)s text; save the file as UTF-8")
            % {"file": filename, "offset": error.start + skip, "encoding": "UTF-16" if skip == 2 else "UTF-8"}
        ) from None


def _markdown_title(text: str) -> str:
    match = _MD_HEADING.search(text)
    return match.group(1) if match else ""


def _pdf_text(filename: str, data: bytes, max_chars: int) -> tuple[str, str]:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as error:
        raise DocumentRejected(
            _("%(file)s: not a readable PDF (%(error)s)") % {"file": filename, "error": error}
        ) from None
    # A PDF locked with an owner password only opens with the empty user password.
    if encrypted and not _opens_without_password(reader):
        raise DocumentRejected(
            _("%(file)s: the PDF is encrypted with a password; save an unprotected copy and upload that")
            % {"file": filename}
        )
    pages: list[str] = []
    length = 0
    for number, page in enumerate(_pages(filename, reader), start=1):
        try:
            page_text = normalise(page.extract_text() or "")
        except Exception:  # pypdf raises many kinds of error on a damaged page
            raise DocumentRejected(
                _("%(file)s: page %(page)d could not be read") % {"file": filename, "page": number}
            ) from None
        length += len(page_text)
        if length > max_chars:
            raise DocumentRejected(
                _("%(file)s: more than %(limit)d characters of text (the limit), reached on page %(page)d")
                % {"file": filename, "limit": max_chars, "page": number}
            )
        if page_text:
            pages.append(page_text)
    if not pages:
        raise DocumentRejected(_("%(file)s: the PDF has no text layer (scanned?)") % {"file": filename})
    text = "\n\n".join(pages)
    return _pdf_title(reader) or text.split("\n", 1)[0], text


def _opens_without_password(reader: PdfReader) -> bool:
    try:
        return bool(reader.decrypt(""))
    except Exception:  # an unsupported algorithm or a missing dependency reads as locked
        return False


def _pages(filename: str, reader: PdfReader) -> list[PageObject]:
    try:
        return list(reader.pages)
    except Exception:
        raise DocumentRejected(_("%(file)s: the PDF's list of pages could not be read") % {"file": filename}) from None


def _pdf_title(reader: PdfReader) -> str:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # a damaged information dictionary leaves the title to the first line
        return ""
    return str(title).strip() if title else ""


def _short(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"
