"""BM25 terms that keep periods, form names and numbers searchable."""

from __future__ import annotations

from rag.lexical import LexicalIndex, reciprocal_rank_fusion, tokenize_terms, tokenize_words


def test_fiscal_years_match_whole_and_by_their_year() -> None:
    assert tokenize_terms(["FY2022"]) == [["fy2022", "fy", "2022"]]


def test_form_names_quarters_and_thousands_separators() -> None:
    terms = tokenize_terms(["the 10-K for Q2 shows 1,577 of PP&E"])[0]
    assert terms == ["10-k", "10", "q2", "shows", "1577", "pp&e", "pp"]


def test_the_default_word_tokenizer_loses_them() -> None:
    assert tokenize_words(["FY2022 10-K Q2"]) == [["fy2022", "10", "q2"]]


def test_a_question_about_fy2018_finds_the_passage_about_2018() -> None:
    index = LexicalIndex(
        [10, 11, 12],
        [
            "Purchases of property, plant and equipment 2018 1,577",
            "Revenue by segment in 2017",
            "Risk factors and legal proceedings",
        ],
    )
    assert index.search("FY2018 capital expenditure property plant", 3)[0][0] == 10


def test_a_query_without_any_term_finds_nothing() -> None:
    assert LexicalIndex([1], ["some text"]).search("the of and", 5) == []


def test_weighted_fusion_prefers_the_heavier_ranking() -> None:
    assert reciprocal_rank_fusion([[1, 2], [2, 1]]) in ([1, 2], [2, 1])
    assert reciprocal_rank_fusion([[1, 2], [2, 1]], weights=[1.0, 2.0]) == [2, 1]
    assert reciprocal_rank_fusion([[1, 2], [2, 1]], weights=[2.0, 1.0]) == [1, 2]
