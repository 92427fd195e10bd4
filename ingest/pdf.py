"""PDF bytes -> pages of text, entirely in memory.

pypdf opens and checks every file (damage, passwords, page count); decompression bombs are
refused at pypdf's limits before any text is read (ingest/pdf_bomb_check.py). The text
itself comes from PDFium ('pdfium', the default: about 20x faster than pypdf, and each
printed line on one line; ingest/pdfium_text.py) or from pypdf's own extractor ('plain',
'layout', 'auto').
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from pypdf import PageObject, PasswordType, PdfReader
from pypdf.errors import DependencyError, LimitReachedError, PyPdfError

from core.errors import (
    CorruptDocumentError,
    DocumentTooComplexError,
    EmptyDocumentError,
    NoTextLayerError,
    PasswordRequiredError,
    PGPTError,
    UnsupportedFileTypeError,
    WrongPasswordError,
)
from ingest.models import Page, ParsedDocument
from ingest.pdf_bomb_check import PAGE_ERRORS, check_inflated_sizes
from ingest.pdfium_text import pdfium_texts

# pypdf logs every oddity of a file at WARNING level (and some log lines quote object
# contents); failures reach us as exceptions, so its chatter only adds noise and risk.
logging.getLogger("pypdf").setLevel(logging.CRITICAL)

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/pdf"
PDF_MAGIC = b"%PDF-"
# Real files sometimes carry a few bytes of junk before the header; readers accept that.
HEADER_SEARCH_BYTES = 1024
# A complete PDF ends with %%EOF (give or take trailing whitespace or junk).
EOF_SEARCH_BYTES = 2048
# Fewer non-space characters than this per page, on average, means "no text layer":
# image-only pages give 0-10 (a stray heading), real text pages give hundreds.
MIN_TEXT_CHARS_PER_PAGE = 25

_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "st",
        "\ufb06": "st",
    }
)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# A soft hyphen marks a syllable break, so it and a line break after it simply go.
_INVISIBLE = re.compile(r"\u00ad\n?|[\u200b\u2060\ufeff]")
_SPACE_RUN = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")
# Anchored at a word start: unanchored, a long run of letters costs quadratic time.
_LINE_END_HYPHEN = re.compile(r"(?<![A-Za-z])([A-Za-z]+)-\n([a-z]+)")
_WORD = re.compile(r"[A-Za-z]+")
# A table cell on its own line: '$', '%', '—', '1,488', '(370)', '$ 5,363', '12.5 %'.
_NUMERIC_CELL = re.compile(r"[$€£(]*\s*[-–—]?\s*[\d.,]*\d[\d.,]*\s*[)%]*|[$€£%—–-]")
# A number standing alone between spaces: '2,371', '(20', '12.5%', '$1,577'.
_NUMBER = re.compile(r"(?<!\S)[$(]*-?\d[\d,]*(?:\.\d+)?%?\)?(?!\S)")
MIN_ROW_NUMBERS = 2
# Measured on financebench-dev: statement and note tables have dozens of such lines;
# prose pages have a handful (page numbers, years in headings).
MIN_NUMERIC_LINES = 12
NUMERIC_LINE_SHARE = 0.3

TextMode = Literal["pdfium", "plain", "layout", "auto"]


def looks_like_pdf(data: bytes) -> bool:
    """True when the bytes carry a PDF header (whatever the file is called)."""
    return PDF_MAGIC in data[:HEADER_SEARCH_BYTES]


def parse_pdf(
    data: bytes,
    filename: str,
    *,
    password: str | None = None,
    max_pages: int,
    text_mode: TextMode = "pdfium",
    ocr: bool = False,
) -> ParsedDocument:
    """Extract the text of every page; page numbers count from 1, empty pages are kept.

    ``text_mode``: 'pdfium' is PDFium's text, each printed line (a table's row) on one
    line; 'plain' is pypdf's reading order; 'layout' is pypdf keeping each printed row on
    one line; 'auto' uses pypdf's layout only on pages whose plain text looks like a
    table. With ``ocr`` a scan is not refused here: the caller OCRs its pages
    (ingest/ocr.py).
    """
    pdf = open_pdf(data, filename, password=password, max_pages=max_pages)
    return pdf_document(filename, pdf.texts(1, pdf.page_count, text_mode), ocr=ocr)


@dataclass(frozen=True, slots=True, repr=False)
class PdfFile:
    """A checked, opened PDF whose pages are counted; their text is read on demand."""

    data: bytes
    filename: str
    password: str | None
    reader: PdfReader
    page_count: int

    def texts(self, first: int, last: int, text_mode: TextMode) -> list[str]:
        """Raw text of pages ``first``..``last`` (counted from 1, inclusive)."""
        with _parse_errors(self.filename):
            return _extract(self.data, self.reader, self.password, first, last, text_mode)


def open_pdf(data: bytes, filename: str, *, password: str | None = None, max_pages: int) -> PdfFile:
    """Open the PDF and count its pages, refusing what cannot be parsed (not a PDF,
    damaged, locked, over ``max_pages``) before any page is read."""
    check_pdf_bytes(data, filename)
    with _parse_errors(filename):
        reader = _open(data, filename, password)
        page_count = _checked_page_count(reader, filename, max_pages)
    return PdfFile(data, filename, password, reader, page_count)


def count_pdf_pages(
    data: bytes, filename: str, *, password: str | None = None, max_pages: int
) -> int:
    """The PDF's page count, refusing what ``parse_pdf`` would refuse before it reads
    any page."""
    return open_pdf(data, filename, password=password, max_pages=max_pages).page_count


def extract_pdf_pages(
    data: bytes,
    filename: str,
    *,
    password: str | None = None,
    first: int,
    last: int,
    text_mode: TextMode = "pdfium",
) -> list[str]:
    """Raw text of pages ``first``..``last`` (counted from 1, inclusive): one part of a
    document parsed in several workers. ``pdf_document`` turns the parts into pages."""
    with _parse_errors(filename):
        return _extract(data, _open(data, filename, password), password, first, last, text_mode)


def pdf_document(filename: str, raw_pages: list[str], *, ocr: bool = False) -> ParsedDocument:
    """Clean the raw text of every page of a document (in order) and check it has text
    (unless ``ocr``: then the caller reads the pages without text by OCR)."""
    pages = tuple(
        Page(number=number, text=text)
        for number, text in enumerate(clean_pages(raw_pages), start=1)
    )
    if not ocr:
        _check_text_layer(pages, filename)
    return ParsedDocument(filename=filename, media_type=MEDIA_TYPE, pages=pages)


@contextlib.contextmanager
def _parse_errors(filename: str) -> Iterator[None]:
    """pypdf's warnings silenced; its failures turned into errors that name the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except PGPTError:
            raise
        except MemoryError:
            raise DocumentTooComplexError(
                f"'{filename}' needs more memory to parse than allowed. "
                "Split it into smaller files and upload those.",
                filename=filename,
            ) from None
        except Exception as exc:
            raise _corrupt(filename, exc) from None


