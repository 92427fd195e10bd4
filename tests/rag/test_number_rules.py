"""How analysts compute, checked against hand-written filing snippets: measures by their
textbook formulas, figures said of a year, changes said to rise or fall, ratios the right
way round, amounts written with cents."""

from __future__ import annotations

import pytest

from rag.number_checks import Backing, NumberCheck, backed_words, check_numbers
from rag.numbers import PassageNumbers

INCOME = (
    "ADOBE INC.\nCONSOLIDATED STATEMENTS OF INCOME\n(In millions, except per share data)\n"
    "Years Ended\n2022 2021 2020\n"
    "Total revenue 17,606 15,785 12,868\n"
    "Gross profit 15,441 13,920 11,146\n"
    "Operating income 6,098 5,802 4,237\n"
    "Net income $ 4,756 $ 4,822 $ 5,260\n"
)
BALANCE = (
    "Consolidated Balance Sheets\n($ in millions)\nJune 30,\n2023 2022\n"
    "Inventories 1,550 1,750\n"
    "Total current assets $ 5,000 $ 5,100\n"
    "Total current liabilities 5,000 5,000\n"
)
CASH_FLOWS = (
    "Consolidated Statements of Cash Flows\n(In thousands)\nYear Ended December 31,\n"
    "2020 2019 2018\n"
    "Net cash provided by operating activities 381,603 465,699 295,168\n"
)
REVENUES = (
    "Consolidated Statements of Operations\n(Amounts in millions)\n"
    "For the Years Ended December 31,\n2019 2018 2017\n"
    "Total net revenues 6,489 7,500 7,017\n"
)
ASSETS = (
    "Consolidated Balance Sheets\n(Amounts in millions)\n"
    "At December 31, 2019 At December 31, 2018\n"
    "Property and equipment, net 253 282\n"
)
TURNOVER = (
    "What is the FY2019 fixed asset turnover ratio for Activision Blizzard? Fixed asset "
    "turnover ratio is defined as: FY2019 revenue / (average PP&E between FY2018 and FY2019)."
)


def check(claim: str, *passages: str, question: str = "", context: str = "") -> list[NumberCheck]:
    found = [PassageNumbers(n, text) for n, text in enumerate(passages, start=1)]
    return check_numbers(claim, found, question, context)


def backing(claim: str, *passages: str, question: str = "") -> list[Backing]:
    return [c.backing for c in check(claim, *passages, question=question)]


def test_a_measure_is_computed_by_its_formula_in_the_year_said() -> None:
    claim = "Operating margin declined from 36.8% in FY2021 to 34.6% in FY2022."
    checks = check(claim, INCOME)
    assert [c.backing for c in checks] == [
        Backing.FOLLOWS,
        Backing.STANDS,
        Backing.FOLLOWS,
        Backing.STANDS,
    ]
    derivation = checks[0].derivation
    assert derivation is not None and derivation.operation == "operating margin"
    assert [o.text for o in derivation.operands] == ["5,802", "15,785"]
    assert derivation.describe().startswith("Operating income 5,802 / Total revenue 15,785")


def test_a_figure_said_of_another_year_is_unbacked() -> None:
    claim = "Operating margin declined from 36.8% in FY2020 to 34.6% in FY2022."
    assert backing(claim, INCOME)[0] is Backing.UNBACKED  # 2020's margin was 32.9%
    assert backing("Operating cash flow was $465.7 million in 2019.", CASH_FLOWS)[0] is (
        Backing.STANDS
    )
    assert backing("Operating cash flow was $465.7 million in 2020.", CASH_FLOWS)[0] is (
        Backing.UNBACKED
    )


