"""OCR in the parser workers: scans, images, mixed PDFs, and the clear errors around them."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from core.errors import CorruptDocumentError, NoTextLayerError, UnsupportedFileTypeError
from ingest.loader import load_document
from ingest.models import Page, ParsedDocument
from ingest.ocr import fill_missing_pages, fix_digit_o, pages_needing_ocr, restore_spaces
from tests.conftest import PROJECT_ROOT
from tests.ingest.office_documents import image_only_pdf, text_image
from tests.privacy.documents import text_pdf

SENTENCE = "Harbour fees rose to ninety crowns"


def load(data: bytes, filename: str, **options: object) -> ParsedDocument:
    return load_document(
        data, filename, max_bytes=50_000_000, max_pages=100, timeout_s=300, **options
    )  # type: ignore[arg-type]


def test_image_only_pdf_with_nothing_readable_says_ocr_found_no_text(pdf_dir: Path) -> None:
    data = (pdf_dir / "images-with-little-text.pdf").read_bytes()
    with pytest.raises(NoTextLayerError) as caught:
        load(data, "images-with-little-text.pdf")
    message = caught.value.message
    assert message.startswith("'images-with-little-text.pdf' has almost no extractable text")
    assert "OCR found no readable text on its 6 image pages either" in message


def test_scans_are_refused_as_before_when_ocr_is_off(pdf_dir: Path) -> None:
    data = (pdf_dir / "images-with-little-text.pdf").read_bytes()
    with pytest.raises(NoTextLayerError, match=r"OCR is turned off on this server \(PGPT_OCR"):
        load(data, "scan.pdf", ocr=False)


def test_images_are_refused_when_ocr_is_off() -> None:
    with pytest.raises(UnsupportedFileTypeError, match="reading images needs OCR"):
        load(text_image([SENTENCE]), "note.png", ocr=False)


def test_mixed_pdf_keeps_the_text_layer_and_ocrs_the_image_page() -> None:
    text_page = text_pdf([["The text layer page talks about lighthouse keepers."] * 3])
    image = Image.open(io.BytesIO(text_image([SENTENCE, "Payment is due within thirty days"])))
    scan = image_only_pdf([image])
    writer = PdfWriter()
    for source in (text_page, scan):
        for page in PdfReader(io.BytesIO(source)).pages:
            writer.add_page(page)
    buffer = io.BytesIO()
    writer.write(buffer)
    progress: list[tuple[int, int]] = []
    document = load(
        buffer.getvalue(), "mixed.pdf", progress=lambda done, total: progress.append((done, total))
    )
    assert document.ocr_pages == (2,)
    assert "lighthouse keepers" in document.pages[0].text
    assert "ninety crowns" in document.pages[1].text.lower()
    assert progress == [(0, 1), (1, 1)]


def test_webp_and_jpeg_images_are_documents_of_one_page() -> None:
    for kind, name in (("WEBP", "note.webp"), ("JPEG", "note.jpg")):
        document = load(text_image([SENTENCE], kind=kind), name)
        assert (document.page_count, document.ocr_pages) == (1, (1,))
        assert "ninety crowns" in document.pages[0].text.lower()


def test_damaged_image_gets_a_clear_error() -> None:
    data = text_image([SENTENCE])
    with pytest.raises(CorruptDocumentError, match=r"'note\.png' is a damaged PNG image"):
        load(data[: len(data) // 3], "note.png")


def test_file_named_as_image_but_not_one_is_corrupt() -> None:
    with pytest.raises(CorruptDocumentError, match=r"'photo\.jpg' is a damaged JPG image"):
        load(b"hello, not a picture at all", "photo.jpg")


def test_fill_missing_pages_replaces_only_pages_without_text() -> None:
    document = ParsedDocument(
        "x.pdf",
        "application/pdf",
        (Page(1, "A real text layer with plenty of characters on it."), Page(2, "")),
    )
    read: list[int] = []

    def read_page(number: int) -> str:
        read.append(number)
        return "Text that OCR found on the scanned second page."

    filled = fill_missing_pages(document, pages_needing_ocr(document.pages), read_page)
    assert read == [2]
    assert filled.ocr_pages == (2,)
    assert filled.pages[0] == document.pages[0]


def test_glued_english_words_are_split_and_numbers_fixed() -> None:
    assert restore_spaces("significantlylarger models") == "significantly larger models"
    assert restore_spaces("representations stay whole") == "representations stay whole"
    assert fix_digit_o("8 NVIDIA P10o GPUs and P1o0") == "8 NVIDIA P100 GPUs and P100"


def test_blank_pages_cost_no_ocr() -> None:
    from tests.privacy.documents import empty_pages_pdf

    progress: list[tuple[int, int]] = []
    with pytest.raises(NoTextLayerError, match="OCR found no readable text on its 0 image pages"):
        load(empty_pages_pdf(50), "blank.pdf", progress=lambda d, t: progress.append((d, t)))
    assert progress == [(0, 0)]


def test_ocr_leaves_no_onnxruntime_telemetry_files(tmp_path: Path) -> None:
    """ONNX Runtime would write a device id and an event store under ~/.cache/Microsoft."""
    script = (
        "import numpy as np; from ingest.ocr import text_from_pixels; "
        "text_from_pixels(np.full((64, 256), 255, dtype=np.uint8))"
    )
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    subprocess.run([sys.executable, "-c", script], env=env, cwd=PROJECT_ROOT, check=True)
    assert [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")] == []
