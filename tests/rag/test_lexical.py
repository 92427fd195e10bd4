"""BM25 over a session's passages (bm25s) and the reciprocal rank fusion of rankings."""

from __future__ import annotations

import pytest

from rag.lexical import LexicalIndex, reciprocal_rank_fusion

PASSAGES = {
    10: "the cat sat on the mat",
    20: "dogs chase cats in the park",
    30: "a cat and a cat and another cat",
    40: "stock prices fell sharply",
}


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex(list(PASSAGES), list(PASSAGES.values()))


def test_bm25_ranks_by_term_frequency_and_returns_the_vector_ids(index: LexicalIndex) -> None:
    hits = index.search("cat", 10)
    assert [i for i, _ in hits] == [30, 10]  # three "cat" beat one; "cats" is another word
    assert hits[0][1] > hits[1][1] > 0


def test_a_rarer_term_outranks_a_common_one(index: LexicalIndex) -> None:
    # "prices" is in one passage, "cat" in two: its IDF is higher.
    assert [i for i, _ in index.search("cat prices", 2)] == [40, 30]


@pytest.mark.parametrize("query", ["zebra", "the", ""])
def test_passages_sharing_no_term_are_left_out(index: LexicalIndex, query: str) -> None:
    assert index.search(query, 3) == []  # stopwords alone match nothing


def test_rank_fusion_sums_reciprocal_ranks() -> None:
    # 1: 1/61 + 1/62, 3: 1/63 + 1/61, 2: 1/62, 4: 1/63 (k = 60)
    assert reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]]) == [1, 3, 2, 4]


def test_rank_fusion_favours_agreement_over_one_first_place() -> None:
    # 7 and 9 are first in one ranking each (1/61); 8 is second in both (2/62).
    assert reciprocal_rank_fusion([[7, 8], [9, 8]]) == [8, 7, 9]


def test_rank_fusion_of_one_ranking_keeps_its_order() -> None:
    assert reciprocal_rank_fusion([[5, 3, 9]]) == [5, 3, 9]
    assert reciprocal_rank_fusion([]) == []


def test_a_lower_k1_narrows_the_lead_of_a_repeated_word() -> None:
    def lead(k1: float) -> float:
        (_, repeated), (_, once) = LexicalIndex(
            list(PASSAGES), list(PASSAGES.values()), k1=k1
        ).search("cat", 2)
        return repeated / once

    assert lead(0.5) < lead(1.5)
