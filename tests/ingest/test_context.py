"""Context headers: which document, period and page heading a chunk belongs to."""

from __future__ import annotations

from typing import Any

from ingest.chunking import TokenChunker
from ingest.context import HEADER_MAX_TOKENS, ContextHeaders, document_header, page_headings
from ingest.models import Page, ParsedDocument

COVER = """UNITED STATES
SECURITIES AND EXCHANGE COMMISSION
Washington, D.C. 20549
FORM 10-K
ANNUAL REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT OF 1934
For the fiscal year ended December 31, 2017
AMAZON.COM, INC.
(Exact name of registrant as specified in its charter)"""

CASH_FLOWS = """Table of Contents
AMAZON.COM, INC.
CONSOLIDATED STATEMENTS OF CASH FLOWS
Year Ended December 31,
Net income 596 2,371 3,033"""

PROSE = """cash flows from operations continued to grow, and we expect them to keep doing so in
the years ahead as described in this report."""


def filing() -> ParsedDocument:
    pages = (Page(1, COVER), Page(2, CASH_FLOWS), Page(3, PROSE))
    return ParsedDocument("AMAZON_2017_10K.pdf", "application/pdf", pages)


def test_a_filing_header_names_company_form_and_period() -> None:
    assert document_header(filing()) == (
        "AMAZON 2017 10K | AMAZON.COM, INC. | Form 10-K | fiscal year ended December 31, 2017"
    )


def test_a_rule_drawn_on_the_registrants_line_is_not_part_of_its_name() -> None:
    rule_and_name = "\nCommission File No. 000-22513\n" + "_" * 36 + " AMAZON.COM, INC."
    cover = COVER.replace("\nAMAZON.COM, INC.", rule_and_name)
    document = ParsedDocument("AMAZON_2017_10K.pdf", "application/pdf", (Page(1, cover),))
    assert document_header(document) == (
        "AMAZON 2017 10K | AMAZON.COM, INC. | Form 10-K | fiscal year ended December 31, 2017"
    )


def test_a_page_sits_under_its_own_heading_or_the_last_one_before_it() -> None:
    assert page_headings(filing())[2] == "AMAZON.COM, INC.; CONSOLIDATED STATEMENTS OF CASH FLOWS"
    assert page_headings(filing())[3] == page_headings(filing())[2]


def test_a_running_header_with_the_page_number_is_no_pages_heading() -> None:
    """The Federal Register's header alternates sides, its page number 47698 + page."""
    pages = [Page(1, "ESTIMATED COSTS\nThe agency estimates that the AD affects 12 airplanes.")]
    for number in range(2, 11):
        printed = 47698 + number
        running = (
            f"{printed} Federal Register / Vol. 85, No. 152 / Proposed Rules"
            if number % 2
            else f"Federal Register / Vol. 85, No. 152 / Proposed Rules {printed}"
        )
        pages.append(Page(number, f"{running}\nthe airplanes listed in paragraph (c) of this AD."))
    document = ParsedDocument("federal-register.pdf", "application/pdf", tuple(pages))
    assert set(page_headings(document).values()) == {"ESTIMATED COSTS"}


def test_a_top_line_with_a_number_too_long_to_parse_is_read_as_text() -> None:
    digits = "7" * 5000  # int() refuses more than 4,300 digits
    pages = tuple(Page(n, f"TERMS\nSerial {digits}\nbody text.") for n in range(1, 6))
    document = ParsedDocument("serials.pdf", "application/pdf", pages)
    assert page_headings(document)[5] == "TERMS"


def test_a_text_document_is_titled_by_its_first_line() -> None:
    text = "Role of S-Palmitoylation on IFITM5\n\nhttps://example.org/\n\nThe body starts here."
    document = ParsedDocument("covidqa-001.txt", "text/plain", (Page(1, text),))
    assert document_header(document) == "covidqa-001 | Role of S-Palmitoylation on IFITM5"


def test_headers_fit_their_token_budget(fake_embedder: Any) -> None:
    long_title = "Quarterly " * 200
    document = ParsedDocument("x.txt", "text/plain", (Page(1, long_title.strip()),))
    header = ContextHeaders(document, fake_embedder.count_tokens).for_chunk(1, None)
    assert 0 < fake_embedder.count_tokens(header) <= HEADER_MAX_TOKENS


def test_headers_change_neither_chunk_text_nor_offsets(fake_embedder: Any) -> None:
    document = filing()
    count = fake_embedder.count_tokens
    plain = TokenChunker(count, 32, 8).split(document, "d")
    headed = TokenChunker(count, 32, 8, context_headers=True).split(document, "d")
    assert [(c.text, c.page, c.char_start, c.page_end, c.char_end) for c in headed] == [
        (c.text, c.page, c.char_start, c.page_end, c.char_end) for c in plain
    ]
    on_cash_flows = next(c for c in headed if c.page == 2)
    assert on_cash_flows.indexed_text == f"{on_cash_flows.context}\n{on_cash_flows.text}"
    assert "CONSOLIDATED STATEMENTS OF CASH FLOWS" in on_cash_flows.context
    assert "fiscal year ended December 31, 2017" in on_cash_flows.context
