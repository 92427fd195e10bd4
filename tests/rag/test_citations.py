from ingest.models import Chunk
from rag.citations import cited_numbers, parse_citations
from rag.retrieval import Hit


def hits(n: int) -> list[Hit]:
    return [Hit(Chunk("d", "f.pdf", f"passage {i}", i, i, 0, 9), 0.5) for i in range(1, n + 1)]


def test_cited_numbers_in_order_of_first_use() -> None:
    assert cited_numbers("A [2]. B [1][2]. C [3, 1]. D [4-5].") == [2, 1, 3, 4, 5]
    assert cited_numbers("No citations here, 2024 [a].") == []


def test_huge_ranges_are_not_expanded() -> None:
    assert cited_numbers("[1-100000]") == [1, 100000]


def test_citations_to_missing_passages_are_dropped_and_reported() -> None:
    valid, invalid = parse_citations("It was 8 GPUs [2]. Also [7].", hits(3))
    assert [(c.n, c.hit.chunk.page) for c in valid] == [(2, 2)]
    assert invalid == [7]
