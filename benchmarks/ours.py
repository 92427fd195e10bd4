"""Our pipeline, wired as serving/api.py's build_services wires it (minus generation)."""

from __future__ import annotations

from core.settings import Settings
from ingest.chunking import TokenChunker
from rag.embedding import Embedder
from rag.index import make_index
from rag.sessions import SessionStore


def make_store(settings: Settings, embedder: Embedder) -> SessionStore:
    return SessionStore(
        index_factory=lambda: make_index(embedder.dimension, settings.index_device),
        ttl_s=settings.session_ttl_s,
        max_sessions=settings.max_sessions,
        max_chunks_per_session=settings.max_chunks_per_session,
        max_total_chunks=settings.max_total_chunks,
    )


def make_chunker(settings: Settings, embedder: Embedder) -> TokenChunker:
    """The chunker Ingestor builds, for chunk-only passes (no embedding)."""
    return TokenChunker(
        embedder.count_tokens,
        chunk_size=min(settings.chunk_size_tokens, embedder.max_tokens),
        chunk_overlap=settings.chunk_overlap_tokens,
    )
