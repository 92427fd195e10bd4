"""One upload's work inside a parser worker: parse, OCR the pages that need it, chunk.

``read_upload`` is the job the loader (ingest/loader.py) sends for each document; it
returns the parsed pages and their chunks, so the bytes go out once and the text comes
back once. Each stage runs under its own time limit (``time_limit``): a PDF's page count
is read under the file's base limit, its text under the base plus a budget per page,
each OCR page under the limit of one page, the chunking under the limit of the whole
document. A long PDF is parsed in page ranges by several workers: this job reads the
first range and reports the others (``OtherRanges``) for the loader to hand out, then
``finish_pdf`` cleans, OCRs and chunks the whole document in one more job.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import DocumentTooComplexError, EmptyDocumentError
from ingest.chunking import TokenChunker
from ingest.formats import Format
from ingest.models import Chunk, ParsedDocument
from ingest.ocr import (
    drawn_pages,
    fill_missing_pages,
    image_kind,
    ocr_pdf_page,
    pages_needing_ocr,
    parse_image,
)
from ingest.pdf import TextMode, extract_pdf_pages, open_pdf, pdf_document
from ingest.worker_pool import report, time_limit

_WORD = re.compile(r"\S+")

# A page range parsed by another worker re-opens the file there (and the bytes travel
# through its pipe): shorter ranges cost more than they save.
MIN_PAGES_PER_RANGE = 8
DEFAULT_OCR_DPI = 150


@dataclass(frozen=True, slots=True)
class ParseTimeLimit:
    """How long parsing may take: a base for the file plus a budget for each page."""

    base_s: float
    per_page_s: float

    def for_pages(self, pages: int) -> float:
        return self.base_s + self.per_page_s * pages


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How uploads are read (the settings'), and how many workers may share a long PDF."""

    max_pages: int
    limit: ParseTimeLimit
    text_mode: TextMode = "pdfium"
    ocr: bool = True
    ocr_dpi: int = DEFAULT_OCR_DPI
    workers: int = 1


@dataclass(frozen=True, slots=True)
class Chunking:
    """How to split the document, under which id, and how many passages it may make."""

    chunker: TokenChunker
    document_id: str
    max_chunks: int


@dataclass(frozen=True, slots=True, repr=False)
class Prepared:
    """What a job returns: the document, its chunks (none without ``Chunking``) and the
    seconds its OCR and chunking took inside the worker."""

    document: ParsedDocument
    chunks: tuple[Chunk, ...]
    ocr_s: float
    chunk_s: float


@dataclass(frozen=True, slots=True)
class OtherRanges:
    """Reported by a job on a long PDF once its pages are counted: the page ranges other
    workers should read while this one reads the first."""

    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True, repr=False)
class FirstRange:
    """What a job on a long PDF returns: the raw text of the first range's pages."""

    texts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OcrProgress:
    """Reported as scanned pages are read: ``done`` of ``total`` pages."""

    done: int
    total: int


def read_upload(
    data: bytes,
    name: str,
    document_format: Format,
    password: str | None,
    options: ReadOptions,
    chunking: Chunking | None,
) -> Prepared | FirstRange:
    """The job for one upload (in a worker): its document and chunks, or for a long PDF
    the first range's raw text (the caller reads the ``OtherRanges`` it reported)."""
    if document_format.kind == "pdf":
        pdf = open_pdf(data, name, password=password, max_pages=options.max_pages)
        ranges = page_ranges(pdf.page_count, options.workers)
        first, last = ranges[0]
        time_limit(options.limit.for_pages(last - first + 1))
        if len(ranges) > 1:
            report(OtherRanges(tuple(ranges[1:])))
            return FirstRange(tuple(pdf.texts(first, last, options.text_mode)))
        texts = pdf.texts(first, last, options.text_mode)
        document = pdf_document(name, texts, ocr=options.ocr)
        return _finish(data, document, password, options, chunking)
    if document_format.kind == "image":
        kind = image_kind(data)
        assert kind is not None  # the loader dispatches by the bytes' signature
        started = time.perf_counter()
        report(OcrProgress(0, 1))
        document = parse_image(data, name, kind=kind)
        report(OcrProgress(1, 1))
        return _chunked(document, time.perf_counter() - started, options, chunking)
    assert document_format.parse is not None  # every 'document' format has its parser
    document = document_format.parse(data, name, max_pages=options.max_pages)
    return _chunked(document, 0.0, options, chunking)


