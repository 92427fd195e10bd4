"""The one ingestion path: bytes -> pages -> chunks -> vectors -> a session's index."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import astuple, dataclass

from core.errors import EmptyDocumentError
from core.settings import Settings
from ingest.chunking import TokenChunker
from ingest.context import HEADER_MAX_TOKENS
from ingest.loader import (
    ParserPool,
    ParseTimeLimit,
    chunk_document,
    get_parser_pool,
    load_document,
    sanitize_filename,
)
from ingest.models import ParsedDocument, SourceDocument
from ingest.ocr import PageProgress
from rag.embedding import Embedder
from rag.sessions import DocumentInfo, Session

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestTimings:
    """Seconds per stage of one upload. ``ocr_s`` runs from the first OCR progress report
    to the end of loading (0 without pages to read); finding those pages is in ``parse_s``."""

    parse_s: float
    ocr_s: float
    chunk_s: float
    embed_s: float
    index_s: float  # into the session: FAISS and the chunk store


@dataclass(slots=True)
class _OcrClock:
    """A progress callback that notes when OCR starts and passes the report on."""

    progress: PageProgress | None
    started: float | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.started is None:
            self.started = time.perf_counter()
        if self.progress is not None:
            self.progress(done, total)


def make_chunker(settings: Settings, embedder: Embedder) -> TokenChunker:
    """The chunker of the settings, clamped so a chunk and its header are embedded whole."""
    room = embedder.max_tokens - (HEADER_MAX_TOKENS + 1 if settings.context_headers else 0)
    return TokenChunker.for_model(
        embedder.count_tokens,
        room,
        settings.chunk_size_tokens,
        settings.chunk_overlap_tokens,
        context_headers=settings.context_headers,
    )


class Ingestor:
    def __init__(
        self, settings: Settings, embedder: Embedder, pool: ParserPool | None = None
    ) -> None:
        """``pool``: the parser workers to use; by default the process-wide pool, sized by
        ``settings.parser_workers`` if this creates it."""
        self._settings = settings
        self._embedder = embedder
        self._given_pool = pool
        self._chunker = make_chunker(settings, embedder)
        self._limit = ParseTimeLimit(
            base_s=settings.parse_timeout_s, per_page_s=settings.parse_timeout_per_page_s
        )

    def _pool(self) -> ParserPool:
        if self._given_pool is not None:
            return self._given_pool
        return get_parser_pool(self._settings.parser_workers)

    def ingest(
        self,
        session: Session,
        data: bytes,
        filename: str,
        *,
        password: str | None = None,
        progress: PageProgress | None = None,
    ) -> tuple[DocumentInfo, IngestTimings]:
        """Add one file to the session, or raise and leave the session as it was.

        ``progress(done, total)`` reports pages read by OCR, for long scans.
        The session keeps the file's bytes and parsed pages too, to show its pages later.
        """
        started = time.perf_counter()
        session.check_room(sanitize_filename(filename), 0, len(data))  # the bytes alone must fit
        ocr_clock = _OcrClock(progress)
        document = load_document(
            data,
            filename,
            password=password,
            max_bytes=self._settings.max_upload_bytes,
            max_pages=self._settings.max_pages,
            timeout_s=self._limit.base_s,
            timeout_per_page_s=self._limit.per_page_s,
            pool=self._pool(),
            pdf_text_mode=self._settings.pdf_text_mode,
            ocr=self._settings.ocr,
            ocr_dpi=self._settings.ocr_dpi,
            progress=ocr_clock,
        )
        loaded = time.perf_counter()
        ocr_started = loaded if ocr_clock.started is None else ocr_clock.started
        info, stages = self._add_parsed(session, document, data, password)
        timings = IngestTimings(
            ocr_started - started, loaded - ocr_started, stages[0], stages[1], stages[2]
        )
        # Sizes and times only: nothing of the document (not even its name) reaches a log.
        log.info(
            "document indexed: %s, %d pages (%d by OCR), %d chunks; parse %.0f ms, OCR %.0f "
            "ms, chunk %.0f ms, embed %.0f ms, index %.0f ms",
            info.media_type,
            info.pages,
            len(info.ocr_pages),
            info.chunks,
            *(1000 * seconds for seconds in astuple(timings)),
        )
        return info, timings

    def add_parsed(self, session: Session, document: ParsedDocument) -> DocumentInfo:
        """Chunk, embed and add an already parsed document (benchmarks reuse parses)."""
        return self._add_parsed(session, document, b"", None)[0]

    def _add_parsed(
        self, session: Session, document: ParsedDocument, data: bytes, password: str | None
    ) -> tuple[DocumentInfo, tuple[float, float, float]]:
        """The document's info and its chunk, embed and index seconds."""
        started = time.perf_counter()
        source = SourceDocument(data, document.media_type, document.pages, password)
        document_id = secrets.token_hex(8)
        # In a worker, under the parse time limit: splitting is CPU work on the file's content.
        chunks = chunk_document(
            document,
            self._chunker,
            document_id,
            max_chunks=session.max_chunks,
            limit=self._limit,
            pool=self._pool(),
        )
        if not chunks:
            raise EmptyDocumentError(
                f"'{document.filename}' contains no text to search.", filename=document.filename
            )
        # Before embedding, by far the costliest step (the worker has already refused more
        # chunks than a session holds at all).
        session.check_room(document.filename, len(chunks), source.memory_bytes)
        chunked = time.perf_counter()
        vectors = self._embedder.embed([chunk.indexed_text for chunk in chunks])
        embedded = time.perf_counter()
        info = DocumentInfo(
            document_id=document_id,
            filename=document.filename,
            media_type=document.media_type,
            pages=document.page_count,
            chunks=len(chunks),
            ocr_pages=document.ocr_pages,
            page_unit=document.page_unit,
            size_bytes=len(data),
            memory_bytes=source.memory_bytes,
        )
        session.add_document(info, chunks, vectors, source)
        indexed = time.perf_counter()
        return info, (chunked - started, embedded - chunked, indexed - embedded)
