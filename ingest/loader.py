"""Uploads -> ParsedDocument and chunks: pick the format (ingest/formats.py), then one job
per document in a parser worker (ingest/job.py: parse, OCR what needs it, chunk).

The bytes cross to a worker once and the pages and chunks come back once. A long PDF
(MIN_PAGES_PER_RANGE pages per worker or more) is the one exception: its first job counts
the pages and reads the first range while other workers read the other ranges side by
side; one more job then cleans, OCRs and chunks the whole document, in page order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

from core.errors import EmptyDocumentError, UnsupportedFileTypeError
from ingest.formats import Format, accepted_types, format_of
from ingest.job import (
    DEFAULT_OCR_DPI,
    Chunking,
    OcrProgress,
    OtherRanges,
    ParseTimeLimit,
    Prepared,
    ReadOptions,
    finish_pdf,
    read_range,
    read_upload,
)
from ingest.models import ParsedDocument
from ingest.ocr import PageProgress, image_kind
from ingest.parse_helpers import corrupt_error
from ingest.pdf import TextMode, check_pdf_bytes, looks_like_pdf
from ingest.upload import Upload

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

T = TypeVar("T")


@dataclass(frozen=True, slots=True, repr=False)
class Loaded:
    """An upload read and chunked: the job's result, and its wall time in seconds
    (waiting for a worker, the crossings and every stage)."""

    prepared: Prepared
    seconds: float


def prepare_document(
    upload: Upload,
    options: ReadOptions,
    *,
    pool: ParserPool,
    password: str | None = None,
    chunking: Chunking | None = None,
    progress: PageProgress | None = None,
) -> Loaded:
    """Parse an upload (and chunk it with ``chunking``); raises a DocumentError naming
    the file. Each stage has its time limit (``options.limit``, see ingest/job.py); with
    ``options.ocr`` scanned pages and images are read by OCR and ``progress(done, total)``
    is called before the first page and after each."""
    started = time.perf_counter()
    name, data = upload.name, upload.data
    if not data:
        raise EmptyDocumentError(
            f"'{name}' is empty (0 bytes). Check the file and upload it again.", filename=name
        )
    extension = _extension(name)
    document_format = format_of(data, extension)
    if document_format is None:
        raise _unsupported(name, extension)
    if document_format.kind == "pdf" and not looks_like_pdf(data):
        check_pdf_bytes(data, name)  # raises: named .pdf but not a PDF
    if document_format.kind == "image":
        if image_kind(data) is None:  # named as an image, but its bytes are none
            raise corrupt_error(name, f"{extension[1:].upper()} image", None)
        if not options.ocr:
            raise UnsupportedFileTypeError(
                f"'{name}' is an image; reading images needs OCR, which is turned off on this "
                "server (PGPT_OCR=false). Ask the operator to turn it on, or upload the text.",
                filename=name,
            )
    options = replace(options, workers=pool.size)
    prepared = _run(pool, upload, document_format, password, options, chunking, progress)
    return Loaded(prepared, time.perf_counter() - started)


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
    """Parse a file read whole (no chunks): ``prepare_document`` for the callers that
    only want its pages. ``pool`` defaults to the process-wide parser pool."""
    options = ReadOptions(
        max_pages=max_pages,
        limit=ParseTimeLimit(base_s=timeout_s, per_page_s=timeout_per_page_s),
        text_mode=pdf_text_mode,
        ocr=ocr,
        ocr_dpi=ocr_dpi,
    )
    loaded = prepare_document(
        Upload.received(filename, data, max_bytes=max_bytes),
        options,
        pool=pool or get_parser_pool(),
        password=password,
        progress=progress,
    )
    return loaded.prepared.document


def _run(
    pool: ParserPool,
    upload: Upload,
    document_format: Format,
    password: str | None,
    options: ReadOptions,
    chunking: Chunking | None,
    progress: PageProgress | None,
) -> Prepared:
    """The document's job; for a long PDF, its other ranges and the job that finishes it."""
    name = upload.name

    def job(fn: Callable[..., T], data: bytes, what: object) -> T:
        return pool.run(
            fn,
            data,
            name,
            what,
            password,
            options,
            chunking,
            timeout_s=options.limit.base_s,
            filename=name,
            on_event=others.on_event,
        )

    with _OtherRanges(pool, upload, password, options, progress) as others:
        try:
            result = job(read_upload, upload.data, document_format)
        except BaseException:
            others.wait()  # every range finishes; the first failure in page order is raised
            raise
        if isinstance(result, Prepared):
            return result
        texts = [*result.texts, *others.texts()]
    return job(finish_pdf, upload.data if options.ocr else b"", texts)  # bytes for OCR only


class _OtherRanges:
    """The events of a document's job: OCR progress passed on, and a long PDF's other page
    ranges handed to other workers as soon as the first job reports them."""

    def __init__(
        self,
        pool: ParserPool,
        upload: Upload,
        password: str | None,
        options: ReadOptions,
        progress: PageProgress | None,
    ) -> None:
        self._pool = pool
        self._upload = upload
        self._password = password
        self._options = options
        self._progress = progress
        self._threads: ThreadPoolExecutor | None = None
        self._parts: list[Future[list[str]]] = []

    def __enter__(self) -> _OtherRanges:
        return self

    def __exit__(self, *_: object) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=True)

    def on_event(self, event: object) -> None:
        if isinstance(event, OcrProgress):
            if self._progress is not None:
                self._progress(event.done, event.total)
        elif isinstance(event, OtherRanges):
            self._start(event.ranges)

    def _start(self, ranges: tuple[tuple[int, int], ...]) -> None:
        self._threads = ThreadPoolExecutor(len(ranges), thread_name_prefix="pdf-range")
        limit = self._options.limit
        name = self._upload.name
        for first, last in ranges:
            self._parts.append(
                self._threads.submit(
                    self._pool.run,
                    read_range,
                    self._upload.data,
                    name,
                    self._password,
                    first,
                    last,
                    self._options.text_mode,
                    timeout_s=limit.for_pages(last - first + 1),
                    filename=name,
                )
            )

    def wait(self) -> None:
        for part in self._parts:
            part.exception()

    def texts(self) -> list[str]:
        """Every other range's raw text in page order; the first failure is raised."""
        return [text for part in self._parts for text in part.result()]


def _unsupported(name: str, extension: str) -> UnsupportedFileTypeError:
    kind = f"a {extension} file" if extension else "a file without an extension"
    return UnsupportedFileTypeError(
        f"'{name}' is {kind}, which cannot be read. Accepted are {accepted_types()}; "
        "convert it to one of those and upload it again.",
        filename=name,
    )


def _extension(name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    return f".{extension.lower()}" if dot and stem else ""
