"""ingest.pdf on the real PDFs in ../shared/data/pdfs and on deliberately broken bytes."""

from __future__ import annotations

import base64
import io
import logging
import random
import zlib
from pathlib import Path

import pypdf
import pytest
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject, StreamObject

from core.errors import (
    CorruptDocumentError,
    DocumentError,
    DocumentTooComplexError,
    EmptyDocumentError,
    NoTextLayerError,
    PasswordRequiredError,
    UnsupportedFileTypeError,
    WrongPasswordError,
)
from ingest.pdf import TextMode, clean_pages, looks_tabular, parse_pdf


def assert_names_file(error: DocumentError, filename: str) -> None:
    assert error.filename == filename
    assert f"'{filename}'" in error.message


# --- real documents -----------------------------------------------------------------


def test_attention_paper_pages_are_numbered_from_one(attention_pdf: bytes) -> None:
    doc = parse_pdf(attention_pdf, "attention.pdf", max_pages=2000)
    assert doc.media_type == "application/pdf"
    assert doc.filename == "attention.pdf"
    assert [page.number for page in doc.pages] == list(range(1, 16))
    assert "Attention Is All You Need" in doc.pages[0].text


def test_attention_paper_facts_are_on_the_right_pages(attention_pdf: bytes) -> None:
    doc = parse_pdf(attention_pdf, "attention.pdf", max_pages=2000)

    def pages_with(text: str) -> list[int]:
        return [page.number for page in doc.pages if text in page.text]

    # Section 5.2 "Hardware and Schedule" is on page 7; the results section that repeats
    # the figure as "8 P100 GPUs" is on page 8.
    assert pages_with("8 NVIDIA P100 GPUs") == [7]
    assert pages_with("(3.5 days)") == [7]
    assert pages_with("Training took 3.5 days on 8 P100 GPUs") == [8]


def test_federal_register_long_prose(pdf_dir: Path) -> None:
    doc = parse_pdf(
        (pdf_dir / "federal-register-2020-17221.pdf").read_bytes(), "fr.pdf", max_pages=2000
    )
    assert doc.page_count == 15
    assert sum(len(page.text) for page in doc.pages) > 50_000


def test_crazyones_text_with_ligatures_resolved(pdf_dir: Path) -> None:
    doc = parse_pdf((pdf_dir / "crazyones.pdf").read_bytes(), "crazyones.pdf", max_pages=2000)
    assert doc.page_count == 1
    assert doc.pages[0].text.startswith("The Crazy Ones")
    assert "The misfits." in doc.pages[0].text  # the PDF has the 'ﬁ' ligature
    assert "\ufb01" not in doc.pages[0].text


