"""The one ingestion path: an upload -> pages and chunks (one job in a parser worker) ->
vectors -> a session's index."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import astuple, dataclass

from core.settings import Settings
from ingest.chunking import TokenChunker
from ingest.context import HEADER_MAX_TOKENS
from ingest.job import Chunking, ParseTimeLimit, ReadOptions
from ingest.loader import ParserPool, get_parser_pool, prepare_document
from ingest.models import Chunk, ParsedDocument, SourceDocument
from ingest.ocr import PageProgress
from ingest.upload import Upload
from rag.embedding import Embedder
from rag.sessions import DocumentInfo, Session

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestTimings:
    """Seconds per stage of one upload. ``ocr_s`` and ``chunk_s`` are measured in the
    parser worker; ``parse_s`` is the rest of the worker job's wall time (waiting for a
    worker, the bytes crossing, finding the pages to OCR)."""

    parse_s: float
    ocr_s: float
    chunk_s: float
    embed_s: float
    index_s: float  # into the session: FAISS and the chunk store


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
        self.chunker = make_chunker(settings, embedder)
        self._options = ReadOptions(
            max_pages=settings.max_pages,
            limit=ParseTimeLimit(
                base_s=settings.parse_timeout_s, per_page_s=settings.parse_timeout_per_page_s
            ),
            text_mode=settings.pdf_text_mode,
            ocr=settings.ocr,
            ocr_dpi=settings.ocr_dpi,
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
        """Add a file read whole (its name and size checked here: ``Upload.received``);
        see ``add``."""
        upload = Upload.received(filename, data, max_bytes=self._settings.max_upload_bytes)
        return self.add(session, upload, password=password, progress=progress)

    def add(
        self,
        session: Session,
        upload: Upload,
        *,
        password: str | None = None,
        progress: PageProgress | None = None,
    ) -> tuple[DocumentInfo, IngestTimings]:
        """Add one upload to the session, or raise and leave the session as it was.

        ``progress(done, total)`` reports pages read by OCR, for long scans.
        The session keeps the file's bytes and parsed pages too, to show its pages later.
        """
        document_id = secrets.token_hex(8)
        loaded = prepare_document(
            upload,
            self._options,
            pool=self._pool(),
            password=password,
            chunking=Chunking(self.chunker, document_id, session.max_chunks),
            progress=progress,
        )
        prepared = loaded.prepared
        source = SourceDocument(
            upload.data, prepared.document.media_type, prepared.document.pages, password
        )
        info, embed_s, index_s = self.index(
            session, prepared.document, list(prepared.chunks), source
        )
        timings = IngestTimings(
            loaded.seconds - prepared.ocr_s - prepared.chunk_s,
            prepared.ocr_s,
            prepared.chunk_s,
            embed_s,
            index_s,
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

    def index(
        self,
        session: Session,
        document: ParsedDocument,
        chunks: list[Chunk],
        source: SourceDocument,
    ) -> tuple[DocumentInfo, float, float]:
        """Embed a document's chunks into the session: its info and the embed and index
        seconds. The room it needs is reserved first (the one check that it fits), so a
        document that cannot fit costs no embedding."""
        room = session.reserve(document.filename, len(chunks), source.memory_bytes)
        try:
            started = time.perf_counter()
            vectors = self._embedder.embed([chunk.indexed_text for chunk in chunks])
            embedded = time.perf_counter()
            info = DocumentInfo(
                document_id=chunks[0].document_id,  # a document without chunks is refused
                filename=document.filename,
                media_type=document.media_type,
                pages=document.page_count,
                chunks=len(chunks),
                ocr_pages=document.ocr_pages,
                page_unit=document.page_unit,
                size_bytes=len(source.data),
                memory_bytes=source.memory_bytes,
            )
            session.add_document(info, chunks, vectors, source, room)
        finally:
            session.release(room)  # nothing to give back once the document took it
        return info, embedded - started, time.perf_counter() - embedded
