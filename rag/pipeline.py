"""The one ingestion path: bytes -> pages -> chunks -> vectors -> a session's index."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from core.errors import DocumentTooComplexError, EmptyDocumentError
from core.settings import Settings
from ingest.chunking import TokenChunker
from ingest.loader import get_parser_pool, load_document, sanitize_filename
from ingest.models import SourceDocument
from rag.embedding import Embedder
from rag.sessions import DocumentInfo, Session

_WORD = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class IngestTimings:
    parse_s: float
    chunk_s: float
    embed_s: float


def make_chunker(settings: Settings, embedder: Embedder) -> TokenChunker:
    """The chunker of the settings, clamped to what the embedder takes whole."""
    return TokenChunker.for_model(
        embedder.count_tokens,
        embedder.max_tokens,
        settings.chunk_size_tokens,
        settings.chunk_overlap_tokens,
    )


class Ingestor:
    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self._settings = settings
        self._embedder = embedder
        self._chunker = make_chunker(settings, embedder)

    def ingest(
        self, session: Session, data: bytes, filename: str, *, password: str | None = None
    ) -> tuple[DocumentInfo, IngestTimings]:
        """Add one file to the session, or raise and leave the session as it was.

        The session keeps the file's bytes and parsed pages too, to show its pages later.
        """
        started = time.perf_counter()
        session.check_room(sanitize_filename(filename), 0, len(data))  # the bytes alone must fit
        document = load_document(
            data,
            filename,
            password=password,
            max_bytes=self._settings.max_upload_bytes,
            max_pages=self._settings.max_pages,
            timeout_s=self._settings.parse_timeout_s,
            timeout_per_page_s=self._settings.parse_timeout_per_page_s,
            pool=get_parser_pool(self._settings.parser_workers),
        )
        parsed = time.perf_counter()
        source = SourceDocument(data, document.media_type, document.pages, password)
        # Every word is at least one token: a cheap lower bound on the chunk count refuses
        # a document that cannot fit before it is chunked.
        words = sum(1 for page in document.pages for _ in _WORD.finditer(page.text))
        self._check_room(
            session, document.filename, words // self._chunker.chunk_size, source.memory_bytes
        )
        document_id = secrets.token_hex(8)
        chunks = self._chunker.split(document, document_id)
        if not chunks:
            raise EmptyDocumentError(
                f"'{document.filename}' contains no text to search.", filename=document.filename
            )
        # Before embedding, by far the costliest step.
        self._check_room(session, document.filename, len(chunks), source.memory_bytes)
        chunked = time.perf_counter()
        vectors = self._embedder.embed([chunk.text for chunk in chunks])
        embedded = time.perf_counter()
        info = DocumentInfo(
            document_id=document_id,
            filename=document.filename,
            media_type=document.media_type,
            pages=document.page_count,
            chunks=len(chunks),
            size_bytes=len(data),
            memory_bytes=source.memory_bytes,
        )
        session.add_document(info, chunks, vectors, source)
        return info, IngestTimings(parsed - started, chunked - parsed, embedded - chunked)

    @staticmethod
    def _check_room(session: Session, filename: str, chunks: int, memory_bytes: int) -> None:
        if chunks > session.max_chunks:
            raise DocumentTooComplexError(
                f"'{filename}' holds too much text: it makes at least {chunks:,} passages and "
                f"a session holds at most {session.max_chunks:,}. Split it into smaller files, "
                "or ask the operator to raise PGPT_MAX_CHUNKS_PER_SESSION.",
                filename=filename,
            )
        session.check_room(filename, chunks, memory_bytes)