def test_pypdf_warnings_are_not_logged(pdf_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    # This file makes pypdf warn about fonts on every page.
    with caplog.at_level(logging.DEBUG):
        parse_pdf(
            (pdf_dir / "federal-register-2020-17221.pdf").read_bytes(), "fr.pdf", max_pages=2000
        )
    assert not [record for record in caplog.records if record.name.startswith("pypdf")]


# --- encryption ---------------------------------------------------------------------


def test_aes256_file_needs_its_password(pdf_dir: Path) -> None:
    # The data README says this file has an empty user password; it does not: pypdf's
    # own tests open it with the user password "password" (and so do we).
    data = (pdf_dir / "crazyones-encrypted-256.pdf").read_bytes()
    with pytest.raises(PasswordRequiredError) as caught:
        parse_pdf(data, "crazy-aes.pdf", max_pages=2000)
    assert_names_file(caught.value, "crazy-aes.pdf")

    doc = parse_pdf(data, "crazy-aes.pdf", password="password", max_pages=2000)
    plain = parse_pdf((pdf_dir / "crazyones.pdf").read_bytes(), "crazyones.pdf", max_pages=2000)
    assert doc.pages == plain.pages


def test_aes256_with_empty_user_password_opens_without_one(pdf_dir: Path) -> None:
    writer = PdfWriter(clone_from=io.BytesIO((pdf_dir / "crazyones.pdf").read_bytes()))
    writer.encrypt(user_password="", owner_password="owner-secret", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)

    doc = parse_pdf(buffer.getvalue(), "restricted.pdf", max_pages=2000)
    assert doc.pages[0].text.startswith("The Crazy Ones")


def test_password_protected_file(pdf_dir: Path) -> None:
    data = (pdf_dir / "encrypted-password-openpassword.pdf").read_bytes()
    with pytest.raises(PasswordRequiredError) as missing:
        parse_pdf(data, "secret.pdf", max_pages=2000)
    assert_names_file(missing.value, "secret.pdf")
    assert "password" in missing.value.message

    with pytest.raises(WrongPasswordError) as wrong:
        parse_pdf(data, "secret.pdf", password="letmein", max_pages=2000)
    assert_names_file(wrong.value, "secret.pdf")

    doc = parse_pdf(data, "secret.pdf", password="openpassword", max_pages=2000)
    assert doc.page_count >= 1
    assert doc.pages[0].text.strip()


# --- bad input ----------------------------------------------------------------------


def test_scanned_document_has_no_text_layer(pdf_dir: Path) -> None:
    with pytest.raises(NoTextLayerError) as caught:
        parse_pdf(
            (pdf_dir / "images-with-little-text.pdf").read_bytes(), "scan.pdf", max_pages=2000
        )
    assert_names_file(caught.value, "scan.pdf")
    assert "looks scanned" in caught.value.message
    assert "OCR" in caught.value.message


def test_zero_bytes_is_empty() -> None:
    with pytest.raises(EmptyDocumentError) as caught:
        parse_pdf(b"", "nothing.pdf", max_pages=2000)
    assert_names_file(caught.value, "nothing.pdf")


def test_random_bytes_are_not_a_pdf() -> None:
    data = random.Random(1).randbytes(4096).replace(b"%PDF-", b"")
    with pytest.raises(UnsupportedFileTypeError) as caught:
        parse_pdf(data, "fake.pdf", max_pages=2000)
    assert_names_file(caught.value, "fake.pdf")
    assert "is not a PDF" in caught.value.message


def test_truncated_pdf_is_corrupt(attention_pdf: bytes) -> None:
    with pytest.raises(CorruptDocumentError) as caught:
        parse_pdf(attention_pdf[: len(attention_pdf) // 2], "cut.pdf", max_pages=2000)
    assert_names_file(caught.value, "cut.pdf")
    assert "truncated" in caught.value.message


def test_garbage_between_header_and_eof_is_corrupt() -> None:
    data = b"%PDF-1.7\n" + random.Random(7).randbytes(5000) + b"\n%%EOF\n"
    with pytest.raises(CorruptDocumentError) as caught:
        parse_pdf(data, "broken.pdf", max_pages=2000)
    assert_names_file(caught.value, "broken.pdf")
    assert "damaged" in caught.value.message


def test_too_many_pages(attention_pdf: bytes) -> None:
    with pytest.raises(DocumentTooComplexError) as caught:
        parse_pdf(attention_pdf, "long.pdf", max_pages=10)
    assert_names_file(caught.value, "long.pdf")
    assert "15 pages" in caught.value.message
    assert "10" in caught.value.message


def test_decompression_limits_are_on() -> None:
    assert pypdf.get_configuration().zlib_maximum_output_length == 75_000_000


def _page_drawing(
    writer: PdfWriter, content: bytes, *, via_form: bool, ascii85: bool = False
) -> None:
    """A page of ``writer`` that draws ``content`` (compressed, then with ``ascii85`` also
    written as ASCII85 text) directly or via a form."""
    page = writer.add_blank_page(612, 792)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    fonts = DictionaryObject({NameObject("/F1"): writer._add_object(font)})
    stream = StreamObject()
    stream._data = zlib.compress(content, 1)
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    if ascii85:
        stream._data = base64.a85encode(stream._data, adobe=True)[2:]  # "<~" is not PDF's
        filters = [NameObject("/ASCII85Decode"), NameObject("/FlateDecode")]
        stream[NameObject("/Filter")] = ArrayObject(filters)
    resources = DictionaryObject({NameObject("/Font"): fonts})
    if via_form:
        stream[NameObject("/Type")] = NameObject("/XObject")
        stream[NameObject("/Subtype")] = NameObject("/Form")
        stream[NameObject("/BBox")] = ArrayObject([NumberObject(n) for n in (0, 0, 612, 792)])
        stream[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
        resources[NameObject("/XObject")] = DictionaryObject(
            {NameObject("/Fm1"): writer._add_object(stream)}
        )
        drawing = StreamObject()
        drawing._data = b"/Fm1 Do"
        page[NameObject("/Contents")] = writer._add_object(drawing)
    else:
        page[NameObject("/Contents")] = writer._add_object(stream)
    page[NameObject("/Resources")] = resources


@pytest.mark.parametrize(
    ("text_mode", "via_form", "encrypted", "ascii85"),
    [
        ("pdfium", False, False, False),
        ("pdfium", True, False, False),
        # Streams the bytes do not show as plain Flate: pypdf's walk decides.
        ("pdfium", True, True, False),
        ("pdfium", False, False, True),
        ("plain", False, False, False),
        ("auto", False, False, False),
    ],
)
def test_decompression_bomb_is_refused(
    text_mode: TextMode, via_form: bool, encrypted: bool, ascii85: bool
) -> None:
    """A 0.5 MB page whose content stream (or the form it draws) inflates to 100 MB stops
    at pypdf's limit, whichever library extracts the text."""
    writer = PdfWriter()
    content = b"BT /F1 12 Tf 72 720 Td (hi) Tj ET\n" + b" " * (100 * 1024 * 1024)
    _page_drawing(writer, content, via_form=via_form, ascii85=ascii85)
    if encrypted:  # an empty user password, as on many SEC filings
        writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    assert len(buffer.getvalue()) < 1024 * 1024

    with pytest.raises(DocumentTooComplexError) as caught:
        parse_pdf(buffer.getvalue(), "bomb.pdf", max_pages=2000, text_mode=text_mode)
    assert_names_file(caught.value, "bomb.pdf")


def test_text_drawn_by_a_form_is_read() -> None:
    writer = PdfWriter()
    content = b"BT /F1 12 Tf 72 720 Td (Quarterly revenue rose in every region.) Tj ET"
    _page_drawing(writer, content, via_form=True)
    buffer = io.BytesIO()
    writer.write(buffer)
    doc = parse_pdf(buffer.getvalue(), "form.pdf", max_pages=10, text_mode="pdfium")
    assert doc.pages[0].text == "Quarterly revenue rose in every region."


# --- text cleanup -------------------------------------------------------------------


def test_cleanup_normalizes_whitespace_and_keeps_pages_apart() -> None:
    pages = clean_pages(["  Line  one\t\tends \r\nLine two\n\n\n\nNext\x00para  ", "", "Page 3"])
    assert pages == ["Line one ends\nLine two\n\nNext para", "", "Page 3"]


def test_cleanup_rejoins_words_split_at_line_ends() -> None:
    pages = clean_pages(
        [
            "The transduc-\ntion model. A sequence-\naligned RNN. Koray Kavuk-\ncuoglu.",
            "Sequence transduction is hard. Soft\u00adhyphen\u00ad\nated.",
        ]
    )
    # "transduction" occurs unbroken elsewhere in the document: rejoined. "sequencealigned"
    # does not: the hyphen stays and only the line break goes.
    assert pages[0] == "The transduction model. A sequence-aligned RNN. Koray Kavuk-cuoglu."
    assert pages[1] == "Sequence transduction is hard. Softhyphenated."


def test_page_text_keeps_hyphenated_compounds(attention_pdf: bytes) -> None:
    doc = parse_pdf(attention_pdf, "attention.pdf", max_pages=2000)
    text = "\n".join(page.text for page in doc.pages)
    assert "English-to-German" in text
    assert "sequence-aligned" in text
    assert "transduction" in text
    assert "transduc-" not in text


# --- tables --------------------------------------------------------------------------

SCATTERED_TABLE = "Consolidated Statement of Cash Flows\n(Millions)\n2018\n2017\n2016\n" + (
    "Net income\n$\n5,363\n$\n4,869\n$\n5,058\nDepreciation and amortization\n1,488\n1,544\n"
    "1,474\nInventories\n(509)\n(387)\n57\nAccounts payable\n408\n24\n148\n"
)
ROWS_RUN_TOGETHER = "Year Ended December 31,\n" + "\n".join(
    f"{a} {b} {c} Label of the next row {n}"
    for n, (a, b, c) in enumerate([("596", "2,371", "3,033")] * 14)
)


def test_plain_text_of_a_table_looks_tabular() -> None:
    assert looks_tabular(SCATTERED_TABLE)
    assert looks_tabular(ROWS_RUN_TOGETHER)


def test_prose_with_a_few_numbers_does_not_look_tabular(pdf_dir: Path) -> None:
    pages = parse_pdf(
        (pdf_dir / "federal-register-2020-17221.pdf").read_bytes(),
        "fr.pdf",
        max_pages=50,
        text_mode="plain",
    ).pages
    assert not any(looks_tabular(page.text) for page in pages)


def amazon_cash_flow_page() -> bytes:
    """Page 37 of Amazon's 2017 10-K (its cash-flow statement) as a PDF of its own: the
    modes decide page by page, and parsing all 90 pages twice took most of a minute."""
    from benchmarks import data as test_data

    source = pypdf.PdfReader(test_data.path("financebench-dev/pdfs/AMAZON_2017_10K.pdf"))
    writer = PdfWriter()
    writer.add_page(source.pages[36])
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_auto_mode_keeps_a_statement_row_on_one_line() -> None:
    """Amazon's cash-flow statement: plain mode puts each row's amounts before the next
    row's label; auto mode reads that page in layout mode, one row per line."""
    data = amazon_cash_flow_page()
    plain = parse_pdf(data, "a.pdf", max_pages=200, text_mode="plain").pages[0].text
    auto = parse_pdf(data, "a.pdf", max_pages=200, text_mode="auto").pages[0].text
    assert "Net income" in plain.split("\n")
    assert "596 2,371 3,033 Adjustments" in plain
    assert "Net income 596 2,371 3,033" in auto.split("\n")


def test_pdfium_mode_keeps_a_statement_row_on_one_line() -> None:
    """The same cash-flow statement: PDFium's text has each printed row on one line, with
    single spaces (pypdf's layout mode pads them to the page's columns)."""
    page = parse_pdf(amazon_cash_flow_page(), "a.pdf", max_pages=200, text_mode="pdfium").pages[0]
    text = page.text
    assert "Net income 596 2,371 3,033" in text.split("\n")


def test_pdfium_and_pypdf_read_the_same_words(attention_pdf: bytes) -> None:
    """Line breaks and spacing differ; the words, hyphenated compounds included, do not."""
    pdfium = parse_pdf(attention_pdf, "a.pdf", max_pages=50, text_mode="pdfium")
    pypdf_text = parse_pdf(attention_pdf, "a.pdf", max_pages=50, text_mode="plain")
    for ours, theirs in zip(pdfium.pages, pypdf_text.pages, strict=True):
        words = set(ours.text.split())
        shared = words & set(theirs.text.split())
        assert len(shared) / len(words) > 0.9, ours.number
