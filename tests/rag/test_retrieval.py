"""The Retriever's own rules on a hand-made session: near-duplicate collapse, the score
threshold, the reranker path and hybrid fusion with BM25.

Vectors are chosen by hand (a scripted embedder) so each rule has one exact outcome;
tests/rag/test_pipeline.py runs the same Retriever with the real model on a real PDF.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from ingest.models import Chunk, Page, SourceDocument
from rag.index import FaissCpuIndex
from rag.retrieval import Retriever
from rag.sessions import DocumentInfo, Session, SessionStore


def unit(*values: float) -> list[float]:
    vector = np.array(values, dtype=np.float32)
    return (vector / np.linalg.norm(vector)).tolist()


# text -> vector; the query vector is QUERY, so each passage's cosine is its first value.
PASSAGES = {
    "alpha passage about training": unit(1, 0, 0, 0),  # cosine 1.0
    "alpha passage about training, copied": unit(1, 0.05, 0, 0),  # 0.999, a near-duplicate
    "beta passage": unit(0.8, 0.6, 0, 0),  # 0.8
    "gamma passage": unit(0.1, 1, 0, 0),  # 0.0995
    "delta passage": unit(0, 0, 1, 0),  # 0.0
}
QUERY = unit(1, 0, 0, 0)
ALPHA, COPY, BETA, GAMMA, DELTA = PASSAGES


class ScriptedEmbedder:
    """Known passages get their chosen vectors; any other text (a question) gets QUERY."""

    name, device, dtype, dimension, max_tokens = "scripted", "cpu", "float32", 4, 256

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([PASSAGES.get(t, QUERY) for t in texts], dtype=np.float32)


class ScriptedReranker:
    """Ranks passages in a given order of texts."""

    def __init__(self, *order: str) -> None:
        self.order = order

    def scores(self, query: str, passages: Sequence[str]) -> np.ndarray:
        return np.array([-self.order.index(p) for p in passages], dtype=np.float32)


def make_session(texts: Sequence[str], *more_documents: Sequence[str]) -> Session:
    """A session holding one document whose passages are ``texts`` (and one more document
    per ``more_documents``), with their vectors."""
    store = SessionStore(
        index_factory=lambda: FaissCpuIndex(4),
        ttl_s=60,
        max_sessions=1,
        max_chunks_per_session=10,
        max_total_chunks=10,
        max_bytes_per_session=1024**2,
        max_total_bytes=1024**2,
    )
    session = store.create()
    for number, passages in enumerate([texts, *more_documents]):
        if not passages:
            continue
        document_id, filename = f"d{number}", f"notes{number}.txt"
        chunks = [Chunk(document_id, filename, t, 1, 1, 0, len(t)) for t in passages]
        text = "\n".join(passages)
        source = SourceDocument(text.encode(), "text/plain", (Page(1, text),))
        info = DocumentInfo(
            document_id,
            filename,
            "text/plain",
            1,
            len(chunks),
            len(source.data),
            source.memory_bytes,
        )
        session.add_document(info, chunks, ScriptedEmbedder().embed(passages), source)
    return session


@pytest.fixture()
def session() -> Session:
    return make_session(list(PASSAGES))


def search(
    session: Session,
    query: str = "what about training?",
    *,
    top_k: int,
    score_threshold: float | None = None,
    **options: object,
) -> list[tuple[str, float]]:
    options.setdefault("dedup_threshold", 0.95)
    retriever = Retriever(ScriptedEmbedder(), **options)  # type: ignore[arg-type]
    hits = retriever.search(session, query, top_k=top_k, score_threshold=score_threshold)
    return [(hit.chunk.text, round(hit.score, 3)) for hit in hits]


def test_a_near_duplicate_of_a_better_hit_is_collapsed(session: Session) -> None:
    assert search(session, top_k=3) == [(ALPHA, 1.0), (BETA, 0.8), (GAMMA, 0.1)]


def test_a_dedup_threshold_of_one_keeps_the_copy() -> None:
    # 0.999 is below 1.0: only identical vectors collapse.
    session = make_session([ALPHA, COPY])
    assert search(session, top_k=2, dedup_threshold=1.0) == [(ALPHA, 1.0), (COPY, 0.999)]


def test_a_near_twin_in_another_document_is_kept() -> None:
    # Two versions of a text may differ in the one detail asked about: both are shown.
    session = make_session([ALPHA], [COPY])
    assert search(session, top_k=2) == [(ALPHA, 1.0), (COPY, 0.999)]


def test_the_same_text_in_another_document_is_collapsed() -> None:
    session = make_session([ALPHA, BETA], [ALPHA])  # the same file uploaded twice
    assert search(session, top_k=2) == [(ALPHA, 1.0), (BETA, 0.8)]


def test_hits_below_the_score_threshold_are_dropped(session: Session) -> None:
    assert search(session, top_k=5, score_threshold=0.5) == [(ALPHA, 1.0), (BETA, 0.8)]
    assert search(session, top_k=5, score_threshold=1.1) == []


def test_the_reranker_orders_the_candidates_and_scores_stay_cosines(session: Session) -> None:
    reranker = ScriptedReranker(GAMMA, BETA, ALPHA, COPY, DELTA)
    assert search(session, top_k=2, reranker=reranker) == [(GAMMA, 0.1), (BETA, 0.8)]


def test_after_reranking_the_better_ranked_copy_is_the_one_kept(session: Session) -> None:
    reranker = ScriptedReranker(COPY, ALPHA, BETA, GAMMA, DELTA)
    assert search(session, top_k=2, reranker=reranker) == [(COPY, 0.999), (BETA, 0.8)]


def test_hybrid_fusion_lifts_a_passage_that_matches_the_words(session: Session) -> None:
    # Dense alone ranks gamma fourth; BM25 ranks it first for "gamma", and fusion puts it on top.
    assert search(session, "gamma", top_k=2) == [(ALPHA, 1.0), (BETA, 0.8)]
    assert search(session, "gamma", top_k=2, hybrid=True) == [(GAMMA, 0.1), (ALPHA, 1.0)]


def test_an_empty_session_gives_no_hits() -> None:
    assert search(make_session([]), top_k=3, hybrid=True) == []
