"""OCR, in memory and offline: scanned PDF pages and images -> text.

RapidOCR runs the PP-OCR detection and recognition models bundled in its wheel on
ONNX Runtime; pypdfium2 renders PDF pages to pixel arrays. Nothing is downloaded and
nothing is written: pages and images go from bytes to arrays to text in memory. These
functions run inside the document's job in a parser worker (ingest/job.py): every page
is read under the time limit of one page, within the worker's memory cap, and progress
is reported between pages.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from core.errors import (
    CorruptDocumentError,
    DocumentTooComplexError,
    NoTextLayerError,
)
from core.ort import load_onnxruntime
from ingest.models import Page, ParsedDocument
from ingest.pdf import MIN_TEXT_CHARS_PER_PAGE, clean_pages

# RapidOCR attaches a DEBUG stream handler to its logger; our logs never carry page text.
logging.getLogger("RapidOCR").setLevel(logging.CRITICAL)

IMAGE_MEDIA_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "tiff": "image/tiff",
    "webp": "image/webp",
}
# Larger images are refused before decoding: 50 megapixels is a 600 dpi A3 scan.
MAX_IMAGE_PIXELS = 50_000_000
# ONNX Runtime threads per worker: both cores of a small machine for the one page in hand.
OCR_THREADS = 2
# Boxes whose vertical centres are closer than this fraction of their height share a line.
SAME_LINE_TOLERANCE = 0.5

Pixels = npt.NDArray[np.uint8]
_NON_SPACE = re.compile(r"\S")
# Ten or more letters with no space: glued words far more often than one long word.
_GLUED_WORDS = re.compile(r"[A-Z]?[a-z]{9,}")
_O_IN_NUMBER = re.compile(r"(?<=\d)[oO]+(?=\d|\b)")


# progress(done, total): pages read by OCR so far, of the pages that need it.
PageProgress = Callable[[int, int], None]


@lru_cache(maxsize=1)
def _engine() -> Any:
    """One RapidOCR engine per worker process (loading its models takes a moment)."""
    load_onnxruntime()  # before RapidOCR initialises it: telemetry off
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(intra_op_num_threads=OCR_THREADS, inter_op_num_threads=1)


def text_from_pixels(pixels: Pixels) -> str:
    """OCR one image (BGR or grayscale array): text lines top to bottom, words joined."""
    result, _ = _engine()(pixels)
    if not result:
        return ""
    lines: list[list[str]] = []
    last_centre: float | None = None
    last_height = 0.0
    for box, text, _score in result:
        ys = [point[1] for point in box]
        centre, height = (min(ys) + max(ys)) / 2, max(ys) - min(ys)
        if (
            lines
            and last_centre is not None
            and abs(centre - last_centre) < SAME_LINE_TOLERANCE * max(height, last_height)
        ):
            lines[-1].append(text)
        else:
            lines.append([text])
        last_centre, last_height = centre, height
    text = "\n".join(" ".join(words) for words in lines)
    return clean_pages([restore_spaces(fix_digit_o(text))])[0]


def restore_spaces(text: str) -> str:
    """Put back the spaces the bundled (Chinese-English) recogniser often drops between
    English words: a long lower-case run is split at its most likely word boundaries
    (wordninja, English unigram frequencies); real words come back whole."""
    import wordninja

    return _GLUED_WORDS.sub(lambda match: " ".join(wordninja.split(match.group(0))), text)


def fix_digit_o(text: str) -> str:
    """'P10o' and 'P1o0' -> 'P100': an o right after a digit, in a number, is a zero."""
    return _O_IN_NUMBER.sub(lambda match: "0" * len(match.group(0)), text)


def ocr_pdf_page(data: bytes, page_number: int, *, password: str | None, dpi: int) -> str:
    """Render one PDF page (counting from 1) at ``dpi`` and OCR it; runs in a worker."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError:
        return ""  # unreadable for PDFium too: nothing to OCR (see drawn_pages)
    try:
        try:
            page = document[page_number - 1]
        except pdfium.PdfiumError:
            return ""
        try:
            bitmap = page.render(scale=dpi / 72)
            pixels: Pixels = bitmap.to_numpy()  # BGR(A), OpenCV's channel order
        finally:
            page.close()
    finally:
        document.close()
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = np.ascontiguousarray(pixels[:, :, :3])
    return text_from_pixels(pixels)


