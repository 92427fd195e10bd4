"""Settings -> the objects that answer questions, wired once for the API, CLI, benchmarks, tests."""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Settings
from ingest.worker_pool import ParserPool
from rag.answer import AnswerEngine
from rag.answering import AnswerService
from rag.embedding import Embedder, make_embedder
from rag.extract import QuoteExtractor
from rag.followup import make_rewriter
from rag.generation import Generator
from rag.index import make_index
from rag.pipeline import Ingestor
from rag.retrieval import make_retriever
from rag.sessions import SessionStore
from rag.verification import CitationVerifier
from serving.vllm_client import make_generator


@dataclass
class Services:
    """Everything a request needs, built once at start-up; ``aclose`` releases it all."""

    settings: Settings
    embedder: Embedder
    parser_pool: ParserPool
    store: SessionStore
    ingestor: Ingestor
    answers: AnswerService

    @property
    def generator(self) -> Generator:
        return self.answers.engine.generator

    async def aclose(self) -> None:
        """Drop every session, close the generator's connections, stop the parser workers."""
        self.store.close_all()
        await self.generator.aclose()
        self.parser_pool.close()


def make_store(settings: Settings, embedder: Embedder) -> SessionStore:
    """The session store with the limits and index backend the settings ask for."""
    return SessionStore(
        index_factory=lambda: make_index(embedder.dimension, settings.index_device),
        ttl_s=settings.session_ttl_s,
        max_sessions=settings.max_sessions,
        max_chunks_per_session=settings.max_chunks_per_session,
        max_total_chunks=settings.max_total_chunks,
        max_bytes_per_session=settings.max_document_bytes_per_session,
        max_total_bytes=settings.max_total_document_bytes,
        conversation_max_turns=settings.conversation_max_turns,
        conversation_max_chars=settings.conversation_max_chars,
    )


def build_services(
    settings: Settings, *, embedder: Embedder | None = None, generator: Generator | None = None
) -> Services:
    """The real objects; pass ``embedder`` or ``generator`` to reuse or replace one.

    The parser workers start on first use (``parser_pool.warm_up()`` starts them now).
    """
    embedder = embedder or make_embedder(settings)
    parser_pool = ParserPool(settings.parser_workers)
    verifier = CitationVerifier(embedder) if settings.verify_citations else None
    generator = generator or make_generator(settings)
    return Services(
        settings=settings,
        embedder=embedder,
        parser_pool=parser_pool,
        store=make_store(settings, embedder),
        ingestor=Ingestor(settings, embedder, parser_pool),
        answers=AnswerService(
            settings,
            AnswerEngine(
                make_retriever(settings, embedder),
                generator,
                verifier,
                QuoteExtractor(embedder, min_confidence=settings.quote_min_confidence),
                min_score=settings.answer_min_score,
            ),
            make_rewriter(settings, generator),
        ),
    )
