"""ingest.chunking with the bundled model's tokenizer (the fake embedder counts with it) on real
documents."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from ingest.chunking import (
    LONG_PIECE_CHARS,
    PAGE_SEPARATOR,
    PieceTokenCounter,
    TokenChunker,
    join_pages,
)
from ingest.models import Chunk, Page, ParsedDocument
from ingest.pdf import parse_pdf
from ingest.text import parse_text


@pytest.fixture(scope="module")
def attention_doc(attention_pdf: bytes) -> ParsedDocument:
    return parse_pdf(attention_pdf, "attention.pdf", max_pages=2000)


@pytest.fixture(scope="module")
def federal_doc(pdf_dir: Path) -> ParsedDocument:
    data = (pdf_dir / "federal-register-2020-17221.pdf").read_bytes()
    return parse_pdf(data, "federal-register.pdf", max_pages=2000)


def chunker(fake_embedder: Any, size: int, overlap: int) -> TokenChunker:
    return TokenChunker(fake_embedder.count_tokens, size, overlap)


def located_text(doc: ParsedDocument, chunk: Chunk) -> str:
    """The text at the chunk's recorded location, read from the pages themselves."""
    pages = {page.number: page.text for page in doc.pages}
    if chunk.page == chunk.page_end:
        return pages[chunk.page][chunk.char_start : chunk.char_end]
    parts = [pages[chunk.page][chunk.char_start :]]
    parts += [pages[number] for number in range(chunk.page + 1, chunk.page_end)]
    parts.append(pages[chunk.page_end][: chunk.char_end])
    return PAGE_SEPARATOR.join(parts)


def global_span(doc: ParsedDocument, chunk: Chunk) -> tuple[int, int]:
    _, starts = join_pages(doc)
    first = starts[chunk.page - 1]
    last = starts[chunk.page_end - 1]
    return first + chunk.char_start, last + chunk.char_end


# --- limits and locations -----------------------------------------------------------


@pytest.mark.parametrize("document", ["attention_doc", "federal_doc"])
def test_no_chunk_exceeds_the_model_limit(
    request: pytest.FixtureRequest, fake_embedder: Any, settings: Any, document: str
) -> None:
    doc = request.getfixturevalue(document)
    splitter = TokenChunker.for_model(
        fake_embedder.count_tokens,
        fake_embedder.max_tokens,
        settings.chunk_size_tokens,
        settings.chunk_overlap_tokens,
    )
    assert splitter.chunk_size <= fake_embedder.max_tokens
    chunks = splitter.split(doc, "doc-1")
    assert len(chunks) > 20
    assert max(fake_embedder.count_tokens(chunk.text) for chunk in chunks) <= splitter.chunk_size


