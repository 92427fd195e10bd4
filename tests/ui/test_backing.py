"""How a sentence is shown backed: its numbers' cells and derivations, a checked text's
labels and spans; all of it escaped."""

from __future__ import annotations

from typing import Any

from core.api_models import (
    Backing,
    Highlight,
    NumberCheckOut,
    NumberedPassage,
    OperandOut,
    Support,
    VerifiedSentence,
    VerifyResult,
)
from ui.backing import (
    checked_sentence_html,
    checked_text_html,
    claims_numbers_html,
    number_html,
    number_value,
    numbers_html,
    row_name,
    support_summary,
)

FILING = (
    "Consolidated Statements of Operations (in millions)\n"
    "Year Ended December 31, 2016 2017\n"
    "Total net sales $ 135,987 $ 177,866\n"
)


def passage(text: str = FILING, n: int = 1, **extra: Any) -> NumberedPassage:
    fields: dict[str, Any] = {
        "n": n,
        "document_id": "d1",
        "filename": "filing.pdf",
        "page": 59,
        "page_end": 59,
        "section": None,
        "char_start": 0,
        "char_end": len(text),
        "text": text,
        "score": 0.7,
    }
    return NumberedPassage(**(fields | extra))


def cell(text: str, value: float, label: str = "Total net sales") -> OperandOut:
    start = FILING.index(text)
    return OperandOut(n=1, start=start, end=start + len(text), text=text, value=value, label=label)


SALES_2017 = cell("$ 177,866", 177_866e6)
SALES_2016 = cell("$ 135,987", 135_987e6)
GROWTH = NumberCheckOut(
    text="30.8%",
    backing=Backing.FOLLOWS,
    operation="percent change",
    operands=[SALES_2017, SALES_2016],
    result=0.3079,
    derivation="($ 177,866 (Total net sales) - $ 135,987 (Total net sales)) / $ 135,987 "
    "(Total net sales) = 0.3079",
)


def test_a_value_reads_as_people_write_it() -> None:
    assert [number_value(v) for v in (177_866e6, 0.30792, -2.2, 41.8)] == [
        "177,866,000,000",
        "0.3079",
        "-2.2",
        "41.8",
    ]


def test_a_number_that_stands_names_its_cell_value_and_page() -> None:
    check = NumberCheckOut(text="$177,866 million", backing=Backing.STANDS, source=SALES_2017)
    shown = number_html(check, {1: passage()})
    assert shown.startswith("<b>&#36;177,866 million</b> stands in Total net sales: ")
    assert "“&#36; 177,866” = 177,866,000,000" in shown  # the scale the table states
    assert "filing.pdf, page 59" in shown


def test_a_number_that_follows_shows_its_derivation_and_each_cells_value() -> None:
    shown = number_html(GROWTH, {1: passage()})
    assert shown.startswith("<b>30.8%</b> = (&#36; 177,866 (Total net sales) - &#36; 135,987")
    assert shown.count("filing.pdf, page 59") == 2
    assert "“&#36; 135,987” = 135,987,000,000" in shown


def test_a_number_that_neither_stands_nor_follows_says_so() -> None:
    check = NumberCheckOut(text="$278 billion", backing=Backing.UNBACKED)
    assert number_html(check, {}) == (
        "<b>&#36;278 billion</b> neither stands in the passages nor follows from them"
    )


def test_a_year_of_the_question_is_not_looked_for_in_the_passages() -> None:
    check = NumberCheckOut(text="2017", backing=Backing.STANDS)
    assert number_html(check, {}) == "<b>2017</b> is the period the question asks about"


def test_numbers_are_listed_with_their_backing_and_a_sentence_without_any_shows_nothing() -> None:
    unbacked = NumberCheckOut(text="12", backing=Backing.UNBACKED)
    listed = numbers_html([GROWTH, unbacked], [passage()])
    assert listed.count("<li") == 2
    assert 'data-backing="follows"' in listed and 'data-backing="unbacked"' in listed
    assert numbers_html([], [passage()]) == ""
    claims = [("Sales grew 30.8% [1].", [GROWTH]), ("Sales grew a lot [1].", [])]
    shown = claims_numbers_html(claims, [passage()])
    assert shown.count('data-pgpt="claim-numbers"') == 1
    assert "“Sales grew 30.8% [1].”" in shown


def test_document_text_and_pasted_text_are_escaped() -> None:
    hostile = '<img src="x" onerror="alert(1)">'
    operand = OperandOut(n=1, start=0, end=3, text="<b>", value=1.0, label=hostile)
    check = NumberCheckOut(text="<i>1</i>", backing=Backing.STANDS, source=operand)
    sentence = VerifiedSentence(
        text=f"{hostile} $x$", support=Support.WEAK, score=0.5, numbers=[check]
    )
    shown = checked_sentence_html(sentence, [passage(hostile, filename=hostile)])
    assert "<img" not in shown and "<i>" not in shown and "$x$" not in shown
    assert "&lt;img" in shown


def test_a_checked_sentence_shows_its_label_the_words_that_back_it_and_where() -> None:
    text = "Intro.\nThe big model trained for 3.5 days on 8 GPUs.\nMore."
    start = text.index("The big")
    span = Highlight(start=start, end=text.index("\nMore"), page=7, page_start=40, page_end=88)
    sentence = VerifiedSentence(
        text="Training took 3.5 days.",
        support=Support.SUPPORTED,
        score=0.8,
        passage=2,
        highlight=span,
    )
    sources = [passage(n=1), passage(text, n=2, filename="paper.pdf", page=7, page_end=8)]
    shown = checked_sentence_html(sentence, sources)
    assert 'data-support="supported"' in shown
    assert '<span data-pgpt="support-label"' in shown and ">supported</span>" in shown
    assert "Backed by" in shown and "<b>paper.pdf</b>, pages 7–8 (highlight on page 7)" in shown
    marked = shown.split("<mark", 1)[1].split("</mark>", 1)[0]
    assert marked.endswith(">The big model trained for 3.5 days on 8 GPUs.")


def test_an_unbacked_sentence_shows_its_closest_passage_or_none() -> None:
    closest = VerifiedSentence(
        text="Sales fell.", support=Support.UNSUPPORTED, score=0.2, passage=1, highlight=None
    )
    alone = VerifiedSentence(text="Cats purr.", support=Support.UNSUPPORTED, score=0.0)
    result = VerifyResult(sentences=[closest, alone], sources=[passage()])
    shown = checked_text_html(result)
    assert "Closest passage:" in shown and "<b>filing.pdf</b>, page 59" in shown
    assert "No passage of your documents backs it." in shown
    assert shown.count('data-pgpt="checked-sentence"') == 2


def test_the_summary_counts_each_label() -> None:
    labels = [Support.SUPPORTED, Support.UNSUPPORTED, Support.SUPPORTED]
    sentences = [VerifiedSentence(text="x", support=s, score=0.5) for s in labels]
    result = VerifyResult(sentences=sentences, sources=[])
    assert support_summary(result) == "3 sentences: 2 supported, 1 unsupported"


def test_a_number_in_prose_is_named_by_the_words_just_before_it() -> None:
    assert row_name("Total net sales") == "Total net sales"
    prose = "server. They are parsed in memory only. A session is deleted after"
    assert row_name(prose) == "A session is deleted after"
    long = "the big models of the base and the big Transformer were trained for"
    assert row_name(long) == "… base and the big Transformer were trained for"