def check_pdf_bytes(data: bytes, filename: str) -> None:
    """Refuse empty, non-PDF and truncated bytes before pypdf sees them."""
    if not data.strip():
        raise EmptyDocumentError(
            f"'{filename}' is empty (it has no content). Check the file and upload it again.",
            filename=filename,
        )
    if not looks_like_pdf(data):
        raise UnsupportedFileTypeError(
            f"'{filename}' is not a PDF: its content does not start with the '%PDF-' header. "
            "Upload a real PDF, or save the document as .pdf, .txt or .md and upload that.",
            filename=filename,
        )
    if b"%%EOF" not in data[-EOF_SEARCH_BYTES:]:
        raise CorruptDocumentError(
            f"'{filename}' is an incomplete PDF: the end-of-file marker is missing, so the "
            "file was probably truncated while downloading or copying. "
            "Get a complete copy and upload it again.",
            filename=filename,
        )


def _open(data: bytes, filename: str, password: str | None) -> PdfReader:
    # The decompression and object-count limits of pypdf's default Configuration stay on:
    # they are what stops a small "zip bomb" PDF from exhausting memory.
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        _decrypt(reader, filename, password)
    return reader


def _checked_page_count(reader: PdfReader, filename: str, max_pages: int) -> int:
    page_count = len(reader.pages)
    if page_count == 0:
        raise EmptyDocumentError(
            f"'{filename}' is a PDF without any pages. Check the file and upload it again.",
            filename=filename,
        )
    if page_count > max_pages:
        raise DocumentTooComplexError(
            f"'{filename}' has {page_count} pages; the limit is {max_pages}. "
            "Split it into smaller files, or raise PGPT_MAX_PAGES.",
            filename=filename,
        )
    return page_count


def _extract(
    data: bytes,
    reader: PdfReader,
    password: str | None,
    first: int,
    last: int,
    text_mode: TextMode,
) -> list[str]:
    if text_mode == "pdfium":
        check_inflated_sizes(data, reader, first, last)
        return pdfium_texts(data, password, first, last)
    texts: list[str] = []
    for number in range(first, last + 1):
        try:
            texts.append(_page_text(reader.pages[number - 1], text_mode))
        except LimitReachedError:
            raise  # a decompression bomb, not a damaged page
        except PAGE_ERRORS as exc:
            # One unreadable page should not cost the reader the other pages.
            log.warning("page %d could not be read (%s); kept as empty", number, type(exc).__name__)
            texts.append("")
    return texts


