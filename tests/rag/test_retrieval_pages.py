"""Page diversity, neighbour merging and the HTTP reranker (against a fake server on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from ingest.models import Chunk
from rag.retrieval import (
    Hit,
    HttpReranker,
    RerankerUnavailable,
    merge_adjacent,
    spread_over_pages,
)
from serving.fakes import FakeVLLMServer

PAGE = "alpha beta gamma delta epsilon zeta eta theta"


def chunk(start: int, end: int, page: int = 3, document: str = "d1") -> Chunk:
    return Chunk(document, "f.pdf", PAGE[start:end], page, page, start, end)


def hit(c: Chunk, score: float = 0.5) -> Hit:
    return Hit(c, score)


def test_overlapping_neighbours_merge_into_one_exact_passage() -> None:
    merged = merge_adjacent(chunk(0, 22), chunk(11, 35))
    assert merged is not None
    assert merged.text == PAGE[0:35]
    assert (merged.page, merged.page_end, merged.char_start, merged.char_end) == (3, 3, 0, 35)


def test_chunks_with_a_gap_or_of_other_documents_do_not_merge() -> None:
    assert merge_adjacent(chunk(0, 10), chunk(17, 35)) is None
    assert merge_adjacent(chunk(0, 22), chunk(11, 35, document="d2")) is None


def test_a_chunk_running_onto_the_next_page_merges_with_the_chunk_there() -> None:
    first = Chunk("d1", "f.pdf", "end of four\n\nstart of", 4, 5, 20, 8)
    second = Chunk("d1", "f.pdf", "start of five", 5, 5, 0, 13)
    merged = merge_adjacent(first, second)
    assert merged is not None
    assert merged.text == "end of four\n\nstart of five"
    assert merged.locate(len("end of four\n\nstart of f")) == (5, 10)


def test_no_page_holds_two_slots_while_other_pages_are_left() -> None:
    on_three = [(1, hit(chunk(0, 10))), (7, hit(chunk(23, 35)))]
    elsewhere = [(20, hit(chunk(0, 5, page=9))), (30, hit(chunk(0, 5, page=12)))]
    chosen = spread_over_pages([*on_three, *elsewhere], top_k=3, paginated={"d1"})
    assert [(h.chunk.page, h.chunk.text) for h in chosen] == [
        (3, PAGE[0:10]),
        (9, PAGE[0:5]),
        (12, PAGE[0:5]),
    ]


def test_a_page_gets_a_second_slot_when_nothing_else_is_left() -> None:
    chosen = spread_over_pages(
        [(1, hit(chunk(0, 10))), (7, hit(chunk(23, 35)))], top_k=5, paginated={"d1"}
    )
    assert [h.chunk.text for h in chosen] == [PAGE[0:10], PAGE[23:35]]


def test_the_next_chunk_of_a_chosen_page_is_merged_into_its_slot() -> None:
    candidates = [(4, hit(chunk(0, 22), 0.9)), (5, hit(chunk(11, 35), 0.7))]
    chosen = spread_over_pages(
        [*candidates, (9, hit(chunk(0, 5, page=8)))], top_k=2, paginated={"d1"}
    )
    assert [h.chunk.text for h in chosen] == [PAGE[0:35], PAGE[0:5]]
    assert chosen[0].score == 0.9


# --- the reranker server's API -------------------------------------------------------


@pytest.fixture()
def rerank_server() -> Iterator[FakeVLLMServer]:
    with FakeVLLMServer() as server:
        yield server


def test_http_reranker_sends_query_documents_and_model(rerank_server: FakeVLLMServer) -> None:
    """The fake scores a document by how often it says 'good'."""
    reranker = HttpReranker(rerank_server.url, model="bge-reranker", timeout_s=5)
    scores = reranker.scores("q", ["bad", "good good", "good"])
    assert scores.tolist() == [0.0, 2.0, 1.0]
    assert rerank_server.requests == [
        {
            "path": "/v1/rerank",
            "query": "q",
            "documents": ["bad", "good good", "good"],
            "model": "bge-reranker",
        }
    ]


def test_http_reranker_accepts_a_url_ending_in_v1(rerank_server: FakeVLLMServer) -> None:
    HttpReranker(rerank_server.url + "/v1/", model=None, timeout_s=5).scores("q", ["x"])
    assert rerank_server.requests[0]["path"] == "/v1/rerank"
    assert "model" not in rerank_server.requests[0]


def test_http_reranker_failure_is_reported_as_unavailable() -> None:
    with FakeVLLMServer(status=500) as server:
        reranker = HttpReranker(server.url, model=None, timeout_s=5)
        with pytest.raises(RerankerUnavailable):
            reranker.scores("q", ["x"])


def test_http_reranker_scores_are_an_array() -> None:
    with FakeVLLMServer() as server:
        scores = HttpReranker(server.url, model=None, timeout_s=5).scores("q", ["good"])
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float32


def test_an_unpaginated_text_keeps_its_chunks_apart_and_in_order() -> None:
    candidates = [(4, hit(chunk(0, 22))), (5, hit(chunk(11, 35))), (9, hit(chunk(0, 5, page=8)))]
    chosen = spread_over_pages(candidates, top_k=2, paginated=set())
    assert [h.chunk.text for h in chosen] == [PAGE[0:22], PAGE[11:35]]
