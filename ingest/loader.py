"""Uploaded bytes -> ParsedDocument: pick the format (ingest/formats.py), enforce the
limits, parse in a parser worker (ingest/worker_pool.py).

A PDF is first opened to count its pages; its time limit is then a base plus a budget
per page, and a long one is split into page ranges that several workers parse side by
side, merged back in page order.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from core.errors import (
    DocumentTooComplexError,
    EmptyDocumentError,
    FileTooLargeError,
    UnsupportedFileTypeError,
)
from ingest.chunking import TokenChunker
from ingest.formats import accepted_types, format_of
from ingest.models import Chunk, ParsedDocument
from ingest.ocr import (
    PageProgress,
    drawn_pages,
    fill_missing_pages,
    image_kind,
    ocr_pdf_page,
    pages_needing_ocr,
    parse_image,
)
from ingest.parse_helpers import corrupt_error
from ingest.pdf import (
    TextMode,
    check_pdf_bytes,
    count_pdf_pages,
    extract_pdf_pages,
    looks_like_pdf,
    parse_pdf,
    pdf_document,
)

# The pool lives in its own module; these names are kept here for the callers that take
# them from the loader.
from ingest.worker_pool import (
    ParserPool as ParserPool,
)
from ingest.worker_pool import (
    get_parser_pool as get_parser_pool,
)
from ingest.worker_pool import (
    shutdown_parser_pool as shutdown_parser_pool,
)

log = logging.getLogger(__name__)

_WORD = re.compile(r"\S+")

DEFAULT_OCR_DPI = 150

MAX_FILENAME_CHARS = 120
FALLBACK_FILENAME = "document"

# A page range parsed by another worker re-opens the file there (and the bytes travel
# through its pipe): shorter ranges cost more than they save.
MIN_PAGES_PER_RANGE = 8


def load_document(
    data: bytes,
    filename: str,
    *,
    password: str | None = None,
    max_bytes: int,
    max_pages: int,
    timeout_s: float,
    timeout_per_page_s: float = 0.0,
    pool: ParserPool | None = None,
    pdf_text_mode: TextMode = "pdfium",
    ocr: bool = True,
    ocr_dpi: int = DEFAULT_OCR_DPI,
    progress: PageProgress | None = None,
) -> ParsedDocument:
    """Parse an uploaded file held in memory; raises a DocumentError naming the file.

    ``timeout_s`` limits parsing a file; a PDF gets ``timeout_per_page_s`` more per page.
    ``pool`` defaults to the process-wide parser pool. With ``ocr``, scanned PDF pages
    and images are read by OCR, one page per worker job, each under the limit of one
    page (so the limit scales with the pages to read); ``progress(done, total)`` is
    called before the first and after each page.
    """
    name = sanitize_filename(filename)
    if len(data) > max_bytes:
        raise FileTooLargeError(
            f"'{name}' is {_megabytes(len(data))} MB; the upload limit is "
            f"{_megabytes(max_bytes)} MB. Split it into smaller files, or raise "
            "PGPT_MAX_UPLOAD_MB.",
            filename=name,
        )
    if not data:
        raise EmptyDocumentError(
            f"'{name}' is empty (0 bytes). Check the file and upload it again.", filename=name
        )
    extension = _extension(name)
    pool = pool or get_parser_pool()
    document_format = format_of(data, extension)
    if document_format is None:
        raise _unsupported(name, extension)
    if document_format.kind == "pdf":
        if not looks_like_pdf(data):
            check_pdf_bytes(data, name)  # raises: named .pdf but not a PDF
        limit = ParseTimeLimit(base_s=timeout_s, per_page_s=timeout_per_page_s)
        document = _parse_pdf_in_pool(
            pool, data, name, password, max_pages, limit, pdf_text_mode, ocr=ocr
        )
        if not ocr:
            return document
        return _ocr_missing_pages(pool, document, data, password, ocr_dpi, limit, progress)
    if document_format.kind == "image":
        kind = image_kind(data)
        if kind is None:  # named as an image, but its bytes are none
            raise corrupt_error(name, f"{extension[1:].upper()} image", None)
        return _load_image(pool, data, name, kind, ocr=ocr, timeout_s=timeout_s, progress=progress)
    assert document_format.parse is not None  # every 'document' format has its parser
    return pool.run(
        document_format.parse,
        data,
        name,
        max_pages=max_pages,
        timeout_s=timeout_s,
        filename=name,
    )


def _unsupported(name: str, extension: str) -> UnsupportedFileTypeError:
    kind = f"a {extension} file" if extension else "a file without an extension"
    return UnsupportedFileTypeError(
        f"'{name}' is {kind}, which cannot be read. Accepted are {accepted_types()}; "
        "convert it to one of those and upload it again.",
        filename=name,
    )


@dataclass(frozen=True, slots=True)
class ParseTimeLimit:
    """How long parsing may take: a base for the file plus a budget for each page."""

    base_s: float
    per_page_s: float

    def for_pages(self, pages: int) -> float:
        return self.base_s + self.per_page_s * pages


def page_ranges(page_count: int, parts: int) -> list[tuple[int, int]]:
    """Split pages 1..page_count into at most ``parts`` contiguous (first, last) ranges
    of nearly equal length, none shorter than MIN_PAGES_PER_RANGE unless it is the only one."""
    parts = max(1, min(parts, page_count // MIN_PAGES_PER_RANGE))
    size, longer = divmod(page_count, parts)
    ranges = []
    first = 1
    for index in range(parts):
        last = first + size - (0 if index < longer else 1)
        ranges.append((first, last))
        first = last + 1
    return ranges


def _parse_pdf_in_pool(
    pool: ParserPool,
    data: bytes,
    name: str,
    password: str | None,
    max_pages: int,
    limit: ParseTimeLimit,
    text_mode: TextMode,
    *,
    ocr: bool,
) -> ParsedDocument:
    page_count = pool.run(
        count_pdf_pages,
        data,
        name,
        password=password,
        max_pages=max_pages,
        timeout_s=limit.base_s,
        filename=name,
    )
    ranges = page_ranges(page_count, pool.size)
    if len(ranges) == 1:
        return pool.run(
            parse_pdf,
            data,
            name,
            password=password,
            max_pages=max_pages,
            text_mode=text_mode,
            ocr=ocr,
            timeout_s=limit.for_pages(page_count),
            filename=name,
        )
    with ThreadPoolExecutor(max_workers=len(ranges), thread_name_prefix="pdf-range") as threads:
        parts = [
            threads.submit(
                pool.run,
                extract_pdf_pages,
                data,
                name,
                password=password,
                first=first,
                last=last,
                text_mode=text_mode,
                timeout_s=limit.for_pages(last - first + 1),
                filename=name,
            )
            for first, last in ranges
        ]
    # Every range has finished here; the first failure in page order is the one reported.
    raw_pages = [text for part in parts for text in part.result()]
    # Cleaning needs every page (it rejoins words hyphenated at a line end by looking for
    # them elsewhere in the document) and, like all work on the file's content, runs in
    # a worker under a time limit.
    return pool.run(pdf_document, name, raw_pages, ocr=ocr, timeout_s=limit.base_s, filename=name)


def _ocr_missing_pages(
    pool: ParserPool,
    document: ParsedDocument,
    data: bytes,
    password: str | None,
    dpi: int,
    limit: ParseTimeLimit,
    progress: PageProgress | None,
) -> ParsedDocument:
    """OCR the pages without a usable text layer that have something drawn on them, one
    worker job per page, each under the time limit of one page."""
    name = document.filename
    missing = pages_needing_ocr(document.pages)
    to_read: list[int] = []
    if missing:
        to_read = pool.run(
            drawn_pages,
            data,
            missing,
            password=password,
            timeout_s=limit.for_pages(len(missing)),
            filename=name,
        )

    def read_page(number: int) -> str:
        return pool.run(
            ocr_pdf_page,
            data,
            number,
            password=password,
            dpi=dpi,
            timeout_s=limit.for_pages(1),
            filename=name,
        )

    return fill_missing_pages(document, to_read, read_page, progress)


def _load_image(
    pool: ParserPool,
    data: bytes,
    name: str,
    kind: str,
    *,
    ocr: bool,
    timeout_s: float,
    progress: PageProgress | None,
) -> ParsedDocument:
    if not ocr:
        raise UnsupportedFileTypeError(
            f"'{name}' is an image; reading images needs OCR, which is turned off on this "
            "server (PGPT_OCR=false). Ask the operator to turn it on, or upload the text.",
            filename=name,
        )
    if progress is not None:
        progress(0, 1)
    document = pool.run(parse_image, data, name, kind=kind, timeout_s=timeout_s, filename=name)
    if progress is not None:
        progress(1, 1)
    return document


def chunk_document(
    document: ParsedDocument,
    chunker: TokenChunker,
    document_id: str,
    *,
    max_chunks: int,
    limit: ParseTimeLimit,
    pool: ParserPool,
) -> list[Chunk]:
    """Split a parsed document in a parser worker, under the same time limit as parsing
    it: chunking a pathological text is CPU work that must not stall the API."""
    return pool.run(
        _split_within,
        document,
        chunker,
        document_id,
        max_chunks,
        timeout_s=limit.for_pages(document.page_count),
        filename=document.filename,
        what="Splitting",
    )


def _split_within(
    document: ParsedDocument, chunker: TokenChunker, document_id: str, max_chunks: int
) -> list[Chunk]:
    # Every word is at least one token: a cheap lower bound refuses a document that
    # cannot fit before the costly split.
    words = sum(1 for page in document.pages for _ in _WORD.finditer(page.text))
    _check_chunk_count(document.filename, words // chunker.chunk_size, max_chunks)
    chunks = chunker.split(document, document_id)
    _check_chunk_count(document.filename, len(chunks), max_chunks)
    return chunks


def _check_chunk_count(filename: str, chunks: int, max_chunks: int) -> None:
    if chunks > max_chunks:
        raise DocumentTooComplexError(
            f"'{filename}' holds too much text: it makes at least {chunks:,} passages and "
            f"a session holds at most {max_chunks:,}. Split it into smaller files, "
            "or ask the operator to raise PGPT_MAX_CHUNKS_PER_SESSION.",
            filename=filename,
        )


def sanitize_filename(filename: str) -> str:
    """A safe display name: no directories, no control or bidi characters, bounded length."""
    name = unicodedata.normalize("NFC", filename)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Cc: control characters; Cf: invisible formatting such as right-to-left overrides
    # that make 'evil\u202efdp.exe' display as 'evilexe.pdf'; Zl/Zp: line breaks.
    name = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cf", "Zl", "Zp"})
    name = " ".join(name.split()).strip(" .")
    if not name:
        return FALLBACK_FILENAME
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            keep = MAX_FILENAME_CHARS - len(extension) - 2
            name = f"{stem[:keep]}….{extension}"
        else:
            name = name[: MAX_FILENAME_CHARS - 1] + "…"
    return name


def _extension(name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    return f".{extension.lower()}" if dot and stem else ""


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}".removesuffix(".0")
