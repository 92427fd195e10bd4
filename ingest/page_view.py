"""One page of a held document, shown to a reader checking a citation.

A PDF page is rendered to PNG in memory with PDFium (pypdfium2), with the characters of the
cited span covered by translucent rectangles. Other documents (plain text, Markdown) give
the text around the span, with the span's offsets in it.

Span offsets count characters of our page text (pypdf's, cleaned by ingest/pdf.py), which
is not PDFium's text: PDFium ends lines with "\\r\\n", keeps ligatures and hyphenated line
breaks, and may order runs differently. So the span is located by its text: both texts are
compared without whitespace or hyphens, compatibility-normalised and case-folded; an exact
occurrence (the one nearest the span's relative position on the page) wins, otherwise the
long runs a sequence matcher finds.
"""

from __future__ import annotations

import ctypes
import io
import threading
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageDraw

from core.errors import (
    CorruptDocumentError,
    InvalidRequestError,
    PageNotFoundError,
    RenderBusyError,
    RenderTimeoutError,
)
from ingest.models import Page, SourceDocument

PDF = "application/pdf"
# PDFium is not thread-safe: one call into it at a time in this process.
PDFIUM_LOCK = threading.Lock()
MIN_WIDTH_PX = 100
# A bitmap bigger than this (4 bytes a pixel: 64 MB) is rendered narrower than asked.
MAX_PIXELS = 16_000_000
HIGHLIGHT_FILL = (255, 196, 0, 90)
HIGHLIGHT_EDGE = (230, 140, 0, 200)
HIGHLIGHT_PAD_PX = 1
EXCERPT_CONTEXT_CHARS = 600
# Without an exact occurrence: matched runs shorter than this are chance, and under this
# share of the span matched there is no highlight at all.
MIN_MATCH_RUN = 6
MIN_MATCHED_SHARE = 0.5
HYPHENS = frozenset("-\u00ad\u2010\u2011\x02")


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in image pixels, origin top left."""

    left: float
    top: float
    right: float
    bottom: float


@dataclass(frozen=True, slots=True, repr=False)
class PageImage:
    page: int
    png: bytes
    width: int
    height: int
    highlights: tuple[Box, ...]  # empty when there was no span or it was not found

    def __repr__(self) -> str:
        return f"PageImage(page {self.page}, {self.width}x{self.height}, {len(self.png)} bytes)"


@dataclass(frozen=True, slots=True, repr=False)
class PageExcerpt:
    """``text`` is the page's text from ``offset`` on; the span is ``highlight`` in it."""

    page: int
    text: str
    offset: int
    page_length: int
    highlight: tuple[int, int] | None

    def __repr__(self) -> str:
        return f"PageExcerpt(page {self.page}, {len(self.text)} chars)"


def view_page(
    source: SourceDocument,
    page_number: int,
    *,
    span: tuple[int, int] | None,
    width: int,
    timeout_s: float,
) -> PageImage | PageExcerpt:
    """The page as a PDF image, or for other documents the text around the span."""
    page = find_page(source.pages, page_number)
    checked = checked_span(span, page.text)
    if source.media_type == PDF:
        return render_pdf_page(source, page, span=checked, width=width, timeout_s=timeout_s)
    return text_excerpt(page, checked)


def find_page(pages: Sequence[Page], page_number: int) -> Page:
    if not 1 <= page_number <= len(pages):
        raise PageNotFoundError(
            f"There is no page {page_number}: the document has {len(pages)} page(s)."
        )
    return pages[page_number - 1]


def checked_span(span: tuple[int, int] | None, page_text: str) -> tuple[int, int] | None:
    """The span clipped to the page (a span may run on to the next page)."""
    if span is None:
        return None
    start, end = span
    if not 0 <= start < end or start >= len(page_text):
        raise InvalidRequestError(
            f"The span {start}-{end} is not on this page: it must satisfy "
            f"0 <= start < end and start < {len(page_text)} (the page's length)."
        )
    return start, min(end, len(page_text))


# --- text documents --------------------------------------------------------------------


def text_excerpt(
    page: Page, span: tuple[int, int] | None, context: int = EXCERPT_CONTEXT_CHARS
) -> PageExcerpt:
    """About ``context`` characters either side of the span, cut at whitespace."""
    text = page.text
    start, end = span if span is not None else (0, 0)
    first = _cut_at_space(text, max(0, start - context), forward=True)
    last = _cut_at_space(text, min(len(text), end + context), forward=False)
    first, last = min(first, start), max(last, end)
    highlight = (start - first, end - first) if span is not None else None
    return PageExcerpt(page.number, text[first:last], first, len(text), highlight)


def _cut_at_space(text: str, position: int, *, forward: bool) -> int:
    if position in (0, len(text)):
        return position
    space = text.find(" ", position) if forward else text.rfind(" ", 0, position)
    return position if space < 0 else space + 1 if forward else space


