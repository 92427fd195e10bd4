"""Answer-format instructions are taken out of the text retrieval searches with."""

from __future__ import annotations

from rag.query import search_query


def test_units_and_rounding_instructions_are_dropped() -> None:
    question = (
        "What is the FY2019 - FY2020 total revenue growth rate for Block? "
        "Answer in units of percents and round to one decimal place."
    )
    assert (
        search_query(question) == "What is the FY2019 - FY2020 total revenue growth rate for Block?"
    )


def test_an_inline_unit_hint_is_dropped_and_a_named_statement_kept() -> None:
    question = (
        "What is the FY2018 capital expenditure amount (in USD millions) for 3M? Give a "
        "response to the question by relying on the details shown in the cash flow statement."
    )
    assert search_query(question) == (
        "What is the FY2018 capital expenditure amount for 3M? cash flow statement"
    )


def test_persona_and_fallback_instructions_are_dropped() -> None:
    question = (
        "Assume that you are a public equities analyst. Does Adobe have an improving "
        "operating margin as of FY2022? If operating margin is not a useful metric for a "
        "company like this, then state that and explain why."
    )
    assert search_query(question) == "Does Adobe have an improving operating margin as of FY2022?"


def test_an_instruction_before_a_colon_keeps_its_places_and_the_question() -> None:
    question = (
        "Using the cash flow statement, answer the following question to the best of your "
        "abilities: how much cash did Block generate from operating activities in FY2020?"
    )
    assert search_query(question) == (
        "cash flow statement how much cash did Block generate from operating activities in FY2020?"
    )


def test_a_plain_question_is_searched_as_asked() -> None:
    question = "What is the incubation period of COVID-19 in children?"
    assert search_query(question) == question


def test_a_question_made_only_of_instructions_is_searched_whole() -> None:
    question = "Round your answer to two decimal places."
    assert search_query(question) == question


def test_short_fiscal_years_and_quarters_are_spelled_out() -> None:
    assert search_query("Did Pfizer grow its PPNE between FY20 and FY21?") == (
        "Did Pfizer grow its PPNE between FY2020 and FY2021?"
    )
    assert search_query("Which region dropped most in Q2'2023?") == (
        "Which region dropped most in Q2 2023?"
    )
