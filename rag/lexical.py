"""BM25 over a session's passages (bm25s), for hybrid retrieval."""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np

STOPWORDS = "en"


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    tokens: list[list[str]] = bm25s.tokenize(
        list(texts), stopwords=STOPWORDS, return_ids=False, show_progress=False
    )
    return tokens


class LexicalIndex:
    """An immutable BM25 index of passages keyed by their vector ids.

    BM25's IDF depends on the whole corpus, so a change means a new index; building
    one is a sparse-matrix pass, milliseconds for thousands of passages.
    """

    def __init__(self, ids: Sequence[int], texts: Sequence[str]) -> None:
        self._ids = np.asarray(ids, dtype=np.int64)
        self._bm25 = bm25s.BM25()
        self._bm25.index(tokenize(texts), show_progress=False)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Best (vector id, BM25 score) pairs; passages sharing no term are left out."""
        k = min(k, len(self._ids))
        if k == 0:
            return []
        rows, scores = self._bm25.retrieve(tokenize([query]), k=k, show_progress=False)
        return [
            (int(self._ids[row]), float(score))
            for row, score in zip(rows[0], scores[0], strict=True)
            if score > 0
        ]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = 60) -> list[int]:
    """Fuse ranked id lists: score(id) = sum of 1 / (k + rank), best first (Cormack et al. 2009)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda item: scores[item], reverse=True)
