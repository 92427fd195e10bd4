"""Page view: real PDFium renders of real PDFs, and our offsets mapped onto PDFium's text."""

from __future__ import annotations

import io
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from core.errors import InvalidRequestError, PageNotFoundError, RenderTimeoutError
from ingest.models import Page, SourceDocument
from ingest.page_view import (
    Box,
    PageExcerpt,
    PageImage,
    locate_span,
    merge_lines,
    text_excerpt,
    view_page,
)
from ingest.pdf import parse_pdf

P100 = "8 NVIDIA P100 GPUs"


def held(data: bytes, password: str | None = None) -> SourceDocument:
    parsed = parse_pdf(data, "doc.pdf", password=password, max_pages=100)
    return SourceDocument(data, parsed.media_type, parsed.pages, password)


def pdfium_char_boxes(data: bytes, page: int, text: str, width: int) -> list[Box]:
    """PDFium's own tight boxes of ``text``'s visible characters, in pixels of a ``width``-wide
    render, computed here independently (page origin bottom left, no rotation or crop)."""
    pdf = pdfium.PdfDocument(data)
    textpage = pdf[page - 1].get_textpage()
    page_width, page_height = pdf[page - 1].get_size()
    chars = "".join(
        chr(pdfium_c.FPDFText_GetUnicode(textpage, i)) for i in range(textpage.count_chars())
    )
    first = chars.index(text)
    scale = width / page_width
    boxes = []
    for i in range(first, first + len(text)):
        left, bottom, right, top = textpage.get_charbox(i)
        if right > left and top > bottom:
            boxes.append(
                Box(
                    left * scale,
                    (page_height - top) * scale,
                    right * scale,
                    (page_height - bottom) * scale,
                )
            )
    pdf.close()
    return boxes


def covered(box: Box, rectangles: tuple[Box, ...], tolerance: float = 1.0) -> bool:
    return any(
        r.left - tolerance <= box.left
        and box.right <= r.right + tolerance
        and r.top - tolerance <= box.top
        and box.bottom <= r.bottom + tolerance
        for r in rectangles
    )


def test_the_p100_span_is_highlighted_over_pdfiums_own_character_boxes(
    attention_pdf: bytes,
) -> None:
    source = held(attention_pdf)
    text = source.pages[6].text
    start = text.index(P100)
    for width in (800, 1400):
        image = view_page(source, 7, span=(start, start + len(P100)), width=width, timeout_s=30)
        assert isinstance(image, PageImage)
        with Image.open(io.BytesIO(image.png)) as png:
            assert (
                png.format == "PNG"
                and png.size == (image.width, image.height)
                and width == image.width
            )
        assert len(image.highlights) == 1  # one line
        assert all(
            0 <= b.left < b.right <= image.width and 0 <= b.top < b.bottom <= image.height
            for b in image.highlights
        )
        chars = pdfium_char_boxes(attention_pdf, 7, P100, width)
        assert len(chars) == len(P100.replace(" ", ""))
        assert all(covered(c, image.highlights) for c in chars)
        # ...and no more than those characters: the rectangle hugs the words.
        [box] = image.highlights
        assert (
            box.right - box.left <= (max(c.right for c in chars) - min(c.left for c in chars)) + 8
        )


def test_a_span_over_several_lines_gets_one_rectangle_per_line(attention_pdf: bytes) -> None:
    source = held(attention_pdf)
    text = source.pages[6].text
    start = text.index("We trained our models on one machine")
    end = text.index("step time was 1.0 seconds") + len("step time was 1.0 seconds")
    image = view_page(source, 7, span=(start, end), width=800, timeout_s=30)
    assert isinstance(image, PageImage)
    tops = [b.top for b in image.highlights]
    assert len(tops) == 4 and tops == sorted(tops)


def test_the_highlight_is_drawn_translucent_over_the_page(attention_pdf: bytes) -> None:
    source = held(attention_pdf)
    start = source.pages[6].text.index(P100)
    plain = view_page(source, 7, span=None, width=800, timeout_s=30)
    marked = view_page(source, 7, span=(start, start + len(P100)), width=800, timeout_s=30)
    assert isinstance(plain, PageImage) and isinstance(marked, PageImage)
    assert plain.highlights == ()
    [box] = marked.highlights
    x, y = int(box.left + 3), int((box.top + box.bottom) / 2)
    with Image.open(io.BytesIO(plain.png)) as a, Image.open(io.BytesIO(marked.png)) as b:
        before, after = a.convert("RGB").getpixel((x, y)), b.convert("RGB").getpixel((x, y))
    assert before != after  # tinted...
    assert isinstance(after, tuple) and after[0] > after[2]  # ...yellow, and not opaque:
    with Image.open(io.BytesIO(marked.png)) as b:
        darkest = min(
            sum(b.convert("RGB").getpixel((i, y))) for i in range(int(box.left), int(box.right))
        )
    assert darkest < 300  # the text still shows through


def test_an_encrypted_pdf_renders_with_its_password(pdf_dir: Path) -> None:
    data = (pdf_dir / "encrypted-password-openpassword.pdf").read_bytes()
    image = view_page(held(data, "openpassword"), 1, span=None, width=400, timeout_s=30)
    assert isinstance(image, PageImage) and image.width == 400