# --- PDF pages -----------------------------------------------------------------------------


def render_pdf_page(
    source: SourceDocument,
    page: Page,
    *,
    span: tuple[int, int] | None,
    width: int,
    timeout_s: float,
) -> PageImage:
    """Render ``page`` about ``width`` pixels wide, with the span's characters highlighted.

    Raises RenderBusyError when PDFium stays busy with other pages for ``timeout_s``, and
    RenderTimeoutError when rendering this page takes longer.
    """
    deadline = time.monotonic() + timeout_s
    if not PDFIUM_LOCK.acquire(timeout=timeout_s):
        raise RenderBusyError("The server is busy showing other pages. Try again in a moment.")
    try:
        pdf = _open(source)
        try:
            if page.number > len(pdf):
                raise PageNotFoundError(f"PDFium finds no page {page.number} in this document.")
            pdf_page = pdf[page.number - 1]
            try:
                return _render(pdf_page, page, span, width, deadline)
            finally:
                pdf_page.close()
        finally:
            pdf.close()
    finally:
        PDFIUM_LOCK.release()


def _open(source: SourceDocument) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(source.data, password=source.password)
    except pdfium.PdfiumError:
        raise CorruptDocumentError(
            "PDFium cannot open this document, so its pages cannot be shown; "
            "its passages are still searchable."
        ) from None


def _render(
    pdf_page: pdfium.PdfPage,
    page: Page,
    span: tuple[int, int] | None,
    width: int,
    deadline: float,
) -> PageImage:
    page_width, page_height = pdf_page.get_size()
    width = max(MIN_WIDTH_PX, min(width, int((MAX_PIXELS * page_width / page_height) ** 0.5)))
    height = max(1, round(page_height * width / page_width))
    bitmap = pdfium.PdfBitmap.new_native(width, height, pdfium_c.FPDFBitmap_BGRx)
    try:
        bitmap.fill_rect((255, 255, 255, 255), 0, 0, width, height)
        _render_until(pdf_page, bitmap, deadline)
        image = bitmap.to_pil().convert("RGB")
    finally:
        bitmap.close()
    boxes: tuple[Box, ...] = ()
    if span is not None:
        textpage = pdf_page.get_textpage()
        try:
            chars = locate_span(_pdfium_text(textpage), page.text, *span)
            boxes = tuple(_char_boxes(pdf_page, textpage, chars, width, height))
        finally:
            textpage.close()
    return PageImage(page.number, _png(image, boxes), width, height, boxes)


def _render_until(pdf_page: pdfium.PdfPage, bitmap: pdfium.PdfBitmap, deadline: float) -> None:
    """Progressive rendering that PDFium pauses (and we abandon) once past ``deadline``."""
    need_to_pause = dict(pdfium_c.IFSDK_PAUSE._fields_)["NeedToPauseNow"]
    callback = need_to_pause(lambda _pause: time.monotonic() > deadline)
    pause = pdfium_c.IFSDK_PAUSE(version=1, NeedToPauseNow=callback)
    width, height = bitmap.width, bitmap.height
    status = pdfium_c.FPDF_RenderPageBitmap_Start(
        bitmap, pdf_page, 0, 0, width, height, 0, pdfium_c.FPDF_ANNOT, pause
    )
    try:
        while status == pdfium_c.FPDF_RENDER_TOBECONTINUED:
            if time.monotonic() > deadline:
                raise RenderTimeoutError(
                    "This page takes too long to draw. Try a smaller width, or read the passage "
                    "text instead."
                )
            status = pdfium_c.FPDF_RenderPage_Continue(pdf_page, pause)
    finally:
        pdfium_c.FPDF_RenderPage_Close(pdf_page)
    if status != pdfium_c.FPDF_RENDER_DONE:
        raise CorruptDocumentError("PDFium could not draw this page; its text is still searchable.")


def _pdfium_text(textpage: pdfium.PdfTextPage) -> str:
    """PDFium's page text, one character per PDFium character index."""
    return "".join(
        chr(pdfium_c.FPDFText_GetUnicode(textpage, i) or 0xFFFD)
        for i in range(textpage.count_chars())
    )