def test_chunks_fill_the_full_model_window(federal_doc: ParsedDocument, fake_embedder: Any) -> None:
    chunks = chunker(fake_embedder, fake_embedder.max_tokens, 0).split(federal_doc, "d")
    counts = [fake_embedder.count_tokens(chunk.text) for chunk in chunks]
    assert max(counts) <= fake_embedder.max_tokens
    # Chunks are packed close to the limit, not cut needlessly small.
    assert sorted(counts)[len(counts) // 2] > fake_embedder.max_tokens * 0.75


@pytest.mark.parametrize("size,overlap", [(64, 0), (128, 32), (254, 64)])
def test_offsets_are_exact(
    attention_doc: ParsedDocument, fake_embedder: Any, size: int, overlap: int
) -> None:
    chunks = chunker(fake_embedder, size, overlap).split(attention_doc, "att")
    single_page = [chunk for chunk in chunks if chunk.page == chunk.page_end]
    assert single_page
    for chunk in single_page:
        page = attention_doc.pages[chunk.page - 1]
        assert page.text[chunk.char_start : chunk.char_end] == chunk.text
    for chunk in chunks:
        assert located_text(attention_doc, chunk) == chunk.text
        assert chunk.text == chunk.text.strip()
        assert chunk.document_id == "att"
        assert chunk.filename == "attention.pdf"
        assert chunk.section is None


def test_chunks_cover_every_word(attention_doc: ParsedDocument, fake_embedder: Any) -> None:
    text, _ = join_pages(attention_doc)
    covered = bytearray(len(text))
    for chunk in chunker(fake_embedder, 128, 0).split(attention_doc, "d"):
        start, end = global_span(attention_doc, chunk)
        covered[start:end] = b"\x01" * (end - start)
    missing = [i for i, ch in enumerate(text) if not covered[i] and not ch.isspace()]
    assert missing == []


def test_page_of_a_known_fact(attention_doc: ParsedDocument, fake_embedder: Any) -> None:
    chunks = chunker(fake_embedder, 128, 32).split(attention_doc, "d")
    hits = [chunk for chunk in chunks if "8 NVIDIA P100 GPUs" in chunk.text]
    assert hits
    assert {chunk.page for chunk in hits} == {7}


def test_chunks_cross_page_breaks() -> None:
    doc = ParsedDocument(
        filename="pages.txt",
        media_type="text/plain",
        pages=(
            Page(1, "Alpha beta gamma delta."),
            Page(2, ""),
            Page(3, "Epsilon zeta eta theta."),
        ),
    )
    chunks = TokenChunker(lambda s: len(s.split()), chunk_size=50, chunk_overlap=0).split(doc, "d")
    assert len(chunks) == 1
    chunk = chunks[0]
    assert (chunk.page, chunk.page_end, chunk.pages_label) == (1, 3, "1-3")
    assert (chunk.char_start, chunk.char_end) == (0, len("Epsilon zeta eta theta."))
    assert located_text(doc, chunk) == chunk.text
    assert chunk.text == "Alpha beta gamma delta.\n\n\n\nEpsilon zeta eta theta."


# --- overlap ------------------------------------------------------------------------


def test_consecutive_chunks_overlap(federal_doc: ParsedDocument, fake_embedder: Any) -> None:
    chunks = chunker(fake_embedder, 128, 64).split(federal_doc, "d")
    spans = [global_span(federal_doc, chunk) for chunk in chunks]
    text, _ = join_pages(federal_doc)
    shared_tokens = []
    at_paragraph_breaks = 0
    for (start, end), (next_start, next_end) in pairwise(spans):
        assert start < next_start and end < next_end  # reading order, always progressing
        if next_start < end:
            shared = text[next_start:end]
            assert chunks[spans.index((next_start, next_end))].text.startswith(shared)
            shared_tokens.append(fake_embedder.count_tokens(shared))
        elif "\n\n" in text[end:next_start]:
            at_paragraph_breaks += 1
    # The overlap is made of whole paragraphs or sentences (lines or words only inside
    # over-long sentences): chunks that meet at a paragraph break whose last paragraph
    # exceeds 64 tokens share nothing, nor do those whose boundary sentence does.
    assert len(shared_tokens) >= 0.75 * (len(spans) - 1 - at_paragraph_breaks)
    assert max(shared_tokens) <= 64
    assert sum(shared_tokens) / len(shared_tokens) > 32


def test_no_overlap_when_zero(federal_doc: ParsedDocument, fake_embedder: Any) -> None:
    spans = [
        global_span(federal_doc, chunk)
        for chunk in chunker(fake_embedder, 128, 0).split(federal_doc, "d")
    ]
    for (_, end), (next_start, _) in pairwise(spans):
        assert next_start >= end


# --- Markdown sections --------------------------------------------------------------

MANUAL = """A short preface that sits before any heading at all.

# Intro

The introduction explains what this manual covers and who should read it.

## Background

{background}

## Setup

Install the package, then run the command line tool once to create a configuration.

# Reference

Every option is described here.
"""


def test_markdown_sections(fake_embedder: Any) -> None:
    background = " ".join(
        f"Fact number {i} about the long history of the project is recorded here."
        for i in range(40)
    )
    doc = parse_text(
        MANUAL.format(background=background).encode(), "manual.md", markdown=True, max_pages=10
    )
    chunks = chunker(fake_embedder, 64, 16).split(doc, "m")
    sections = [chunk.section for chunk in chunks]
    assert sections[0] is None  # the preface
    assert "Intro" in sections
    assert sections.count("Intro > Background") >= 3  # the long section spans chunks
    assert "Intro > Setup" in sections
    assert sections[-1] == "Reference"
    # Headings start new chunks rather than trailing at the end of the previous one.
    assert any(chunk.text.startswith("## Setup") for chunk in chunks)
    for chunk in chunks:
        assert located_text(doc, chunk) == chunk.text
        assert fake_embedder.count_tokens(chunk.text) <= 64


def test_section_of_a_chunk_starting_mid_section(fake_embedder: Any) -> None:
    doc = parse_text(
        b"# Guide\n\n## Install\n\n" + b"Run the installer again. " * 60,
        "guide.md",
        markdown=True,
        max_pages=10,
    )
    chunks = chunker(fake_embedder, 32, 0).split(doc, "g")
    assert len(chunks) > 3
    assert {chunk.section for chunk in chunks[1:]} == {"Guide > Install"}


# --- the token counting shortcut ----------------------------------------------------


def test_piece_count_is_exact_for_the_real_tokenizer(
    federal_doc: ParsedDocument, fake_embedder: Any
) -> None:
    counter = PieceTokenCounter(fake_embedder.count_tokens)
    long_pages = [page.text for page in federal_doc.pages if len(page.text) > LONG_PIECE_CHARS]
    assert long_pages  # the block-wise path is exercised
    for page in federal_doc.pages:
        assert counter(page.text) == fake_embedder.count_tokens(page.text)


def test_over_long_chunks_are_cut_exactly() -> None:
    """A tokenizer whose counts do not add up across pieces (a string of n characters
    costs n + (n // 20)**2 tokens) makes the splitter's estimate too low; the exact
    check of each finished chunk must still keep every chunk within the limit."""

    def superadditive(text: str) -> int:
        return len(text) + (len(text) // 20) ** 2

    text = " ".join(f"word{i}" for i in range(400))
    # The splitter's estimate adds up its pieces' counts: 50 characters of short words look
    # like 50 tokens piece by piece, but together they cost 54: an estimated chunk won't fit.
    fifty = text[:50]
    assert sum(superadditive(word) + 1 for word in fifty.split()) - 1 <= 50 < superadditive(fifty)
    doc = ParsedDocument("w.txt", "text/plain", (Page(1, text),))
    chunks = TokenChunker(superadditive, chunk_size=50, chunk_overlap=10).split(doc, "w")
    assert all(superadditive(chunk.text) <= 50 for chunk in chunks)
    assert all(text[c.char_start : c.char_end] == c.text for c in chunks)
    covered = bytearray(len(text))
    for chunk in chunks:
        covered[chunk.char_start : chunk.char_end] = b"\x01" * (chunk.char_end - chunk.char_start)
    assert all(covered[i] or ch == " " for i, ch in enumerate(text))


@pytest.mark.parametrize("size,overlap", [(0, 0), (10, 10), (10, -1)])
def test_invalid_sizes(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        TokenChunker(len, size, overlap)


def test_for_model_clamps_to_the_model_limit() -> None:
    splitter = TokenChunker.for_model(len, max_tokens=128, chunk_size=256, chunk_overlap=100)
    assert (splitter.chunk_size, splitter.chunk_overlap) == (128, 50)


def test_for_model_keeps_an_unclamped_overlap() -> None:
    splitter = TokenChunker.for_model(len, max_tokens=254, chunk_size=100, chunk_overlap=60)
    assert (splitter.chunk_size, splitter.chunk_overlap) == (100, 60)


def test_empty_pages_give_no_chunks() -> None:
    doc = ParsedDocument("e.txt", "text/plain", (Page(1, ""), Page(2, "  \n ")))
    assert TokenChunker(len, 10, 0).split(doc, "e") == []


def test_a_repeated_table_row_is_located_where_it_was_cut(fake_embedder: Any) -> None:
    # A cost table repeats the same row; a chunk cut inside the last copy was placed on an
    # earlier one while the search for it started at the previous chunk's start.
    dots = "." * 26
    row = f"1 work-hour × $85 per hour = $85 ...... $0 {dots} $85 {dots} $6,205."
    lines = [f"FCC OPS installation .. {row}", f"AFM revisions {dots} {row}", "marker.", row]
    doc = ParsedDocument("costs.txt", "text/plain", (Page(1, "\n".join(lines)),))
    spans = [global_span(doc, chunk) for chunk in chunker(fake_embedder, 128, 0).split(doc, "d")]
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans))
