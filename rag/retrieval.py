"""Question -> the best passages of one session."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.models import Chunk
from rag.embedding import Embedder
from rag.sessions import Session

# Fetch extra candidates so that collapsing near-duplicates still leaves top_k.
CANDIDATE_FACTOR = 3


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float  # cosine similarity to the question


class Retriever:
    def __init__(self, embedder: Embedder, *, dedup_threshold: float) -> None:
        self._embedder = embedder
        self._dedup_threshold = dedup_threshold

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
            scores, ids = session.index.search(query_vector, fetch)
            candidates = [
                (int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0
            ]
            if score_threshold is not None:
                candidates = [(i, s) for i, s in candidates if s >= score_threshold]
            kept = self._collapse_near_duplicates(session, candidates, top_k)
            return [Hit(chunk=session.chunks[i], score=s) for i, s in kept]

    def _collapse_near_duplicates(
        self, session: Session, candidates: list[tuple[int, float]], top_k: int
    ) -> list[tuple[int, float]]:
        """Keep a hit only if it is not nearly the same passage as a better one."""
        if not candidates:
            return []
        vectors = session.index.vectors(np.array([i for i, _ in candidates], dtype=np.int64))
        kept: list[int] = []
        for position in range(len(candidates)):
            if len(kept) == top_k:
                break
            if kept:
                similarity = vectors[kept] @ vectors[position]
                if float(similarity.max()) >= self._dedup_threshold:
                    continue
            kept.append(position)
        return [candidates[p] for p in kept]
