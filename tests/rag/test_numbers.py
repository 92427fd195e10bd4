"""Numbers checked by value against hand-written filing snippets."""

from __future__ import annotations

import pytest

from rag.number_checks import Backing, NumberCheck, check_numbers
from rag.numbers import PassageNumbers, quantities

CASH_FLOW = (
    "3M Company and Subsidiaries\n"
    "Consolidated Statement of Cash Flows\n"
    "(Millions)\n"
    "2018\n2017\n2016\n"
    "Purchases of property, plant and equipment (PP&E)\n(1,577)\n(1,373)\n(1,420)\n"
    "Net sales\n32,765\n31,657\n30,109\n"
    "Operating income\n7,207\n7,692\n6,966\n"
)
INCOME = (
    "Consolidated Statements of Operations (in millions, except per share data)\n"
    "Year Ended December 31, 2016 2017\n"
    "Total net sales $ 135,987 $ 177,866\n"
    "Operating income 4,186 4,106\n"
)
TAX = "Our effective tax rate was 0.62% in 2022 and (14.76)% in 2021."


def check(claim: str, *passages: str, question: str = "") -> list[NumberCheck]:
    found = [PassageNumbers(n, text) for n, text in enumerate(passages, start=1)]
    return check_numbers(claim, found, question)


def backing(claim: str, *passages: str, question: str = "") -> list[Backing]:
    return [c.backing for c in check(claim, *passages, question=question)]


@pytest.mark.parametrize(
    "claim",
    [
        "Capital expenditure was $1,577 million in 2018.",
        "Capital expenditure was $1.6 billion in 2018.",
        "Capital expenditure was $1,577.00 million in 2018.",
    ],
)
def test_a_cell_under_millions_backs_the_amount_written_any_way(claim: str) -> None:
    assert backing(claim, CASH_FLOW) == [Backing.STANDS, Backing.STANDS]


@pytest.mark.parametrize(
    "claim",
    [
        "Capital expenditure was $1,577 billion in 2018.",
        "Capital expenditure was $1.7 billion in 2018.",
        "Capital expenditure was $1,578 million in 2018.",
    ],
)
def test_a_wrong_scale_or_digit_is_unbacked(claim: str) -> None:
    assert backing(claim, CASH_FLOW)[0] is Backing.UNBACKED


def test_the_cell_that_backs_a_number_is_named_with_its_row() -> None:
    (found, _) = check("Capex was $1.6 billion in FY2018.", CASH_FLOW)
    assert found.source is not None
    assert CASH_FLOW[found.source.start : found.source.end] == "(1,577)"
    assert found.source.label == "Purchases of property, plant and equipment (PP&E)"


def test_a_bare_answer_takes_the_scale_the_question_states() -> None:
    question = "What is the FY2018 capital expenditure amount (in USD millions) for 3M?"
    assert backing("$1577.00", CASH_FLOW, question=question) == [Backing.STANDS]


def test_a_percent_change_from_two_cells_is_backed_with_its_derivation() -> None:
    (found,) = check("Net sales grew 30.8% year over year.", INCOME)
    assert found.backing is Backing.FOLLOWS and found.derivation is not None
    assert found.derivation.operation == "percent change"
    assert [o.text for o in found.derivation.operands] == ["$ 177,866", "$ 135,987"]
    assert [o.label for o in found.derivation.operands] == ["Total net sales"] * 2
    assert found.derivation.result == pytest.approx(0.30796, abs=1e-5)


def test_a_percent_change_from_a_wrong_operand_is_unbacked() -> None:
    # (177,866 - 4,106) / 135,987 would be 127.8%; nor is 31.8% any row's change.
    assert backing("Net sales grew 31.8% year over year.", INCOME) == [Backing.UNBACKED]


def test_a_margin_is_a_part_over_its_columns_total() -> None:
    (found,) = check("The operating margin was 22.0%.", CASH_FLOW)
    assert found.derivation is not None and found.derivation.operation == "operating margin"
    assert [o.label for o in found.derivation.operands] == ["Operating income", "Net sales"]
    (share,) = check("Operating income was 22.0% of net sales.", CASH_FLOW)
    assert share.derivation is not None and share.derivation.operation == "share"


def test_a_change_the_claim_states_follows_from_its_own_figures() -> None:
    passage = "Operating margin 36.8% in fiscal 2021 and 34.6% in fiscal 2022."
    claim = "Operating margin fell from 36.8% to 34.6%, a drop of 2.2 points."
    checks = check(claim, passage)
    assert [c.backing for c in checks] == [Backing.STANDS, Backing.STANDS, Backing.FOLLOWS]
    derivation = checks[2].derivation
    assert derivation is not None and derivation.operation == "difference"
    assert [o.text for o in derivation.operands] == ["36.8%", "34.6%"]


def test_a_percent_is_the_fraction_it_names() -> None:
    assert backing("Capex was 1.9% of revenue.", "Capex to revenue ratio 0.019") == [Backing.STANDS]


def test_a_minus_must_be_written_and_brackets_give_a_size() -> None:
    stated = "The effective tax rate was 0.62% in 2022 and -14.76% in 2021."
    assert backing("The rate was -14.76% in 2021.", stated) == [Backing.STANDS, Backing.STANDS]
    assert backing("The rate was 14.76% in 2021.", stated)[0] is Backing.UNBACKED
    assert backing("The rate was 14.76% in 2021.", TAX)[0] is Backing.STANDS  # (14.76)%
    assert backing("Capex was -$1,577 million.", CASH_FLOW) == [Backing.UNBACKED]


def test_a_count_is_exact_and_never_computed() -> None:
    passage = "The trial enrolled 16 patients and 13 controls; 4.14 per cent withdrew."
    assert backing("The trial enrolled 4 patients.", passage) == [Backing.UNBACKED]
    assert backing("The trial enrolled 3 more patients than controls.", passage) == [
        Backing.UNBACKED
    ]


def test_a_year_is_backed_by_the_question_that_asks_about_it() -> None:
    question = "What was 3M's capital expenditure in FY2018?"
    assert backing("In FY2018 it was $1,577 million.", INCOME, question=question) == [
        Backing.STANDS,
        Backing.UNBACKED,
    ]


def test_numbers_inside_names_are_not_quantities() -> None:
    text = "COVID-19 was studied on P100 GPUs for the 10-K (1) of 3M"
    assert quantities(text) == []