def test_a_change_said_the_wrong_way_is_unbacked() -> None:
    claim = "Operating margin improved from 36.8% in FY2021 to 34.6% in FY2022."
    assert backing(claim, INCOME)[2] is Backing.UNBACKED
    sales = (
        "Consolidated Statements of Operations (in millions)\n"
        "Year Ended December 31, 2016 2017\nTotal net sales $ 135,987 $ 177,866\n"
    )
    assert backing("Total net sales grew 30.8% in 2017.", sales)[0] is Backing.FOLLOWS
    assert backing("Total net sales declined 30.8% in 2017.", sales)[0] is Backing.UNBACKED


def test_a_change_in_points_is_taken_from_the_answers_written_figures() -> None:
    context = "Operating margins declined from 36.8% in FY2021 to 34.6% in FY2022."
    question = "Does Adobe have an improving operating margin profile as of FY2022?"
    (drop,) = check("A drop of 2.2% in a year.", INCOME, question=question, context=context)
    assert drop.backing is Backing.FOLLOWS and drop.derivation is not None
    assert drop.derivation.operation == "difference"
    assert [o.text for o in drop.derivation.operands] == ["34.6%", "36.8%"]  # later - earlier


def test_a_ratio_of_a_difference_and_its_percent_change() -> None:
    claim = "The quick ratio improved from 0.67 times in FY2022 to 0.69 times in FY2023."
    checks = check(claim, BALANCE)
    assert [c.backing for c in checks] == [Backing.FOLLOWS, Backing.STANDS] * 2
    derivation = checks[0].derivation
    assert derivation is not None and derivation.operation == "quick ratio"
    assert derivation.describe() == (
        "(Total current assets $ 5,100 - Inventories 1,750) / Total current liabilities 5,000"
        " = 0.67"
    )
    (jump,) = check("A 3.0% jump.", BALANCE, question="Has the quick ratio improved?")
    assert jump.derivation is not None and jump.derivation.operation == "percent change"


def test_a_ratio_turned_around_or_negated_is_unbacked() -> None:
    assert backing("The quick ratio was 1.45 in FY2023.", BALANCE)[0] is Backing.UNBACKED
    assert backing("The quick ratio was -0.69 in FY2023.", BALANCE)[0] is Backing.UNBACKED
    assert backing("Operating income was 34.6% of total revenue.", INCOME) == [Backing.FOLLOWS]
    # Total revenue over operating income: a whole over its part is no share.
    assert backing("Operating income was 288.7% of total revenue.", INCOME) == [Backing.UNBACKED]


def test_an_average_of_two_periods_across_two_pages() -> None:
    (found,) = check("24.26", REVENUES, ASSETS, question=TURNOVER)
    assert found.backing is Backing.FOLLOWS and found.derivation is not None
    assert found.derivation.operation == "fixed asset turnover"
    assert [o.text for o in found.derivation.operands] == ["6,489", "253", "282"]
    assert [o.n for o in found.derivation.operands] == [1, 2, 2]
    # Over the year-end PP&E, not its average: a wrong operand.
    assert backing("25.65", REVENUES, ASSETS, question=TURNOVER) == [Backing.UNBACKED]


@pytest.mark.parametrize(
    ("claim", "passage", "question", "expected"),
    [
        ("$382.00", CASH_FLOWS, "Cash from operations in FY2020? In USD millions.", "stands"),
        ("$381.00", CASH_FLOWS, "Cash from operations in FY2020? In USD millions.", "unbacked"),
        (
            "$8.70",
            "(Millions)\nProperty, plant and equipment - net 8,738",
            "In USD billions.",
            "stands",
        ),
        (
            "$8.80",
            "(Millions)\nProperty, plant and equipment - net 8,738",
            "In USD billions.",
            "unbacked",
        ),
        (
            "$8.74",
            "(Millions)\nProperty, plant and equipment - net 8,738",
            "In USD billions.",
            "stands",
        ),
        (
            "$8.71",
            "(Millions)\nProperty, plant and equipment - net 8,738",
            "In USD billions.",
            "unbacked",
        ),
    ],
)
def test_cents_of_an_amount_in_millions_are_formatting(
    claim: str, passage: str, question: str, expected: str
) -> None:
    assert backing(claim, passage, question=question) == [Backing(expected)]


