"""Question -> the best passages of one session: dense, optionally fused with BM25 and reranked."""

from __future__ import annotations

import logging
from collections.abc import Sequence, Set
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from core.settings import Settings
from ingest.models import Chunk
from rag.embedding import Embedder
from rag.glossary import with_measure_terms
from rag.lexical import DEFAULT_ANALYZER, DEFAULT_K1, reciprocal_rank_fusion
from rag.query import search_query
from rag.sessions import Session

log = logging.getLogger(__name__)

# Fetch extra candidates so that collapsing near-duplicates still leaves top_k.
CANDIDATE_FACTOR = 3
# A merged passage spans at most two pages, so Chunk.locate still finds every offset.
MAX_MERGED_PAGE_SPAN = 1


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


class RerankerUnavailable(Exception):
    """The rerank server did not answer usably; the fused order stands."""


class HttpReranker:
    """A vLLM server's rerank API (``POST /v1/rerank``, Jina/Cohere style) on a cross-encoder."""

    def __init__(self, url: str, *, model: str | None, timeout_s: float) -> None:
        import httpx

        self._endpoint = url.rstrip("/").removesuffix("/v1") + "/v1/rerank"
        self._model = model
        self._client = httpx.Client(timeout=timeout_s)

    def scores(self, query: str, passages: Sequence[str]) -> np.ndarray:
        import httpx

        body: dict[str, object] = {"query": query, "documents": list(passages)}
        if self._model:
            body["model"] = self._model
        try:
            response = self._client.post(self._endpoint, json=body)
            response.raise_for_status()
            results = response.json()["results"]
            scores = np.full(len(passages), -np.inf, dtype=np.float32)
            for result in results:
                scores[int(result["index"])] = float(result["relevance_score"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise RerankerUnavailable(f"{self._endpoint}: {type(exc).__name__}") from None
        return scores


class Retriever:
    def __init__(
        self,
        embedder: Embedder,
        *,
        dedup_threshold: float,
        hybrid: bool = False,
        reranker: Reranker | None = None,
        lexical_weight: float = 1.0,
        lexical_k1: float = DEFAULT_K1,
        candidates: int = 0,
        query_cleaning: bool = False,
        measure_terms: bool = False,
        page_diversity: bool = False,
        lexical_analyzer: str = DEFAULT_ANALYZER,
    ) -> None:
        self._embedder = embedder
        self._dedup_threshold = dedup_threshold
        self.hybrid = hybrid
        self._reranker = reranker
        self._lexical_weight = lexical_weight
        self._lexical_k1 = lexical_k1
        self._candidates = candidates
        self._query_cleaning = query_cleaning
        self._measure_terms = measure_terms
        self._page_diversity = page_diversity
        self.lexical_analyzer = lexical_analyzer  # a name in rag.lexical.ANALYZERS

    def search(
        self,
        session: Session,
        query: str,
        *,
        top_k: int,
        score_threshold: float | None = None,
    ) -> list[Hit]:
        text = search_query(query) if self._query_cleaning else query
        if self._measure_terms:
            text = with_measure_terms(text)
        query_vector = self._embedder.embed([text])
        with session.reading():
            if not session.chunks:
                return []
            fetch = min(self._candidates or top_k * CANDIDATE_FACTOR, session.chunk_count)
            _, ids = session.index.search(query_vector, fetch)
            ranked = [int(i) for i in ids[0] if i >= 0]
            if self.hybrid:
                bm25 = session.lexical_index(self.lexical_analyzer, self._lexical_k1)
                lexical = bm25.search(text, fetch)
                ranked = reciprocal_rank_fusion(
                    [ranked, [i for i, _ in lexical]], weights=[1.0, self._lexical_weight]
                )[:fetch]
            vectors = session.index.vectors(np.array(ranked, dtype=np.int64))
            cosines = vectors @ query_vector[0] if len(ranked) else np.zeros(0, np.float32)
            if self._reranker is not None and ranked:
                order = self._rerank(text, [session.chunks[i] for i in ranked])
                ranked = [ranked[o] for o in order]
                vectors, cosines = vectors[order], cosines[order]
            chunks = [session.chunks[i] for i in ranked]
            if not self._page_diversity:
                keep = self._select(chunks, vectors, cosines, top_k, score_threshold)
                return [Hit(chunks[p], float(cosines[p])) for p in keep]
            keep = self._select(chunks, vectors, cosines, len(ranked), score_threshold)
            candidates = [(ranked[p], Hit(chunks[p], float(cosines[p]))) for p in keep]
            paginated = {d.document_id for d in session.documents.values() if d.pages > 1}
            return spread_over_pages(candidates, top_k, paginated)

    def _rerank(self, query: str, chunks: Sequence[Chunk]) -> np.ndarray:
        """Candidate positions, best first by the reranker (the fused order if it fails)."""
        assert self._reranker is not None
        try:
            scores = self._reranker.scores(query, [chunk.indexed_text for chunk in chunks])
        except RerankerUnavailable as exc:
            log.warning("reranker unavailable (%s); using the fused order", exc)
            return np.arange(len(chunks))
        return np.argsort(-scores, kind="stable")

    def _select(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        cosines: np.ndarray,
        top_k: int,
        score_threshold: float | None,
    ) -> list[int]:
        """Positions of the first top_k candidates above the threshold that do not repeat
        a better one: nearly the same passage of the same document, or the same text in
        any document (a file uploaded twice). Near-twins in different documents both stay:
        two versions of a report may differ in the one number that was asked about."""
        kept: list[int] = []
        texts: set[str] = set()
        for position, chunk in enumerate(chunks):
            if len(kept) == top_k:
                break
            if score_threshold is not None and cosines[position] < score_threshold:
                continue
            text = " ".join(chunk.text.split())
            same_document = [k for k in kept if chunks[k].document_id == chunk.document_id]
            if text in texts or (
                same_document
                and float((vectors[same_document] @ vectors[position]).max())
                >= self._dedup_threshold
            ):
                continue
            kept.append(position)
            texts.add(text)
        return kept


@dataclass
class _Slot:
    hit: Hit
    first_id: int  # vector ids of the chunks merged into it (consecutive in one document)
    last_id: int

    def pages(self) -> set[tuple[str, int]]:
        return _pages(self.hit.chunk)


def _pages(chunk: Chunk) -> set[tuple[str, int]]:
    return {(chunk.document_id, p) for p in range(chunk.page, chunk.page_end + 1)}


def spread_over_pages(
    candidates: Sequence[tuple[int, Hit]], top_k: int, paginated: Set[str]
) -> list[Hit]:
    """The best ``top_k`` (vector id, hit) candidates such that no page holds two slots.

    A candidate whose page already has a slot is merged into that slot's passage when it
    is the chunk right before or after it (consecutive vector ids of one document that
    overlap on one page); otherwise it waits and fills the slots left over once every
    other page has had its turn. Five results are then five places to look.
    Only documents in ``paginated`` (more than one page) are spread: the one "page" of
    an unpaginated text is the whole document, and its chunks are its places.
    """
    slots: list[_Slot] = []
    waiting: list[tuple[int, Hit]] = []
    for vector_id, hit in candidates:
        if len(slots) == top_k:
            break
        pages = _pages(hit.chunk)
        sharing = [
            slot for slot in slots if hit.chunk.document_id in paginated and slot.pages() & pages
        ]
        if not sharing:
            slots.append(_Slot(hit, vector_id, vector_id))
            continue
        if not any(_merge_into(slot, vector_id, hit) for slot in sharing):
            waiting.append((vector_id, hit))
    for vector_id, hit in waiting[: top_k - len(slots)]:
        slots.append(_Slot(hit, vector_id, vector_id))
    return [slot.hit for slot in slots]


def _merge_into(slot: _Slot, vector_id: int, hit: Hit) -> bool:
    """Grow ``slot`` by its neighbouring chunk ``hit``; False when they do not join."""
    if vector_id == slot.last_id + 1:
        merged = merge_adjacent(slot.hit.chunk, hit.chunk)
        if merged is not None:
            slot.last_id = vector_id
    elif vector_id == slot.first_id - 1:
        merged = merge_adjacent(hit.chunk, slot.hit.chunk)
        if merged is not None:
            slot.first_id = vector_id
    else:
        return False
    if merged is None:
        return False
    slot.hit = Hit(merged, max(slot.hit.score, hit.score))
    return True


def merge_adjacent(first: Chunk, second: Chunk) -> Chunk | None:
    """One passage made of ``first`` and the chunk after it, when they overlap or touch
    on one page and span at most two pages (so Chunk.locate stays exact)."""
    if (
        first.document_id != second.document_id
        or first.page_end != second.page
        or second.char_start > first.char_end
        or second.char_start < (first.char_start if first.page == first.page_end else 0)
        or second.page_end - first.page > MAX_MERGED_PAGE_SPAN
    ):
        return None
    overlap = first.char_end - second.char_start
    if overlap > len(second.text):
        return None  # second lies inside first: nothing to add
    return replace(
        first,
        text=first.text + second.text[overlap:],
        page_end=second.page_end,
        char_end=second.char_end,
    )


def make_retriever(settings: Settings, embedder: Embedder) -> Retriever:
    reranker: Reranker | None = None
    if settings.reranker_url:
        reranker = HttpReranker(
            settings.reranker_url,
            model=settings.reranker_served_model,
            timeout_s=settings.reranker_timeout_s,
        )
    elif settings.reranker_model:
        reranker = CrossEncoderReranker(settings.reranker_model, device=embedder.device)
    return Retriever(
        embedder,
        dedup_threshold=settings.dedup_threshold,
        hybrid=settings.hybrid,
        reranker=reranker,
        lexical_weight=settings.lexical_weight,
        lexical_k1=settings.lexical_k1,
        candidates=settings.retrieval_candidates,
        query_cleaning=settings.query_cleaning,
        measure_terms=settings.measure_terms,
        page_diversity=settings.page_diversity,
    )
