"""The core pipeline end to end with the real model, FAISS and PDF parsing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import (
    CorruptDocumentError,
    DocumentError,
    EmptyDocumentError,
    NoTextLayerError,
    PasswordRequiredError,
    WrongPasswordError,
)
from core.settings import Settings, load_settings
from ingest.context import HEADER_MAX_TOKENS
from ingest.models import Chunk, SourceDocument
from rag.fakes import ScriptedGenerator
from rag.pipeline import Ingestor, make_chunker
from rag.retrieval import Retriever, make_retriever
from rag.sessions import DocumentInfo, Session, SessionStore
from serving.wiring import Services, build_services
from tests.support import GPU_ANSWER_PAGES, GPU_QUESTION

TIME_QUESTION = "How long did training the big model take?"


@pytest.fixture(scope="module")
def services(settings: Settings, embedder: Any) -> Services:
    """The objects the API wires, with the real embedder; dense retrieval, CPU index."""
    wired = settings.model_copy(update={"hybrid": False, "index_device": "cpu"})
    return build_services(wired, embedder=embedder, generator=ScriptedGenerator())


@pytest.fixture(scope="module")
def ingestor(services: Services) -> Ingestor:
    return services.ingestor


@pytest.fixture(scope="module")
def retriever(services: Services) -> Retriever:
    return services.answers.engine.retriever


@pytest.fixture()
def store(services: Services) -> Iterator[SessionStore]:
    yield services.store
    services.store.close_all()


Ingested = tuple[DocumentInfo, list[Chunk], np.ndarray, SourceDocument]


@pytest.fixture(scope="module")
def attention_document(services: Services, attention_pdf: bytes) -> Ingested:
    """The paper ingested once through the real pipeline: its document, chunks, vectors and
    the file kept to show its pages."""
    session = services.store.create()
    info, _ = services.ingestor.ingest(session, attention_pdf, "attention-is-all-you-need.pdf")
    ids = np.array(sorted(session.chunks), dtype=np.int64)
    source = session.source(info.document_id)[1]
    document = (info, [session.chunks[i] for i in ids], session.index.vectors(ids), source)
    services.store.delete(session.id)
    return document


@pytest.fixture()
def attention_session(store: SessionStore, attention_document: Ingested) -> Session:
    """A fresh session holding the paper, added from the one ingestion (not parsed again)."""
    session = store.create()
    session.add_document(*attention_document)
    return session


def test_the_paper_is_ingested_whole(
    attention_document: Ingested,
) -> None:
    info, chunks, vectors, source = attention_document
    assert (info.pages, info.chunks, len(vectors)) == (15, len(chunks), len(chunks))
    assert info.size_bytes == len(source.data) and len(source.pages) == 15
    assert {chunk.page for chunk in chunks} == set(range(1, 16))


def top_pages(retriever: Retriever, session: Session, question: str) -> list[int]:
    return [hit.chunk.page for hit in retriever.search(session, question, top_k=5)]


def test_attention_paper_answers_are_on_the_right_pages(
    retriever: Retriever, attention_session: Session
) -> None:
    assert GPU_ANSWER_PAGES & set(top_pages(retriever, attention_session, GPU_QUESTION))
    assert 7 in top_pages(retriever, attention_session, TIME_QUESTION)


def test_hybrid_retrieval_finds_the_same_pages(embedder: Any, attention_session: Session) -> None:
    hybrid = make_retriever(load_settings(hybrid=True), embedder)
    assert GPU_ANSWER_PAGES & set(top_pages(hybrid, attention_session, GPU_QUESTION))
    assert 7 in top_pages(hybrid, attention_session, TIME_QUESTION)


BAD_INPUTS = [
    ("encrypted-password-openpassword.pdf", None, PasswordRequiredError),
    ("encrypted-password-openpassword.pdf", "wrong", WrongPasswordError),
    ("images-with-little-text.pdf", None, NoTextLayerError),
]


@pytest.mark.parametrize("name, password, error", BAD_INPUTS)
def test_bad_shared_pdfs_get_their_error_and_the_session_keeps_answering(
    name: str,
    password: str | None,
    error: type[DocumentError],
    pdf_dir: Path,
    ingestor: Ingestor,
    retriever: Retriever,
    attention_session: Session,
) -> None:
    before = dict(attention_session.documents)
    with pytest.raises(error) as raised:
        ingestor.ingest(attention_session, (pdf_dir / name).read_bytes(), name, password=password)
    assert name in raised.value.message
    assert attention_session.documents == before
    assert GPU_ANSWER_PAGES & set(top_pages(retriever, attention_session, GPU_QUESTION))


@pytest.mark.parametrize(
    "name, data, error",
    [
        ("truncated.pdf", "truncate", CorruptDocumentError),
        ("empty.pdf", b"", EmptyDocumentError),
        ("random.pdf", os.urandom(4096), DocumentError),
    ],
)
def test_broken_bytes_get_their_error_and_the_session_keeps_answering(
    name: str,
    data: bytes | str,
    error: type[DocumentError],
    attention_pdf: bytes,
    ingestor: Ingestor,
    retriever: Retriever,
    attention_session: Session,
) -> None:
    payload = attention_pdf[: len(attention_pdf) // 3] if data == "truncate" else data
    assert isinstance(payload, bytes)
    with pytest.raises(error) as raised:
        ingestor.ingest(attention_session, payload, name)
    assert name in raised.value.message
    assert len(attention_session.documents) == 1
    assert GPU_ANSWER_PAGES & set(top_pages(retriever, attention_session, GPU_QUESTION))


@pytest.mark.parametrize(
    "name, password",
    [
        # The shared README says this file has an empty user password; it is "password"
        # (as in pypdf's own tests). tests/ingest/test_pdf.py covers a truly empty one.
        ("crazyones-encrypted-256.pdf", "password"),
        ("encrypted-password-openpassword.pdf", "openpassword"),
    ],
)
def test_encrypted_pdfs_open_with_the_right_password(
    name: str, password: str | None, pdf_dir: Path, ingestor: Ingestor, store: SessionStore
) -> None:
    session = store.create()
    info, _ = ingestor.ingest(session, (pdf_dir / name).read_bytes(), name, password=password)
    assert info.chunks >= 1


def test_deleting_a_document_removes_all_its_vectors(
    ingestor: Ingestor, retriever: Retriever, attention_session: Session, pdf_dir: Path
) -> None:
    crazy, _ = ingestor.ingest(
        attention_session, (pdf_dir / "crazyones.pdf").read_bytes(), "crazyones.pdf"
    )
    (attention_id,) = [d for d in attention_session.documents if d != crazy.document_id]
    attention_session.remove_document(attention_id)
    hits = retriever.search(attention_session, GPU_QUESTION, top_k=50)
    assert hits and {h.chunk.document_id for h in hits} == {crazy.document_id}
    assert len(attention_session.index) == crazy.chunks


def test_a_clamped_chunk_size_keeps_its_overlap_smaller(embedder: Any) -> None:
    # 512 is above what the model embeds whole, so the chunk is clamped; the overlap follows.
    # Context headers take their share of the model's window first.
    settings = load_settings(chunk_size_tokens=512, chunk_overlap_tokens=300)
    chunker = make_chunker(settings, embedder)
    room = embedder.max_tokens - HEADER_MAX_TOKENS - 1
    assert chunker.chunk_size == room
    assert chunker.chunk_overlap == 300 * room // 512


def test_deleting_a_session_frees_it(store: SessionStore, attention_session: Session) -> None:
    assert store.budget.used == attention_session.chunk_count > 0
    store.delete(attention_session.id)
    assert len(store) == 0 and store.budget.used == 0
    assert len(attention_session.index) == 0 and not attention_session.chunks


def test_a_reranker_url_reorders_the_fused_candidates(
    settings: Settings, embedder: Any, attention_session: Session
) -> None:
    from rag.retrieval import make_retriever
    from serving.fakes import FakeVLLMServer

    def p100_first(query: str, document: str) -> float:
        return 1.0 if "P100" in document else 0.0

    with FakeVLLMServer(score=p100_first) as server:
        retriever = make_retriever(
            settings.model_copy(update={"reranker_url": server.url}), embedder
        )
        hits = retriever.search(attention_session, "Which hardware was used?", top_k=5)
    assert "P100" in hits[0].chunk.text
    assert len(server.requests) == 1 and server.requests[0]["query"] == "Which hardware was used?"