def _page_text(page: PageObject, text_mode: TextMode) -> str:
    if text_mode == "layout":
        return page.extract_text(extraction_mode="layout")
    text = page.extract_text()
    if text_mode == "auto" and looks_tabular(text):
        try:
            return page.extract_text(extraction_mode="layout")
        except LimitReachedError:
            raise
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError):
            return text  # layout mode failed on this page; plain text is still good
    return text


def looks_tabular(text: str) -> bool:
    """True when plain extraction scattered a table: many lines are numbers.

    pypdf's plain mode puts a table's cells on lines of their own ('1,488', '(370)',
    '$') or runs a row's numbers into the next row's label ('596 2,371 3,033
    Adjustments...'); in both cases a large share of the lines carries numbers.
    """
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    numeric = sum(
        1
        for line in lines
        if _NUMERIC_CELL.fullmatch(line) or len(_NUMBER.findall(line)) >= MIN_ROW_NUMBERS
    )
    return numeric >= MIN_NUMERIC_LINES and numeric >= NUMERIC_LINE_SHARE * len(lines)


def _decrypt(reader: PdfReader, filename: str, password: str | None) -> None:
    try:
        if password is not None and reader.decrypt(password) != PasswordType.NOT_DECRYPTED:
            return
        # Many "encrypted" PDFs only restrict printing or copying and open with an empty password.
        if reader.decrypt("") != PasswordType.NOT_DECRYPTED:
            return
    except (NotImplementedError, DependencyError) as exc:
        raise UnsupportedFileTypeError(
            f"'{filename}' uses an encryption method we cannot open ({exc}). "
            "Save an unencrypted copy and upload that.",
            filename=filename,
        ) from None
    if password is None:
        raise PasswordRequiredError(
            f"'{filename}' is password-protected. Upload it again with its password.",
            filename=filename,
        )
    raise WrongPasswordError(
        f"The password given for '{filename}' is wrong. Check it and upload the file again.",
        filename=filename,
    )


def _corrupt(filename: str, exc: Exception) -> PGPTError:
    if isinstance(exc, LimitReachedError | RecursionError):
        return DocumentTooComplexError(
            f"'{filename}' is too complex to parse safely (it exceeds a size or nesting limit). "
            "Split it into smaller files or re-export it, and upload again.",
            filename=filename,
        )
    # pypdf's own messages describe structure ("EOF marker not found"), never page text.
    reason = str(exc)[:160] if isinstance(exc, PyPdfError) else type(exc).__name__
    return CorruptDocumentError(
        f"'{filename}' is a damaged PDF that cannot be read ({reason}). "
        "Re-export or re-download it and upload it again.",
        filename=filename,
    )


def _check_text_layer(pages: tuple[Page, ...], filename: str) -> None:
    text_chars = sum(
        len(page.text) - page.text.count(" ") - page.text.count("\n") for page in pages
    )
    if text_chars < MIN_TEXT_CHARS_PER_PAGE * len(pages):
        raise NoTextLayerError(
            f"'{filename}' has almost no extractable text ({text_chars} characters on "
            f"{len(pages)} pages); it looks scanned or image-only, and OCR is turned off on this "
            "server (PGPT_OCR=false). Run OCR first (for example `ocrmypdf in.pdf out.pdf`) "
            "and upload the result, or ask the operator to turn OCR on.",
            filename=filename,
        )


def clean_pages(raw_pages: list[str]) -> list[str]:
    """Light, page-by-page cleanup; words split at a line end are rejoined when the
    document itself spells them unbroken elsewhere, otherwise the hyphen is kept."""
    pages = [_normalize_whitespace(text.translate(_LIGATURES)) for text in raw_pages]
    known_words = {word.lower() for text in pages for word in _WORD.findall(text)}

    def rejoin(match: re.Match[str]) -> str:
        head, tail = match.group(1), match.group(2)
        if (head + tail).lower() in known_words:
            return head + tail
        return f"{head}-{tail}"

    return [_LINE_END_HYPHEN.sub(rejoin, text) for text in pages]


def _normalize_whitespace(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = _CONTROL_CHARS.sub(" ", text)
    text = _SPACE_RUN.sub(" ", text)
    text = _SPACE_AROUND_NEWLINE.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()
