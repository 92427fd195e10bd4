"""Question -> the best passages of one session: dense, optionally fused with BM25 and reranked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.settings import Settings
from ingest.models import Chunk
from rag.embedding import Embedder
from rag.lexical import reciprocal_rank_fusion
from rag.sessions import Session

# Fetch extra candidates so that collapsing near-duplicates still leaves top_k.
CANDIDATE_FACTOR = 3


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float  # cosine similarity to the question, whatever ranked it


class Reranker(Protocol):
    def scores(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """Relevance of each passage to the query; higher is better."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers cross-encoder from a local folder (e.g. ms-marco-MiniLM on a GPU)."""

    def __init__(self, model: str, *, device: str) -> None:
        from sentence_transformers import CrossEncoder

        self._model = CrossEncoder(model, device=device)

    def scores(self, query: str, passages: Sequence[str]) -> np.ndarray:
        pairs = [(query, passage) for passage in passages]
        return np.asarray(self._model.predict(pairs, show_progress_bar=False), dtype=np.float32)


class Retriever:
    def __init__(
        self,
        embedder: Embedder,
        *,
        dedup_threshold: float,
        hybrid: bool = False,
        reranker: Reranker | None = None,
    ) -> None:
        self._embedder = embedder
        self._dedup_threshold = dedup_threshold
        self.hybrid = hybrid
        self._reranker = reranker

    def search(
        self,
        session: Session,
        query: str,
        *,
        top_k: int,
        score_threshold: float | None = None,
    ) -> list[Hit]:
        query_vector = self._embedder.embed([query])
        with session.reading():
            if not session.chunks:
                return []
            fetch = min(top_k * CANDIDATE_FACTOR, session.chunk_count)
            _, ids = session.index.search(query_vector, fetch)
            ranked = [int(i) for i in ids[0] if i >= 0]
            if self.hybrid:
                lexical = [i for i, _ in session.lexical_index().search(query, fetch)]
                ranked = reciprocal_rank_fusion([ranked, lexical])[:fetch]
            vectors = session.index.vectors(np.array(ranked, dtype=np.int64))
            cosines = vectors @ query_vector[0] if len(ranked) else np.zeros(0, np.float32)
            if self._reranker is not None and ranked:
                texts = [session.chunks[i].text for i in ranked]
                order = np.argsort(-self._reranker.scores(query, texts), kind="stable")
                ranked = [ranked[o] for o in order]
                vectors, cosines = vectors[order], cosines[order]
            keep = self._select(vectors, cosines, top_k, score_threshold)
            return [Hit(chunk=session.chunks[ranked[p]], score=float(cosines[p])) for p in keep]

    def _select(
        self,
        vectors: np.ndarray,
        cosines: np.ndarray,
        top_k: int,
        score_threshold: float | None,
    ) -> list[int]:
        """Positions of the first top_k candidates above the threshold that are not
        nearly the same passage as a better one."""
        kept: list[int] = []
        for position in range(len(cosines)):
            if len(kept) == top_k:
                break
            if score_threshold is not None and cosines[position] < score_threshold:
                continue
            if kept and float((vectors[kept] @ vectors[position]).max()) >= self._dedup_threshold:
                continue
            kept.append(position)
        return kept


def make_retriever(settings: Settings, embedder: Embedder) -> Retriever:
    reranker = (
        CrossEncoderReranker(settings.reranker_model, device=embedder.device)
        if settings.reranker_model
        else None
    )
    return Retriever(
        embedder,
        dedup_threshold=settings.dedup_threshold,
        hybrid=settings.hybrid,
        reranker=reranker,
    )
