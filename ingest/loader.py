"""Uploaded bytes -> ParsedDocument: pick the parser, enforce limits, parse in a worker.

Parsing runs in a pool of worker processes so that a hostile or pathological file can
be stopped: on timeout its worker is killed and replaced, and the caller gets
DocumentTooComplexError. The bytes travel through the pool's pipe, never a temp file.

A PDF is first opened to count its pages; its time limit is then a base plus a budget
per page, and a long one is split into page ranges that several workers parse side by
side, merged back in page order.

Workers start from a 'forkserver' and, as with any 'forkserver' or 'spawn' process,
re-import the program's ``__main__`` module: scripts that load documents must keep their
work under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import re
import signal
import sys
import threading
import time
import types
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

import psutil

from core.errors import (
    DocumentTooComplexError,
    EmptyDocumentError,
    FileTooLargeError,
    UnsupportedFileTypeError,
)
from core.memory import release_freed_memory
from ingest.chunking import TokenChunker
from ingest.formats import corrupt_error, format_for
from ingest.models import Chunk, ParsedDocument
from ingest.ocr import (
    IMAGE_EXTENSIONS,
    PageProgress,
    drawn_pages,
    fill_missing_pages,
    image_kind,
    ocr_pdf_page,
    pages_needing_ocr,
    parse_image,
)
from ingest.pdf import (
    TextMode,
    check_pdf_bytes,
    count_pdf_pages,
    extract_pdf_pages,
    looks_like_pdf,
    parse_pdf,
    pdf_document,
)
from ingest.text import parse_text

log = logging.getLogger(__name__)

_WORD = re.compile(r"\S+")

T = TypeVar("T")

PDF_EXTENSIONS = frozenset({".pdf"})
PLAIN_EXTENSIONS = frozenset({".txt", ".text"})
MARKDOWN_EXTENSIONS = frozenset({".md", ".markdown"})
ACCEPTED_TYPES = (
    "PDF (.pdf, scanned too), images (.png, .jpg, .jpeg, .tif, .tiff, .webp), Word (.docx), "
    "PowerPoint (.pptx), Excel (.xlsx), CSV (.csv), HTML (.html, .htm), plain text "
    "(.txt, .text) or Markdown (.md, .markdown)"
)
DEFAULT_OCR_DPI = 150

MAX_FILENAME_CHARS = 120
FALLBACK_FILENAME = "document"

# A page range parsed by another worker re-opens the file there (and the bytes travel
# through its pipe): shorter ranges cost more than they save.
MIN_PAGES_PER_RANGE = 8
WORKER_START_TIMEOUT_S = 60.0
OWNER_CHECK_INTERVAL_S = 1.0
# Address space a worker may add on top of what it holds after start-up: a last line of
# defence behind pypdf's own decompression limits (which stay at their defaults).
WORKER_MEMORY_HEADROOM_BYTES = 3 * 1024**3


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
    # Content wins over the name: a PDF saved as .txt is still a PDF.
    if looks_like_pdf(data):
        limit = ParseTimeLimit(base_s=timeout_s, per_page_s=timeout_per_page_s)
        document = _parse_pdf_in_pool(
            pool, data, name, password, max_pages, limit, pdf_text_mode, ocr=ocr
        )
        if not ocr:
            return document
        return _ocr_missing_pages(pool, document, data, password, ocr_dpi, limit, progress)
    kind = image_kind(data)
    if kind is not None:
        return _load_image(pool, data, name, kind, ocr=ocr, timeout_s=timeout_s, progress=progress)
    if extension in IMAGE_EXTENSIONS:
        raise corrupt_error(name, f"{extension[1:].upper()} image", None)
    if extension in PDF_EXTENSIONS:
        check_pdf_bytes(data, name)  # raises: named .pdf but not a PDF
    if extension in PLAIN_EXTENSIONS or extension in MARKDOWN_EXTENSIONS:
        return pool.run(
            parse_text,
            data,
            name,
            markdown=extension in MARKDOWN_EXTENSIONS,
            max_pages=max_pages,
            timeout_s=timeout_s,
            filename=name,
        )
    new_format = format_for(extension)
    if new_format is not None:
        return pool.run(
            new_format.parse, data, name, max_pages=max_pages, timeout_s=timeout_s, filename=name
        )
    kind = f"a {extension} file" if extension else "a file without an extension"
    raise UnsupportedFileTypeError(
        f"'{name}' is {kind}, which cannot be read. Accepted are {ACCEPTED_TYPES}; "
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
    check_chunk_count(document.filename, words // chunker.chunk_size, max_chunks)
    chunks = chunker.split(document, document_id)
    check_chunk_count(document.filename, len(chunks), max_chunks)
    return chunks


def check_chunk_count(filename: str, chunks: int, max_chunks: int) -> None:
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


# --- the worker pool -----------------------------------------------------------------


def _init_worker(owner_pid: int, owner_started: float) -> None:
    """Runs in each worker at start-up: cap its memory, and make it die with the API."""
    _limit_worker_memory()
    threading.Thread(
        target=_exit_when_gone, args=(owner_pid, owner_started), name="owner-watch", daemon=True
    ).start()


def _exit_when_gone(owner_pid: int, owner_started: float) -> None:
    """A worker's parent is the forkserver, not the API, and it holds the write end of its
    own job queue: without this, a SIGKILLed API leaves its workers (and with them the
    forkserver and resource tracker) running forever."""
    while True:
        time.sleep(OWNER_CHECK_INTERVAL_S)
        try:
            alive = psutil.Process(owner_pid).create_time() == owner_started
        except psutil.NoSuchProcess:
            alive = False
        if not alive:
            os._exit(0)


def _limit_worker_memory() -> None:
    """The worker's address-space cap.

    The cap is relative: a worker re-imports the parent's ``__main__`` module (how
    'forkserver' and 'spawn' work), which may already have mapped gigabytes (torch).
    """
    try:
        import resource

        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = mapped + WORKER_MEMORY_HEADROOM_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        log.debug("no address-space limit for parser workers; pypdf's own limits remain")


_main_swap_lock = threading.Lock()


@contextlib.contextmanager
def _bare_main_module() -> Iterator[None]:
    """Start worker processes as if from a bare interpreter.

    'forkserver' and 'spawn' children re-run the parent's ``__main__`` file; that may be
    a Streamlit page or a script without a main guard, which must not run again inside a
    parser. The process is started synchronously by ``submit``, so the swap is brief.
    """
    with _main_swap_lock:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


class _Worker:
    """One worker process in its own executor, so a hung parse can be killed alone."""

    def __init__(self, context: multiprocessing.context.BaseContext) -> None:
        owner = psutil.Process()
        self._executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=context,
            initializer=_init_worker,
            initargs=(owner.pid, owner.create_time()),
        )
        # Starting the process (and learning its pid) here keeps start-up cost out of
        # the parse timeout.
        try:
            with _bare_main_module():
                started = self._executor.submit(os.getpid)
            self.pid: int = started.result(timeout=WORKER_START_TIMEOUT_S)
        except BaseException:
            self._executor.shutdown(wait=False, cancel_futures=True)
            raise

    def run(
        self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], timeout_s: float
    ) -> T:
        future = self._executor.submit(fn, *args, **kwargs)
        try:
            return future.result(timeout=timeout_s)
        finally:
            if future.done():
                self._drop_last_arguments()

    def _drop_last_arguments(self) -> None:
        """The call queue's feeder thread holds the last job's pickled arguments (the
        document's bytes) until the next job is sent: send a small one so they go now."""
        with contextlib.suppress(Exception):  # a broken pool has nothing left to drop
            self._executor.submit(release_freed_memory).result(timeout=WORKER_START_TIMEOUT_S)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._executor.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class ParserPool:
    """A fixed number of lazily started worker processes; each job gets a whole worker.

    A job waits for a free worker before its clock starts, so the timeout measures
    parsing, not queueing behind other uploads.
    """

    def __init__(self, workers: int = 0, start_method: str = "forkserver") -> None:
        """``workers``: how many processes at most; 0 means one per available CPU core."""
        self._context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            # Workers fork from a server that has already imported the parsers.
            self._context.set_forkserver_preload(["ingest.loader"])  # type: ignore[attr-defined]
        self._workers = workers or available_cores()
        self._slots: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(self._workers):
            self._slots.put(None)  # None: a free slot whose worker is not started yet
        self._live: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False

    def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        timeout_s: float,
        filename: str,
        what: str = "Parsing",
        **kwargs: Any,
    ) -> T:
        """``fn(*args, **kwargs)`` in a worker; DocumentTooComplexError after ``timeout_s``."""
        worker = self._slots.get()
        refilling = False  # True once a background thread owns refilling this slot
        try:
            if self._closed:
                raise RuntimeError("the parser pool has been shut down")
            if worker is None:
                worker = self._start_worker()
            try:
                return worker.run(fn, args, kwargs, timeout_s)
            except FutureTimeoutError:
                self._discard(worker, kill=True)
                refilling = self._refill_slot_in_background()
                raise DocumentTooComplexError(
                    f"{what} '{filename}' took longer than the {timeout_s:g} s limit; the file "
                    "may be very large or malformed. Split it into smaller files, or raise "
                    "PGPT_PARSE_TIMEOUT_S (per file) or PGPT_PARSE_TIMEOUT_PER_PAGE_S.",
                    filename=filename,
                ) from None
            except BrokenProcessPool:
                # The worker died mid-parse: most likely it hit the memory cap. Its pid
                # may already belong to another process, so it is not signalled.
                self._discard(worker, kill=False)
                refilling = self._refill_slot_in_background()
                raise DocumentTooComplexError(
                    f"The parser stopped unexpectedly while reading '{filename}'; the file may "
                    "need more memory than allowed or be malformed. Split it into smaller "
                    "files or re-export it, and upload again.",
                    filename=filename,
                ) from None
        finally:
            if not refilling:
                self._slots.put(worker)

    def warm_up(self) -> None:
        """Start every worker now, so the first uploads do not wait for process start-up."""
        taken = [self._slots.get() for _ in range(self._workers)]
        try:
            for index, worker in enumerate(taken):
                if worker is None and not self._closed:
                    taken[index] = self._start_worker()
        finally:
            for worker in taken:
                self._slots.put(worker)

    def close(self) -> None:
        """Stop every worker, killing any that is still busy."""
        with self._lock:
            self._closed = True
            workers = list(self._live)
            self._live.clear()
        for worker in workers:
            worker.kill()

    @property
    def size(self) -> int:
        """How many workers the pool runs at most (how many jobs run side by side)."""
        return self._workers

    @property
    def worker_pids(self) -> list[int]:
        with self._lock:
            return [worker.pid for worker in self._live]

    def _start_worker(self) -> _Worker:
        worker = _Worker(self._context)
        with self._lock:
            self._live.add(worker)
        return worker

    def _refill_slot_in_background(self) -> bool:
        """Start a lost worker's successor in a thread that then frees the slot, so the
        next upload finds a ready worker instead of paying for process start-up."""

        def refill() -> None:
            worker: _Worker | None = None
            try:
                if not self._closed:
                    worker = self._start_worker()
            except Exception:
                log.exception("could not start a parser worker; the next upload will retry")
            finally:
                self._slots.put(worker)

        threading.Thread(target=refill, name="parser-worker-start", daemon=True).start()
        return True

    def _discard(self, worker: _Worker, *, kill: bool) -> None:
        with self._lock:
            self._live.discard(worker)
        if kill:
            worker.kill()
        else:
            worker.close()


_pool: ParserPool | None = None
_pool_lock = threading.Lock()


def available_cores() -> int:
    """CPU cores this process may run on (a container's CPU set, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def get_parser_pool(workers: int = 0) -> ParserPool:
    """The process-wide parser pool, created on first use and closed at exit.

    ``workers`` sizes it when this call creates it (0: one per core); later calls get the
    existing pool whatever they ask for.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ParserPool(workers)
        elif workers and workers != _pool.size:
            log.warning(
                "the parser pool already runs %d workers; %d requested", _pool.size, workers
            )
        return _pool


def shutdown_parser_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


def _register_exit_hook() -> None:
    # concurrent.futures joins its pools in a threading-shutdown hook that runs before
    # atexit handlers and would wait for a hung parse; ours must run first and kill it.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(shutdown_parser_pool)
    else:
        import atexit

        atexit.register(shutdown_parser_pool)


_register_exit_hook()