def test_a_rotated_page_is_highlighted_where_its_text_is_drawn(pdf_dir: Path) -> None:
    writer = PdfWriter(clone_from=PdfReader(pdf_dir / "crazyones.pdf"))
    writer.pages[0].rotate(90)
    buffer = io.BytesIO()
    writer.write(buffer)
    source = held(buffer.getvalue())
    text = source.pages[0].text
    start = text.index("crazy ones")
    image = view_page(source, 1, span=(start, start + len("crazy ones")), width=600, timeout_s=30)
    assert isinstance(image, PageImage) and image.height < image.width  # landscape now
    [box] = image.highlights
    assert box.bottom - box.top > box.right - box.left  # the line now runs downwards
    # The highlighted rectangle holds dark (text) pixels of the unhighlighted render.
    plain = view_page(source, 1, span=None, width=600, timeout_s=30)
    assert isinstance(plain, PageImage)
    with Image.open(io.BytesIO(plain.png)) as png:
        region = png.convert("L").crop(
            (int(box.left), int(box.top), int(box.right), int(box.bottom))
        )
        assert min(region.getdata()) < 100


def test_rendering_stops_at_the_time_limit(attention_pdf: bytes) -> None:
    with pytest.raises(RenderTimeoutError, match="too long"):
        view_page(held(attention_pdf), 7, span=None, width=1400, timeout_s=1e-6)


def test_pages_and_spans_outside_the_document_are_refused(attention_pdf: bytes) -> None:
    source = held(attention_pdf)
    with pytest.raises(PageNotFoundError, match="15 page"):
        view_page(source, 16, span=None, width=800, timeout_s=30)
    with pytest.raises(InvalidRequestError, match="not on this page"):
        view_page(source, 7, span=(10, 5), width=800, timeout_s=30)
    with pytest.raises(InvalidRequestError, match="not on this page"):
        view_page(source, 7, span=(10**6, 10**6 + 1), width=800, timeout_s=30)


def test_a_text_document_gives_the_text_around_the_span() -> None:
    text = "First line.\n" + "filler words " * 100 + "The codename is HERON. " + "more text " * 100
    source = SourceDocument(text.encode(), "text/plain", (Page(1, text),))
    start = text.index("The codename")
    end = start + len("The codename is HERON.")
    excerpt = view_page(source, 1, span=(start, end), width=800, timeout_s=30)
    assert isinstance(excerpt, PageExcerpt)
    a, b = excerpt.highlight or (0, 0)
    assert excerpt.text[a:b] == "The codename is HERON."
    assert excerpt.text == text[excerpt.offset : excerpt.offset + len(excerpt.text)]
    assert excerpt.offset > 0 and len(excerpt.text) < len(text)
    assert not excerpt.text.startswith(("iller", "ords"))  # cut at a word boundary


def test_a_text_page_without_a_span_starts_at_its_beginning() -> None:
    excerpt = text_excerpt(Page(2, "Short page."), None)
    assert (excerpt.page, excerpt.text, excerpt.offset, excerpt.highlight) == (
        2,
        "Short page.",
        0,
        None,
    )


# --- our offsets -> PDFium's characters (fast, no PDF) ----------------------------------


def test_the_span_is_found_across_pdfium_line_ends_ligatures_and_hyphens() -> None:
    ours = "We de\ufb01ne the representation of each word.\nAfter that we stop."
    pdfium_text = "We de\ufb01ne the repre-\r\nsentation of each\r\nword.\r\nAfter that we stop."
    start = ours.index("define") if "define" in ours else ours.index("de\ufb01ne")
    end = ours.index("word.") + len("word.")
    chars = locate_span(pdfium_text, ours, start, end)
    shown = "".join(pdfium_text[i] for i in chars)
    assert shown == "de\ufb01netherepresentationofeachword."


def test_of_two_occurrences_the_one_at_the_spans_place_is_chosen() -> None:
    ours = "Total 42 units. " + "x " * 200 + "Total 42 units."
    pdfium_text = ours.replace(" ", "\r\n", 3)
    late = ours.rindex("Total 42")
    chars = locate_span(pdfium_text, ours, late, late + len("Total 42"))
    assert chars[0] > len(pdfium_text) / 2


def test_a_span_in_a_different_reading_order_is_still_mostly_found() -> None:
    ours = "Revenue grew by twelve percent in the third quarter of the year"
    pdfium_text = "the third quarter of the year | Revenue grew by twelve percent in"
    chars = locate_span(pdfium_text, ours, 0, len(ours))
    assert len(chars) >= 0.8 * len(ours.replace(" ", ""))


def test_a_span_that_is_not_on_the_pdfium_page_highlights_nothing() -> None:
    assert locate_span("Completely different words here.", "Not the same at all.", 0, 20) == []


def test_character_boxes_on_one_line_merge_and_a_new_line_starts_a_new_box() -> None:
    line = [Box(10, 100, 18, 110), Box(19, 100, 27, 110), Box(30, 101, 38, 110)]
    next_line = [Box(10, 112, 18, 122)]
    assert merge_lines(line + next_line) == [Box(10, 100, 38, 110), Box(10, 112, 18, 122)]