def test_the_words_a_sentences_figures_back() -> None:
    claim = "There has been a decline of 1.1% in gross margins between FY2022 and FY2023."
    income = (
        "Consolidated Statements of Earnings\n($ in millions)\n2023 2022\n"
        "Revenue $ 46,298 $ 51,761\nGross profit 9,912 11,640\n"
    )
    checks = check(claim, income)
    assert [c.backing for c in checks] == [Backing.FOLLOWS, Backing.STANDS, Backing.STANDS]
    assert {"decline", "gross", "margins", "between"} <= backed_words(claim, checks)
    shifted = claim.replace("FY2022", "FY2019")  # a year the table does not show
    assert "between" not in backed_words(shifted, check(shifted, income))


def test_a_claim_that_names_years_speaks_of_them() -> None:
    claim = "The quick ratio improved from 0.67 times to 0.69 times between FY 2022 and FY 2023."
    assert backing(claim, BALANCE)[:2] == [Backing.FOLLOWS, Backing.FOLLOWS]
    shifted = claim.replace("FY 2023", "FY 2022")  # 0.69 was FY2023's
    assert backing(shifted, BALANCE)[:2] == [Backing.FOLLOWS, Backing.UNBACKED]


def test_a_line_item_printed_as_its_parts_under_a_heading_is_their_sum() -> None:
    balance = (
        "Consolidated Balance Sheet\n($ in millions)\nAs of June 30,\n2023 2022\n"
        "Cash and cash equivalents $ 689 $ 775\nInventories, net\n"
        "Raw materials and supplies 992 1,114\nWork in process and finished goods 1,221 1,325\n"
        "Prepaid expenses and other current assets 531 512\n"
        "Total current assets 5,308 5,853\nTotal current liabilities 4,476 5,103\n"
    )
    claim = "The quick ratio improved from 0.67 times to 0.69 times between FY 2022 and FY 2023."
    checks = check(claim, balance)
    assert [c.backing for c in checks[:2]] == [Backing.FOLLOWS, Backing.FOLLOWS]
    derivation = checks[1].derivation
    assert derivation is not None and derivation.describe().startswith(
        "(Total current assets 5,308 - (Raw materials and supplies 992 + Work in process and "
        "finished goods 1,221)) / Total current liabilities 4,476"
    )


def test_a_tax_rate_is_by_sizes_and_a_margin_by_printed_signs() -> None:
    income = (
        "Consolidated Statements of Operations\n(Dollars in millions)\n"
        "Years ended December 31, 2022 2021 2020\n"
        "Total revenues 66,608 62,286 58,158\n"
        "Loss from operations (3,547) (2,902) (12,767)\n"
        "Loss before income taxes (5,022) (5,033) (14,476)\n"
        "Income tax (expense)/benefit (31) 743 2,535\n"
    )
    claim = "Effective tax rate in FY2022 was 0.62%, compared to 14.76% in FY2021."
    checks = check(claim, income)
    assert [c.backing for c in checks] == [Backing.STANDS, *[Backing.FOLLOWS] * 2, Backing.STANDS]
    assert "compared" in backed_words(claim, checks)
    # Filings print a provision in brackets or not: its sign says nothing of the rate's.
    assert backing(claim.replace("14.76%", "-14.76%"), income)[2] is Backing.UNBACKED
    assert backing("The operating margin was -5.3% in FY2022.", income)[0] is Backing.FOLLOWS
    assert backing("The operating margin was 5.3% in FY2022.", income)[0] is Backing.UNBACKED


def test_a_bare_negative_figure_is_not_a_bullet() -> None:
    from rag.verification import split_claims

    assert split_claims("-24.26") == [("-24.26", [])]
    assert split_claims("- 24.26") == [("24.26", [])]
    assert split_claims("-$1,577 million") == [("-$1,577 million", [])]
