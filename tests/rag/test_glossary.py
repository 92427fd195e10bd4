"""Financial measures are searched with the statement lines that compute them."""

from __future__ import annotations

from rag.glossary import measure_terms, with_measure_terms


def test_capex_is_searched_as_the_cash_flow_line_that_reports_it() -> None:
    assert with_measure_terms("What was 3M's FY2018 capex?") == (
        "What was 3M's FY2018 capex? purchases of property plant and equipment investing "
        "activities consolidated statements of cash flows"
    )


def test_a_question_naming_no_measure_is_searched_as_it_is() -> None:
    question = "Who are the primary customers of Boeing as of FY2022?"
    assert with_measure_terms(question) == question


def test_a_measure_inside_a_longer_word_is_not_a_measure() -> None:
    # "ebit" in "ebitda", "eps" in "steps", "roe" in "heroes", "dso" in "Hudson"
    assert measure_terms("EBITDA steps of heroes in Hudson") == [
        "operating income depreciation and amortization "
        "consolidated statements of operations income earnings"
    ]


def test_each_measure_adds_its_words_once() -> None:
    assert with_measure_terms("gross margin and gross profit") == (
        "gross margin and gross profit gross profit cost of sales revenue "
        "consolidated statements of operations income earnings"
    )