def pages_needing_ocr(pages: Sequence[Page]) -> list[int]:
    """Numbers of the pages with no usable text layer (almost no characters)."""
    return [page.number for page in pages if _text_chars(page.text) < MIN_TEXT_CHARS_PER_PAGE]


def drawn_pages(data: bytes, numbers: Sequence[int], *, password: str | None) -> list[int]:
    """Those of ``numbers`` with anything drawn on them (images, paths, text objects);
    a blank page has nothing for OCR to read, so it costs no OCR. Runs in a worker."""
    import pypdfium2 as pdfium

    # A file or page PDFium cannot load (pypdf already kept such a page as empty) has
    # nothing OCR could read: it is skipped, not an error of the server.
    try:
        document = pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError:
        return []
    try:
        drawn = []
        for number in numbers:
            try:
                page = document[number - 1]
            except pdfium.PdfiumError:
                continue
            try:
                if next(iter(page.get_objects(max_depth=1)), None) is not None:
                    drawn.append(number)
            finally:
                page.close()
        return drawn
    finally:
        document.close()


def fill_missing_pages(
    document: ParsedDocument,
    to_read: Sequence[int],
    read_page: Callable[[int], str],
    progress: PageProgress | None = None,
) -> ParsedDocument:
    """OCR the pages ``to_read`` (those without a usable text layer that have something
    drawn on them); the other pages keep their text layer, so a mixed PDF gets both.
    Raises NoTextLayerError when OCR found no text either."""
    if progress is not None:
        progress(0, len(to_read))
    texts: dict[int, str] = {}
    for done, number in enumerate(to_read, start=1):
        texts[number] = read_page(number)
        if progress is not None:
            progress(done, len(to_read))
    pages = tuple(
        Page(page.number, texts[page.number]) if texts.get(page.number) else page
        for page in document.pages
    )
    ocr_pages = tuple(number for number, text in texts.items() if _text_chars(text))
    total = sum(_text_chars(page.text) for page in pages)
    if total < MIN_TEXT_CHARS_PER_PAGE * len(pages):
        count = len(to_read)
        raise NoTextLayerError(
            f"'{document.filename}' has almost no extractable text, and OCR found no readable "
            f"text on its {count} image page{'s' * (count != 1)} either ({total} characters "
            f"on {len(pages)} pages). If it is a scan, scan it again at a higher resolution "
            "(300 dpi) with the text upright, and upload that.",
            filename=document.filename,
        )
    return ParsedDocument(
        filename=document.filename,
        media_type=document.media_type,
        pages=pages,
        headings=document.headings,
        page_unit=document.page_unit,
        ocr_pages=ocr_pages,
    )


def image_kind(data: bytes) -> str | None:
    """'png', 'jpeg', 'tiff' or 'webp' from the file's signature, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def parse_image(data: bytes, filename: str, *, kind: str) -> ParsedDocument:
    """An image is a document of one page, read by OCR; runs in a worker."""
    pixels = decode_image(data, filename, kind=kind)
    text = text_from_pixels(pixels)
    if _text_chars(text) < MIN_TEXT_CHARS_PER_PAGE:
        raise NoTextLayerError(
            f"OCR found no readable text in the image '{filename}' ({_text_chars(text)} "
            "characters). Upload a sharper image (text at least 20 pixels high, upright), "
            "or a scan at 300 dpi.",
            filename=filename,
        )
    return ParsedDocument(
        filename=filename,
        media_type=IMAGE_MEDIA_TYPES[kind],
        pages=(Page(1, text),),
        ocr_pages=(1,),
    )


def decode_image(data: bytes, filename: str, *, kind: str) -> Pixels:
    """Image bytes -> a BGR array (first frame of a multi-page TIFF), within the pixel cap."""
    label = kind.upper()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise DocumentTooComplexError(
                    f"'{filename}' is {image.width}x{image.height} pixels; the limit is "
                    f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels. Scale it down (300 dpi is "
                    "plenty for OCR) and upload it again.",
                    filename=filename,
                )
            image.load()
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (DocumentTooComplexError, MemoryError):
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Warning) as exc:
        raise CorruptDocumentError(
            f"'{filename}' is a damaged {label} image that cannot be read "
            f"({type(exc).__name__}). Re-export or re-download it and upload it again.",
            filename=filename,
        ) from None
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _text_chars(text: str) -> int:
    return len(_NON_SPACE.findall(text))
