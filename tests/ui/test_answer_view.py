"""An answer's view rendered alone from the API's models: how its numbers are backed."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.api_models import (
    AnswerKind,
    Backing,
    ClaimOut,
    NumberCheckOut,
    QueryResult,
    TimingsOut,
)
from tests.ui.test_app import texts
from tests.ui.test_backing import GROWTH, SALES_2017, passage
from ui.state import Turn

QUESTION = "How much did net sales grow in 2017?"


def answer_view(turn: object) -> None:  # run by AppTest as a script: its own imports
    import streamlit as st

    from ui.answer_view import render_answer

    render_answer(turn, 0, st.empty())  # type: ignore[arg-type]


def result(*claims: ClaimOut) -> QueryResult:
    return QueryResult(
        answer=" ".join(c.text for c in claims if c.shown),
        citations=[passage()],
        sources=[passage()],
        invalid_citations=[],
        claims=list(claims),
        grounded=True,
        answer_kind=AnswerKind.GENERATED,
        timings=TimingsOut(retrieval_ms=5.0, ttft_ms=20.0, total_ms=900.0),
        model="scripted",
    )


def rendered(answer: QueryResult) -> AppTest:
    turn = Turn(question=QUESTION, answer=answer.answer, result=answer, finished=True)
    at = AppTest.from_function(answer_view, args=(turn,), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def numbers_expander(at: AppTest) -> object:
    return next(e for e in at.expander if "numbers are backed" in e.label)


def claim(text: str, *numbers: NumberCheckOut, shown: bool = True) -> ClaimOut:
    support = "supported" if shown else "unsupported"
    return ClaimOut(
        text=text, citations=[1], support=support, score=0.8, shown=shown, numbers=list(numbers)
    )


STANDS = NumberCheckOut(text="$177,866 million", backing=Backing.STANDS, source=SALES_2017)


def test_a_computed_number_is_shown_open_with_its_derivation_beside_its_sentence() -> None:
    unbacked = NumberCheckOut(text="$500 billion", backing=Backing.UNBACKED)
    at = rendered(
        result(
            claim("Net sales grew 30.8% [1].", GROWTH),
            claim("They reached $177,866 million [1].", STANDS),
            claim("Sales tripled to $500 billion [1].", unbacked, shown=False),
        )
    )

    expander = numbers_expander(at)
    assert expander.label.endswith("How the answer's numbers are backed (2)")
    assert expander.proto.expanded  # a derivation is worth reading at once
    [shown] = [h.value for h in expander.html]
    assert shown.count('data-pgpt="claim-numbers"') == 2
    assert "“Net sales grew 30.8% [1].”" in shown
    assert "<b>30.8%</b> = (&#36; 177,866 (Total net sales) - &#36; 135,987" in shown
    assert "500 billion" not in shown  # a removed sentence's numbers: in its own note


def test_numbers_that_stand_are_one_click_away_and_none_means_no_section() -> None:
    at = rendered(result(claim("Sales were $177,866 million [1].", STANDS)))
    assert not numbers_expander(at).proto.expanded
    plain = rendered(result(claim("Sales grew [1].")))
    assert not [e for e in plain.expander if "numbers" in e.label]


def test_a_removed_sentence_says_which_of_its_numbers_stand_nowhere() -> None:
    unbacked = NumberCheckOut(text="$500 billion", backing=Backing.UNBACKED)
    at = rendered(
        result(
            claim("They reached $177,866 million [1].", STANDS),
            claim("Sales tripled to $500 billion [1].", unbacked, shown=False),
        )
    )
    [removed] = [e for e in at.expander if "removed as not backed" in e.label]
    assert texts(removed.markdown) == (
        "- Not backed: “Sales tripled to \\$500 billion \\[1\\]\\.” (not in the passages, nor "
        "computed from them: \\$500 billion)"
    )
