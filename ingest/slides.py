"""PowerPoint (.pptx) bytes -> one page per slide: its title as section, text, tables, notes."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

from core.errors import PGPTError
from ingest.models import Heading, Page, ParsedDocument
from ingest.parse_helpers import (
    PageBuilder,
    check_page_count,
    corrupt_error,
    labelled_row,
    open_office_zip,
    require_text,
)

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
LABEL = "PowerPoint presentation"


def parse_pptx(data: bytes, filename: str, *, max_pages: int) -> ParsedDocument:
    open_office_zip(data, filename, LABEL).close()
    try:
        pages, headings = _read(data, filename, max_pages)
    except PGPTError:
        raise
    except Exception as exc:  # python-pptx raises KeyError, lxml and ZIP errors on damage
        raise corrupt_error(filename, LABEL, exc) from None
    require_text(pages, filename, LABEL)
    return ParsedDocument(
        filename=filename,
        media_type=MEDIA_TYPE,
        pages=pages,
        headings=headings,
        page_unit="slide",
    )


def _read(
    data: bytes, filename: str, max_pages: int
) -> tuple[tuple[Page, ...], tuple[Heading, ...]]:
    from pptx import Presentation

    presentation = Presentation(io.BytesIO(data))
    slides = list(presentation.slides)
    check_page_count(len(slides), max_pages, filename, "slide")
    pages: list[Page] = []
    headings: list[Heading] = []
    for number, slide in enumerate(slides, start=1):
        page = PageBuilder(number)
        title_shape = slide.shapes.title
        # Every slide is a section of its own: its title, or "Slide N" when it has none.
        title = title_shape.text_frame.text if title_shape is not None else ""
        page.heading(title.strip() or f"Slide {number}", 1)
        for shape in _shapes(slide.shapes):
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            for block in _shape_text(shape):
                page.add(block)
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                page.add(f"Speaker notes: {notes.text}")
        pages.append(page.page())
        headings.extend(page.headings)
    return tuple(pages), tuple(headings)


def _shapes(shapes: Iterable[Any]) -> Iterator[Any]:
    """Every shape, with the members of groups in place of the group."""
    for shape in shapes:
        if getattr(shape, "shapes", None) is not None:  # a group
            yield from _shapes(shape.shapes)
        else:
            yield shape


def _shape_text(shape: Any) -> Iterator[str]:
    if getattr(shape, "has_table", False):
        rows = [[cell.text.strip() for cell in row.cells] for row in shape.table.rows]
        if rows:
            yield "\n".join(labelled_row(rows[0], row) for row in rows[1:])
    elif getattr(shape, "has_text_frame", False):
        yield shape.text_frame.text
