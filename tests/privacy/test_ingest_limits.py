"""Documents that cannot fit are refused before the costly steps (chunking, embedding).

A 20 MB text costs minutes to embed on a CPU; finding out only afterwards that it does
not fit the session would let one upload occupy the server for nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from core.errors import CapacityError, DocumentTooComplexError
from core.settings import load_settings
from rag.index import make_index
from rag.pipeline import Ingestor
from rag.sessions import SessionStore


class CountingEmbedder:
    """The fake embedder, counting what it is asked to embed."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name
        self.device = inner.device
        self.dtype = inner.dtype
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self.count_tokens = inner.count_tokens  # picklable: chunking runs in a worker
        self.embedded = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += len(texts)
        vectors: np.ndarray = self._inner.embed(texts)
        return vectors


def words(n: int) -> bytes:
    vocabulary = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    return " ".join(vocabulary[i % len(vocabulary)] for i in range(n)).encode()


@pytest.fixture()
def counting(fake_embedder: Any) -> CountingEmbedder:
    return CountingEmbedder(fake_embedder)


def make_store(counting: CountingEmbedder, per_session: int, total: int) -> SessionStore:
    return SessionStore(
        index_factory=lambda: make_index(counting.dimension, "cpu"),
        ttl_s=600,
        max_sessions=10,
        max_chunks_per_session=per_session,
        max_total_chunks=total,
        max_bytes_per_session=200 * 1024**2,
        max_total_bytes=400 * 1024**2,
    )


def test_a_document_bigger_than_a_session_is_refused_before_chunking(
    counting: CountingEmbedder,
) -> None:
    settings = load_settings(max_chunks_per_session=20, max_total_chunks=100)
    ingestor = Ingestor(settings, counting)
    session = make_store(counting, 20, 100).create()
    with pytest.raises(DocumentTooComplexError) as caught:
        # 100,000 words are at least 100,000 tokens: 500 chunks of 200, far over 20.
        ingestor.ingest(session, words(100_000), "huge.txt")
    assert "'huge.txt'" in caught.value.message
    assert "PGPT_MAX_CHUNKS_PER_SESSION" in caught.value.message
    assert counting.embedded == 0


def test_a_full_session_refuses_before_embedding(counting: CountingEmbedder) -> None:
    settings = load_settings(max_chunks_per_session=20, max_total_chunks=100)
    ingestor = Ingestor(settings, counting)
    session = make_store(counting, 20, 100).create()
    ingestor.ingest(session, words(2_000), "first.txt")  # over half of the 20 allowed
    embedded = counting.embedded
    with pytest.raises(CapacityError) as caught:
        ingestor.ingest(session, words(2_000), "second.txt")
    assert "'second.txt'" in caught.value.message
    assert counting.embedded == embedded
    assert [d.filename for d in session.documents.values()] == ["first.txt"]


def test_a_full_server_refuses_before_embedding(counting: CountingEmbedder) -> None:
    settings = load_settings(max_chunks_per_session=20, max_total_chunks=20)
    ingestor = Ingestor(settings, counting)
    store = make_store(counting, 20, 20)
    ingestor.ingest(store.create(), words(2_000), "first.txt")
    embedded = counting.embedded
    with pytest.raises(CapacityError, match="PGPT_MAX_TOTAL_CHUNKS"):
        ingestor.ingest(store.create(), words(2_000), "second.txt")
    assert counting.embedded == embedded
