"""Text from uploaded documents: each supported type read as users upload it, and each bad file
refused with a message naming the file and what is wrong."""

from __future__ import annotations

import codecs
import io

import pytest
from pypdf import PdfReader, PdfWriter

from curation.sources.documents import DocumentRejected, extract_document


def test_it_reads_a_pdf_text_layer_page_by_page_with_the_metadata_title(doc_pdf) -> None:
    data = doc_pdf([["Koji mould turns starch into sugar."], ["Yeast turns sugar into alcohol."]], title="Sake basics")

    extracted = extract_document("sake.pdf", data)

    assert extracted.title == "Sake basics"
    assert extracted.content_type == "application/pdf"
    assert extracted.text == "Koji mould turns starch into sugar.\n\nYeast turns sugar into alcohol."


def test_a_pdf_without_a_title_takes_its_first_line(doc_pdf) -> None:
    extracted = extract_document("notes.pdf", doc_pdf([["Polishing ratios", "Ginjo rice is polished to 60%."]]))

    assert extracted.title == "Polishing ratios"
    assert "Ginjo rice is polished to 60%." in extracted.text


def test_an_encrypted_pdf_is_refused(doc_pdf) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(doc_pdf([["Secret recipe"]]))))
    writer.encrypt(user_password="secret", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)

    with pytest.raises(DocumentRejected, match=r"^locked\.pdf: the PDF is encrypted with a password"):
        extract_document("locked.pdf", out.getvalue())


def test_a_pdf_locked_only_against_editing_is_read(doc_pdf) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(doc_pdf([["Open to read"]]))))
    writer.encrypt(user_password="", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)

    assert extract_document("open.pdf", out.getvalue()).text == "Open to read"


def test_a_pdf_without_a_text_layer_is_refused() -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    out = io.BytesIO()
    writer.write(out)

    with pytest.raises(DocumentRejected, match=r"^scan\.pdf: the PDF has no text layer \(scanned\?\)"):
        extract_document("scan.pdf", out.getvalue())


def test_bytes_that_are_not_a_pdf_are_refused() -> None:
    with pytest.raises(DocumentRejected, match=r"^fake\.pdf: not a readable PDF"):
        extract_document("fake.pdf", b"this is not a PDF at all")


def test_a_pdf_over_the_character_limit_is_refused_naming_the_page(doc_pdf) -> None:
    data = doc_pdf([["short"], ["a longer second page of text"]])

    with pytest.raises(DocumentRejected, match=r"^long\.pdf: more than 20 characters .* page 2"):
        extract_document("long.pdf", data, max_chars=20)


def test_an_html_document_keeps_the_article_and_drops_the_navigation(web_html) -> None:
    article = (
        "<p>Sake is brewed from polished rice, water, yeast and koji mould, and the polishing ratio "
        "changes its flavour a great deal.</p><p>Fermentation takes several weeks at a low temperature "
        "before the mash is pressed.</p>"
    )

    extracted = extract_document("brewing.html", web_html("Brewing sake", article))

    assert extracted.content_type == "text/html"
    assert extracted.title == "Brewing sake"
    assert "the polishing ratio changes its flavour" in extracted.text
    assert "Fermentation takes several weeks" in extracted.text
    assert "menu entry" not in extracted.text
    assert "Copyright" not in extracted.text


def test_markdown_takes_its_title_from_the_first_heading_and_keeps_paragraphs() -> None:
    data = b"Intro line\r\n\r\n# Koji   guide\r\n\r\nFirst paragraph.   \r\n\r\n\r\n\r\nSecond\tparagraph.\r\n"

    extracted = extract_document("guide.md", data)

    assert extracted.title == "Koji guide"
    assert extracted.content_type == "text/markdown"
    assert extracted.text == "Intro line\n\n# Koji   guide\n\nFirst paragraph.\n\nSecond\tparagraph."


def test_text_in_utf8_with_a_bom_and_utf16_is_read() -> None:
    assert extract_document("a.txt", codecs.BOM_UTF8 + "酒造り".encode()).text == "酒造り"
    utf16 = extract_document("b.txt", "麹\nkoji".encode("utf-16"))
    assert utf16.text == "麹\nkoji"
    assert utf16.title == "b"
    assert utf16.content_type == "text/plain"


def test_text_that_is_not_utf8_is_refused_naming_the_offset() -> None:
    data = b"sake " + "酒".encode("cp932")

    with pytest.raises(DocumentRejected, match=r"^old\.txt: the bytes at offset 5 are not UTF-8 text"):
        extract_document("old.txt", data)


def test_an_unsupported_type_is_refused_naming_the_supported_ones() -> None:
    with pytest.raises(DocumentRejected) as refused:
        extract_document("notes.docx", b"PK\x03\x04")

    assert str(refused.value) == "notes.docx: not a supported type; use .txt, .md, .html or .pdf"


def test_an_empty_or_blank_file_is_refused() -> None:
    with pytest.raises(DocumentRejected, match=r"^empty\.txt: the file is empty"):
        extract_document("empty.txt", b"")
    with pytest.raises(DocumentRejected, match=r"^blank\.md: there is no text in it"):
        extract_document("blank.md", b"  \n\n \n")


def test_a_pdf_page_that_cannot_be_read_is_refused_naming_the_page(doc_pdf) -> None:
    data = doc_pdf([["fine"], ["bad"]]).replace(b"(bad) Tj", b"<ZZZ> Tj")

    with pytest.raises(DocumentRejected, match=r"^broken\.pdf: page 2 could not be read$"):
        extract_document("broken.pdf", data)