def _char_boxes(
    pdf_page: pdfium.PdfPage,
    textpage: pdfium.PdfTextPage,
    chars: Sequence[int],
    width: int,
    height: int,
) -> list[Box]:
    boxes: list[Box] = []
    for index in chars:
        left, bottom, right, top = textpage.get_charbox(index)
        if right <= left or top <= bottom:
            continue  # a space or a character PDFium generated: nothing drawn
        left, bottom, right, top = textpage.get_charbox(index, loose=True)
        x0, y0 = _to_device(pdf_page, left, top, width, height)
        x1, y1 = _to_device(pdf_page, right, bottom, width, height)
        boxes.append(Box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    return [_clip(_pad(box), width, height) for box in merge_lines(boxes)]


def _to_device(
    pdf_page: pdfium.PdfPage, x: float, y: float, width: int, height: int
) -> tuple[int, int]:
    """Page coordinates -> bitmap pixels (PDFium applies the page's rotation and crop box)."""
    device_x, device_y = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDF_PageToDevice(pdf_page, 0, 0, width, height, 0, x, y, device_x, device_y)
    return device_x.value, device_y.value


def merge_lines(boxes: Sequence[Box]) -> list[Box]:
    """Consecutive character boxes on one line -> one rectangle per run of the line."""
    merged: list[Box] = []
    for box in boxes:
        if merged and _continues(merged[-1], box):
            last = merged[-1]
            merged[-1] = Box(
                min(last.left, box.left),
                min(last.top, box.top),
                max(last.right, box.right),
                max(last.bottom, box.bottom),
            )
        else:
            merged.append(box)
    return merged


def _continues(run: Box, box: Box) -> bool:
    """Whether ``box`` goes on the run's line: a horizontal line, or on a rotated page a
    vertical one."""
    horizontal = (
        (run.top, run.bottom, box.top, box.bottom),
        (run.left, run.right, box.left, box.right),
    )
    vertical = horizontal[1], horizontal[0]
    return any(_near_in_band(across, along) for across, along in (horizontal, vertical))


def _near_in_band(across: tuple[float, ...], along: tuple[float, ...]) -> bool:
    """Across the line the two overlap by over half the thicker; along it they are at most
    three characters apart."""
    run_from, run_to, box_from, box_to = across
    thickness = max(run_to - run_from, box_to - box_from)
    overlap = min(run_to, box_to) - max(run_from, box_from)
    run_start, run_end, box_start, box_end = along
    distance = max(box_start - run_end, run_start - box_end)
    return overlap > 0.5 * thickness and distance <= 3 * thickness


def _pad(box: Box) -> Box:
    pad = HIGHLIGHT_PAD_PX
    return Box(box.left - pad, box.top - pad, box.right + pad, box.bottom + pad)


def _clip(box: Box, width: int, height: int) -> Box:
    return Box(max(0, box.left), max(0, box.top), min(width, box.right), min(height, box.bottom))


def _png(image: Image.Image, boxes: Sequence[Box]) -> bytes:
    if boxes:
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for box in boxes:
            draw.rectangle(
                (box.left, box.top, box.right - 1, box.bottom - 1),
                fill=HIGHLIGHT_FILL,
                outline=HIGHLIGHT_EDGE,
            )
        image = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


# --- our page offsets -> PDFium characters ------------------------------------------------


def comparable(text: str) -> tuple[str, list[int]]:
    """``text`` without whitespace or hyphens, NFKC-normalised and case-folded, with the
    index in ``text`` of each character kept."""
    keys: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(text):
        if char.isspace() or char in HYPHENS:
            continue
        for key in unicodedata.normalize("NFKC", char).casefold():
            if not key.isspace():
                keys.append(key)
                origins.append(index)
    return "".join(keys), origins


def locate_span(target: str, page_text: str, start: int, end: int) -> list[int]:
    """Indexes of the characters of ``target`` (PDFium's text) that show
    ``page_text[start:end]`` (ours); empty when the span cannot be found there."""
    wanted, _ = comparable(page_text[start:end])
    keys, origins = comparable(target)
    if not wanted or not keys:
        return []
    expected = start / max(1, len(page_text)) * len(keys)
    found = _occurrences(keys, wanted)
    if found:
        best = min(found, key=lambda i: abs(i - expected))
        return sorted(set(origins[best : best + len(wanted)]))
    runs = _matching_runs(keys, wanted)
    if sum(size for _, size in runs) < MIN_MATCHED_SHARE * len(wanted):
        return []
    return sorted({origins[i] for start, size in runs for i in range(start, start + size)})


def _matching_runs(keys: str, wanted: str) -> list[tuple[int, int]]:
    """(start in ``keys``, length) of the longest matches of ``wanted``'s parts, longest
    first, in any order (PDFium may order a page's text runs differently from pypdf)."""
    runs: list[tuple[int, int]] = []
    parts = [(0, len(wanted))]
    while parts:
        low, high = parts.pop()
        if high - low < MIN_MATCH_RUN:
            continue
        matcher = SequenceMatcher(None, keys, wanted[low:high], autojunk=False)
        match = matcher.find_longest_match()
        if match.size < MIN_MATCH_RUN:
            continue
        runs.append((match.a, match.size))
        parts += [(low, low + match.b), (low + match.b + match.size, high)]
    return runs


def _occurrences(text: str, part: str) -> list[int]:
    found: list[int] = []
    index = text.find(part)
    while index >= 0:
        found.append(index)
        index = text.find(part, index + 1)
    return found