def read_range(
    data: bytes, name: str, password: str | None, first: int, last: int, text_mode: TextMode
) -> list[str]:
    """The job for one more page range of a long PDF (in a worker): its raw text."""
    return extract_pdf_pages(
        data, name, password=password, first=first, last=last, text_mode=text_mode
    )


def finish_pdf(
    data: bytes,
    name: str,
    texts: Sequence[str],
    password: str | None,
    options: ReadOptions,
    chunking: Chunking | None,
) -> Prepared:
    """The job that ends a long PDF (in a worker): clean every page's raw text (words
    hyphenated at a line end are rejoined by looking for them elsewhere in the document),
    OCR the pages that need it, chunk."""
    document = pdf_document(name, list(texts), ocr=options.ocr)
    return _finish(data, document, password, options, chunking)


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


def _finish(
    data: bytes,
    document: ParsedDocument,
    password: str | None,
    options: ReadOptions,
    chunking: Chunking | None,
) -> Prepared:
    if not options.ocr:
        return _chunked(document, 0.0, options, chunking)
    missing = pages_needing_ocr(document.pages)
    to_read: list[int] = []
    if missing:
        time_limit(options.limit.for_pages(len(missing)))
        to_read = drawn_pages(data, missing, password=password)
    started = time.perf_counter()

    def read_page(number: int) -> str:
        time_limit(options.limit.for_pages(1))
        return ocr_pdf_page(data, number, password=password, dpi=options.ocr_dpi)

    def progress(done: int, total: int) -> None:
        report(OcrProgress(done, total))

    document = fill_missing_pages(document, to_read, read_page, progress)
    return _chunked(document, time.perf_counter() - started, options, chunking)


def _chunked(
    document: ParsedDocument, ocr_s: float, options: ReadOptions, chunking: Chunking | None
) -> Prepared:
    """The document with its chunks, split under the time limit of its pages: chunking a
    pathological text is CPU work that must not stall the API either."""
    if chunking is None:
        return Prepared(document, (), ocr_s, 0.0)
    time_limit(options.limit.for_pages(document.page_count), "Splitting")
    started = time.perf_counter()
    chunks = split_within(document, chunking)
    if not chunks:
        raise EmptyDocumentError(
            f"'{document.filename}' contains no text to search.", filename=document.filename
        )
    return Prepared(document, tuple(chunks), ocr_s, time.perf_counter() - started)


def split_within(document: ParsedDocument, chunking: Chunking) -> list[Chunk]:
    """The document's chunks, refusing a document that makes more than a session holds."""
    chunker = chunking.chunker
    # Every word is at least one token: a cheap lower bound refuses a document that
    # cannot fit before the costly split.
    words = sum(1 for page in document.pages for _ in _WORD.finditer(page.text))
    _check_chunk_count(document.filename, words // chunker.chunk_size, chunking.max_chunks)
    chunks = chunker.split(document, chunking.document_id)
    _check_chunk_count(document.filename, len(chunks), chunking.max_chunks)
    return chunks


def _check_chunk_count(filename: str, chunks: int, max_chunks: int) -> None:
    if chunks > max_chunks:
        raise DocumentTooComplexError(
            f"'{filename}' holds too much text: it makes at least {chunks:,} passages and "
            f"a session holds at most {max_chunks:,}. Split it into smaller files, "
            "or ask the operator to raise PGPT_MAX_CHUNKS_PER_SESSION.",
            filename=filename,
        )
