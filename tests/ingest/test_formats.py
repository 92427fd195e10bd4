"""Word, PowerPoint, Excel, CSV and HTML: structure, citations' places, and clear errors."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import pytest

from core.errors import CorruptDocumentError, EmptyDocumentError, ProtectedDocumentError
from ingest.loader import load_document
from ingest.parse_helpers import OLE_MAGIC
from tests.ingest.office_documents import (
    FACT,
    csv_bytes,
    docx_bytes,
    html_bytes,
    pptx_bytes,
    xlsx_bytes,
)

BUILDERS: dict[str, Callable[[], bytes]] = {
    "plan.docx": docx_bytes,
    "plan.pptx": pptx_bytes,
    "plan.xlsx": xlsx_bytes,
    "plan.csv": csv_bytes,
    "plan.html": html_bytes,
}
LABELS = {
    "plan.docx": "damaged Word document",
    "plan.pptx": "damaged PowerPoint presentation",
    "plan.xlsx": "damaged Excel workbook",
    "plan.csv": "damaged CSV file",
    "plan.html": "damaged HTML page",
}


def load(data: bytes, filename: str):  # type: ignore[no-untyped-def]
    return load_document(data, filename, max_bytes=10_000_000, max_pages=100, timeout_s=60)


def test_docx_keeps_headings_as_sections_and_tables_as_labelled_rows() -> None:
    document = load(docx_bytes(), "plan.docx")
    assert document.page_unit == "document"
    assert [(h.level, h.title) for h in document.headings] == [
        (1, "Annual plan"),
        (2, "Lighthouse budget"),
    ]
    assert FACT in document.pages[0].text
    assert "Station: Bergen; Keepers: 3" in document.pages[0].text


def test_pptx_is_one_page_per_slide_with_titles_and_notes() -> None:
    document = load(pptx_bytes(), "plan.pptx")
    assert document.page_unit == "slide"
    assert [h.title for h in document.headings] == ["Welcome", "Budget", "Staff"]
    assert FACT in document.pages[1].text
    assert "Speaker notes: Mention the new radio beacon in Stavanger." in document.pages[2].text


def test_xlsx_is_one_page_per_sheet_with_rows_named_by_header() -> None:
    document = load(xlsx_bytes(), "plan.xlsx")
    assert document.page_unit == "sheet"
    assert [h.title for h in document.headings] == ["Summary", "Budget 2025"]
    assert (
        "Row 2: Station: Lighthouse; Budget (million kroner): 4.2; City: Bergen"
        in document.pages[1].text
    )


def test_csv_is_one_sheet_named_after_the_file() -> None:
    document = load(csv_bytes(), "stations.csv")
    assert [h.title for h in document.headings] == ["stations"]
    assert "Row 3: Station: Radio beacon; Budget (million kroner): 1.1; City: Stavanger" in (
        document.pages[0].text
    )


def test_csv_with_semicolons_is_sniffed() -> None:
    document = load(b"Name;City\nAnna;Oslo\n", "people.csv")
    assert "Row 2: Name: Anna; City: Oslo" in document.pages[0].text


def test_html_keeps_main_text_and_headings_and_drops_boilerplate() -> None:
    document = load(html_bytes(), "plan.html")
    text = document.pages[0].text
    assert FACT in text
    assert "cookies" not in text and "Log in" not in text
    assert [h.title for h in document.headings] == ["Coastal plan", "Lighthouse budget", "Staff"]


@pytest.mark.parametrize("filename", sorted(BUILDERS))
def test_corrupt_file_gets_its_format_named_error(filename: str) -> None:
    good = BUILDERS[filename]()
    # Office files: a ZIP cut in half; CSV and HTML: binary junk.
    corrupt = good[: len(good) // 2] if good.startswith(b"PK") else bytes(range(256)) * 8
    with pytest.raises(CorruptDocumentError) as caught:
        load(corrupt, filename)
    assert caught.value.message.startswith(f"'{filename}' is a {LABELS[filename]}")
    assert "save a fresh copy" in caught.value.message


@pytest.mark.parametrize("filename", ["plan.docx", "plan.pptx", "plan.xlsx"])
def test_zip_without_the_office_parts_is_corrupt(filename: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not an office file")
    with pytest.raises(CorruptDocumentError, match=LABELS[filename]):
        load(buffer.getvalue(), filename)


@pytest.mark.parametrize("filename", ["plan.docx", "plan.pptx", "plan.xlsx"])
def test_password_protected_office_file_is_refused_clearly(filename: str) -> None:
    # Office encrypts a protected file into an OLE compound file ("EncryptedPackage").
    protected = OLE_MAGIC + b"\0" * 4096
    with pytest.raises(ProtectedDocumentError) as caught:
        load(protected, filename)
    assert caught.value.code == "password_protected"
    assert f"'{filename}' is a password-protected" in caught.value.message
    assert "Remove the password" in caught.value.message


def test_sheet_without_rows_is_empty() -> None:
    with pytest.raises(EmptyDocumentError, match=r"'blank\.csv' is a CSV file without any text"):
        load(b"\n\n", "blank.csv")
